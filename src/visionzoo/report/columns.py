"""The metrics explorer's table as data: one entry per registered tag, and its columns as a list of specs.

A column is one `Column` line: its key, label, how to read its value from a tag's entry, and how to print it
(a format spec makes it numeric: sortable and plottable). The published columns are `COLUMNS`; the user's
own measurements add a column per setting (`user_columns`). Adding a figure to the page is adding a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..data.eval_sets import EVAL_SETS, IMAGENET
from ..pretrained_cfg import PretrainedCfg, all_pretrained_cfgs
from ..registry import get_architecture, is_model, list_pretrained
from .rows import Row, recipe_link, tag_rows
from .user_results import Setting, UserResults


@dataclass(frozen=True)
class TagEntry:
    """One registered tag: its record, its model family, and its measured rows at each size."""

    cfg: PretrainedCfg
    family: str
    rows: tuple[Row, ...]

    @property
    def main(self) -> Row:
        """The row at the tag's own input size (what validate and benchmark measure unless told), else its
        first."""
        return next((r for r in self.rows if r.img_size == self.cfg.input_size[-1]), self.rows[0])

    @property
    def best(self) -> Row:
        """The row of the best reported top-1 (the main row when there is none)."""
        scored = [r for r in self.rows if r.top1 is not None]
        return max(scored, key=lambda r: (r.top1, -r.img_size)) if scored else self.main

    @property
    def label_space(self) -> str:
        """The tag's label space ('none': a feature tower, no classifier)."""
        return self.cfg.label_space or "none"


Value = float | int | str | None


@dataclass(frozen=True)
class Column:
    """One column of the explorer's table.

    `format`: a format spec for numbers ('' for text); a numeric column sorts as numbers and is offered as a
    plot axis. `better`: 'higher' or 'lower', the direction of the Pareto front when plotted. `log`: plotted
    on a log axis by default. `shown`: in the table until the column chooser hides it. `filter`: 'choices'
    (a tick box per value) or 'select' (one value or all). `link`: a URL for the cell, where it has one.
    """

    key: str
    label: str
    value: Callable[[TagEntry], Value]
    format: str = ""
    better: str = ""
    log: bool = False
    shown: bool = True
    filter: str = ""
    group: str = "published"
    link: Callable[[TagEntry], str | None] | None = None

    @property
    def numeric(self) -> bool:
        return bool(self.format)

    def text(self, value: Value) -> str:
        """The value as the table prints it ('-' where there is none), in the markdown page's format."""
        if value is None:
            return "-"
        return format(value, self.format) if self.numeric else str(value)


def _sizes(entry: TagEntry) -> str | None:
    scored = [r for r in entry.rows if r.top1 is not None]
    return " · ".join(f"{r.img_size}: {r.top1:.3f} / {r.top5:.3f}" for r in scored) or None


COLUMNS = (
    Column("name", "model.tag", lambda e: e.cfg.name, group="model"),
    Column("family", "family", lambda e: e.family, filter="choices", group="model"),
    Column("architecture", "architecture", lambda e: e.cfg.architecture, shown=False, group="model"),
    Column("img_size", "img size", lambda e: e.main.img_size, "d", better="lower"),
    Column("top1", "top-1", lambda e: e.main.top1, ".3f", better="higher"),
    Column("top5", "top-5", lambda e: e.main.top5, ".3f", better="higher"),
    Column("params_m", "params (M)", lambda e: e.main.params_m, ".2f", better="lower", log=True),
    Column("gmacs", "GMACs", lambda e: e.main.gmacs, ".2f", better="lower", log=True),
    Column("best_top1", "top-1 (best size)", lambda e: e.best.top1, ".3f", better="higher", shown=False),
    Column("best_size", "best size", lambda e: e.best.img_size, "d", better="lower", shown=False),
    Column("best_gmacs", "GMACs (best size)", lambda e: e.best.gmacs, ".2f", better="lower", log=True,
           shown=False),
    Column("sizes", "top-1 / top-5 at each size", _sizes, shown=False),
    Column("label_space", "label space", lambda e: e.label_space, filter="select", group="model"),
    Column("license", "licence", lambda e: e.cfg.license, filter="select", group="model"),
    Column("recipe", "recipe", lambda e: recipe_link(e.cfg.name).text, group="model",
           link=lambda e: recipe_link(e.cfg.name).url),
)


def _published_on(eval_set: str) -> Callable[[TagEntry], Value]:
    """The tag's published top-1 on `eval_set` at its own input size (None where the reference has none)."""
    def value(entry: TagEntry) -> Value:
        size = entry.main.img_size
        return next((r.top1 for r in entry.cfg.results_on(eval_set) if r.img_size == size), None)
    return value


# The reference's published figures on the re-labelled and shifted sets, one column each.
COLUMNS += tuple(
    Column(f"{s.name}_top1", f"{s.title} top-1", _published_on(s.name), ".3f", better="higher", shown=False,
           group="robustness")
    for s in EVAL_SETS.values() if s.name != IMAGENET and s.reference_results)


def _labelled(text: str, setting: Setting) -> str:
    return f"{text} ({setting.label})" if setting.label else text


def user_columns(user: UserResults) -> list[Column]:
    """The user's measurements at each tag's own size: top-1 per accuracy setting, images/s and batch latency
    per speed setting, in the settings' order."""
    columns = []
    for index, setting in enumerate(user.accuracy_settings):
        def top1(entry: TagEntry, setting: Setting = setting) -> float | None:
            mine = user.own_accuracy(setting, entry.cfg.name, entry.main.img_size)
            return None if mine is None else mine.top1
        columns.append(Column(f"own_top1_{index}", _labelled("your top-1", setting), top1, ".3f",
                              better="higher", group="yours"))
    for index, setting in enumerate(user.settings):
        def img_per_s(entry: TagEntry, setting: Setting = setting) -> float | None:
            return user.throughput(setting, entry.cfg.name, entry.main.img_size)

        def latency(entry: TagEntry, setting: Setting = setting) -> float | None:
            speed = user.speed_of(setting, entry.cfg.name, entry.main.img_size)
            return None if speed is None else speed.latency_ms
        columns += [Column(f"img_per_s_{index}", f"img/s ({setting.label})", img_per_s, ".1f",
                           better="higher", log=True, group="yours"),
                    Column(f"latency_ms_{index}", f"latency ms ({setting.label})", latency, ".2f",
                           better="lower", log=True, group="yours")]
    return columns


def tag_entries(patterns: str | Iterable[str] = "") -> tuple[list[TagEntry], list[str]]:
    """Every tag of the tag data whose architecture is registered (matching `patterns`, shell-style, if
    given), in name order, and the names of the tags whose architecture is not."""
    wanted = set(list_pretrained(patterns))
    raw = {cfg.name: cfg for cfgs in all_pretrained_cfgs().values() for cfg in cfgs}
    entries = [TagEntry(raw[name], get_architecture(name).family, tag_rows(raw[name]))
               for name in sorted(wanted)]
    unregistered = sorted(name for name in raw if not is_model(name))
    return entries, unregistered
