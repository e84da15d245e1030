"""The robustness section of the metrics page: the page's tags on the re-labelled and shifted test sets.

For every (tag, image size) with published figures on all of them: the top-1 on each set and its difference
from ImageNet top-1, and the mean top-1 over the shifted sets (ImageNet-V2, -Sketch, -A, -R; ReaL re-labels
ImageNet's own images, so it is shown but not counted). The plot puts ImageNet top-1 against that mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data.eval_sets import EVAL_SETS, IMAGENET, EvalSet
from ..pretrained_cfg import PretrainedCfg
from .plots import Point, write_scatter
from .user_results import UserResults

# the sets with published figures, in the order of EVAL_SETS
ROBUSTNESS_SETS: tuple[EvalSet, ...] = tuple(s for s in EVAL_SETS.values()
                                             if s.reference_results and s.name != IMAGENET)
SHIFTED_SETS: tuple[EvalSet, ...] = tuple(s for s in ROBUSTNESS_SETS if s.shifted)


@dataclass(frozen=True)
class RobustnessRow:
    """A tag at one size: ImageNet top-1 and the published top-1 on each set, by set name."""

    name: str
    img_size: int
    imagenet_top1: float
    top1: dict[str, float]

    @property
    def shifted_mean(self) -> float:
        return math.fsum(self.top1[s.name] for s in SHIFTED_SETS) / len(SHIFTED_SETS)


def robustness_rows(cfgs: Iterable[PretrainedCfg]) -> list[RobustnessRow]:
    """The rows of `cfgs` measured on every set, best ImageNet top-1 first."""
    rows = []
    for cfg in cfgs:
        imagenet = {r.img_size: r.top1 for r in cfg.results}
        by_size: dict[int, dict[str, float]] = {}
        for result in cfg.eval_set_results:
            by_size.setdefault(result.img_size, {})[result.eval_set] = result.top1
        for size, figures in sorted(by_size.items()):
            if size in imagenet and all(s.name in figures for s in ROBUSTNESS_SETS):
                rows.append(RobustnessRow(cfg.name, size, imagenet[size], figures))
    return sorted(rows, key=lambda r: (-r.imagenet_top1, r.name, -r.img_size))


def _cell(top1: float, imagenet: float, own: float | None) -> str:
    text = f"{top1:.3f} ({top1 - imagenet:+.2f})"
    return text + (f"; own {own:.3f}" if own is not None else "")


def robustness_table(rows: Sequence[RobustnessRow], user: UserResults | None = None) -> list[str]:
    """The section's markdown table: a set's cell is its top-1 (difference from ImageNet top-1), and the
    user's own top-1 on that set where given."""
    header = ["model.tag", "img size", "ImageNet top-1", *(s.title for s in ROBUSTNESS_SETS),
              "mean of shifted sets"]
    lines = ["| " + " | ".join(header) + " |", "|:---|" + ":---:|" * (len(header) - 1)]
    for row in rows:
        cells = [row.name, str(row.img_size), f"{row.imagenet_top1:.3f}"]
        for eval_set in ROBUSTNESS_SETS:
            own = user.accuracy_on(eval_set.name, row.name, row.img_size) if user is not None else None
            cells.append(_cell(row.top1[eval_set.name], row.imagenet_top1, own.top1 if own else None))
        cells.append(_cell(row.shifted_mean, row.imagenet_top1, None))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def robustness_text() -> str:
    """What the table shows, for the text above it."""
    shifted = ", ".join(s.title for s in SHIFTED_SETS)
    return ("The page's tags on the re-labelled and shifted test sets: the published top-1 on each (the "
            "reference project's results-*.csv, kept in visionzoo's tag data) and, in brackets, its "
            "difference from ImageNet-1k top-1 at the same size. ImageNet-A and -R are scored over their 200 "
            f"classes, as their authors evaluate. Mean of shifted sets: {shifted} (ReaL re-labels the "
            "ImageNet val images, so it is not a shift). Measure your own with "
            "`visionzoo validate --eval-set NAME`.")


def write_robustness_plot(path: Path, rows: Sequence[RobustnessRow], year: int) -> None:
    """ImageNet top-1 against the mean top-1 of the shifted sets, one point per row, the Pareto front
    marked."""
    points = [Point(f"{r.name} @{r.img_size}", r.imagenet_top1, r.shifted_mean) for r in rows]
    shifted = ", ".join(s.title.split(" (")[0] for s in SHIFTED_SETS)
    write_scatter(path, points, "ImageNet-1k top-1 (%)", f"mean top-1 over {shifted} (%)",
                  f"{year} models: robustness, ImageNet-1k top-1 vs the mean of the shifted test sets")
