"""The figures of the hand-copied 2024 metrics page, kept to show where it was wrong.

They live in `page_2024_figures.toml`, keyed by `arch.tag`: the core tag records know nothing of the page.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from importlib import resources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class PageFigure:
    """A row as printed on the hand-written metrics page."""

    section: str
    img_size: int | None = None
    top1: float | None = None
    top5: float | None = None
    params: str | None = None
    page_name: str | None = None  # the name the page used, where it differs from the real `arch.tag`


@cache
def load_page_figures(year: int = 2024) -> dict[str, tuple[PageFigure, ...]]:
    """The page's figures by `arch.tag`, in the order the data file lists them."""
    path = resources.files("visionzoo.report") / f"page_{year}_figures.toml"
    by_tag: dict[str, list[PageFigure]] = {}
    for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("figure", []):
        values = dict(entry)
        by_tag.setdefault(values.pop("tag"), []).append(PageFigure(**values))
    return {tag: tuple(figures) for tag, figures in by_tag.items()}
