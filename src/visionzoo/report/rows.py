"""What both metrics pages (the markdown page and the HTML explorer) show of a tag, measured once per process.

A tag's rows are its reported ImageNet-1k results, one per image size, each with the parameters counted from
the model with the tag's head and the GMACs counted at that size. Both pages read these rows, so they cannot
disagree; the measurement is cached, so a process that writes both measures each tag once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ..factory import parameter_count
from ..flops import model_macs
from ..pretrained_cfg import PretrainedCfg, ReportedResult
from ..recipes import list_no_recipes, list_recipes


@dataclass(frozen=True)
class Row:
    """One measured line of a tag: the tag at one image size."""

    name: str
    img_size: int
    top1: float | None
    top5: float | None
    params_m: float
    gmacs: float


def tag_rows(cfg: PretrainedCfg) -> tuple[Row, ...]:
    """The tag's rows in the tag data's order; a tag with no ImageNet-1k result (a feature tower, an in12k
    tag) has one row at its input size, without top-1/top-5."""
    return _measured_rows(cfg.name, cfg.input_size[-1], cfg.results)


@cache  # keyed by what the rows depend on: a raw record and the registry's completed one share an entry
def _measured_rows(name: str, input_size: int, results: tuple[ReportedResult, ...]) -> tuple[Row, ...]:
    params_m = parameter_count(name) / 1e6
    if not results:
        return (Row(name, input_size, None, None, params_m, model_macs(name, input_size) / 1e9),)
    return tuple(Row(name, r.img_size, r.top1, r.top5, params_m, model_macs(name, r.img_size) / 1e9)
                 for r in results)


@dataclass(frozen=True)
class RecipeLink:
    """The recipe that trained a tag and where it is written (`url` None: no public source), or why there
    is none (`text` 'none: <reason>')."""

    text: str
    url: str | None = None


def recipe_link(tag: str) -> RecipeLink:
    """The recipe of `tag` (arch.tag), as `visionzoo recipes TAG` finds it, or the recorded reason it has
    none."""
    recipe = next((r for r in list_recipes() if tag in r.tags), None)
    if recipe is not None:
        return RecipeLink(recipe.name, recipe.source if recipe.source.startswith("http") else None)
    reason = next((record.reason for name, record in list_no_recipes(tag) if name == tag), "not recorded")
    return RecipeLink("none: " + reason)
