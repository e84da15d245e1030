"""The metrics page (`docs/metrics/2024.md`), generated from the tag data, with its corrections and plots.

Rows: every measured result (tag, img size) of every registered tag that the 2024 page lists, in the page's
sections. Top-1/top-5 are the tags' reported results; params are counted from the model with the tag's head;
GMACs are counted at the row's size. The text is deterministic (no dates, stable order) so that a test can
check that the committed page is what the code generates.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from ..data.eval_sets import IMAGENET
from ..files import write_text_atomic
from ..pretrained_cfg import PretrainedCfg, all_pretrained_cfgs
from ..registry import is_model
from .corrections import Correction, find_corrections
from .figures import PageFigure, load_page_figures
from .plots import Point, write_plot
from .robustness import (
    RobustnessRow,
    robustness_rows,
    robustness_table,
    robustness_text,
    write_robustness_plot,
)
from .rows import Row, recipe_link, tag_rows
from .user_results import DeployedResult, Setting, UserResults, read_user_results

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Section:
    """A heading of the page; it holds the tags whose page figures name its key."""

    key: str
    level: int
    heading: str
    text: str = ""
    printed_decimals: int = 3


@dataclass(frozen=True)
class PageLayout:
    """Title, sections in order, and the tag-naming notes of one metrics page."""

    year: int
    title: str
    intro: str
    sections: tuple[Section, ...]
    naming: tuple[tuple[str, str], ...]


@cache
def load_layout(year: int = 2024) -> PageLayout:
    """The layout of the metrics page of `year` (visionzoo/report/page_<year>.toml)."""
    path = resources.files("visionzoo.report") / f"page_{year}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    sections = tuple(Section(s["key"], s["level"], s.get("heading", s["key"]), s.get("text", ""),
                             s.get("printed_decimals", 3)) for s in data["section"])
    naming = tuple((n["part"], n["meaning"]) for n in data.get("naming", ()))
    return PageLayout(year, data["title"], data["intro"], sections, naming)


@dataclass
class Page:
    """Everything on the page: rows by section key, corrections, tags left out, and the plots it links."""

    layout: PageLayout
    rows: dict[str, list[Row]]
    corrections: list[Correction]
    unregistered: list[str]
    user: UserResults | None = None
    plots: list[tuple[str, str]] = field(default_factory=list)  # (title, file name next to the page)
    robustness: list[RobustnessRow] = field(default_factory=list)

    @property
    def all_rows(self) -> list[Row]:
        return [row for section in self.layout.sections for row in self.rows.get(section.key, [])]


def _page_tags(year: int) -> list[tuple[PretrainedCfg, tuple[PageFigure, ...]]]:
    """The tags the page lists, in the tag data's order, each with its figures on the page."""
    figures = load_page_figures(year)
    tags = [(cfg, figures[cfg.name]) for cfgs in all_pretrained_cfgs().values() for cfg in cfgs
            if cfg.name in figures]
    unknown = sorted(set(figures) - {cfg.name for cfg, _ in tags})
    if unknown:
        raise ValueError(f"page_{year}_figures.toml names tags the tag data lacks: {', '.join(unknown)}")
    return tags


def _row_order(row: Row) -> tuple:
    return (row.top1 is None, -(row.top1 or 0.0), row.name, -row.img_size)


def build_page(layout: PageLayout | None = None, user: UserResults | None = None) -> Page:
    """Measure and collect the page: rows, corrections, and the page's tags whose arch is not registered."""
    layout = layout or load_layout()
    decimals = {s.key: s.printed_decimals for s in layout.sections}
    page_tags = _page_tags(layout.year)
    unknown = sorted({f.section for _, figures in page_tags for f in figures} - set(decimals))
    if unknown:
        raise ValueError(f"page_{layout.year}_figures.toml names sections that "
                         f"page_{layout.year}.toml lacks: "
                         f"{', '.join(unknown)}")
    rows: dict[str, list[Row]] = {}
    corrections: list[Correction] = []
    unregistered = []
    for cfg, figures in page_tags:
        if not is_model(cfg.architecture):
            unregistered.append(cfg.name)
            continue
        measured = tag_rows(cfg)
        for section in dict.fromkeys(f.section for f in figures):
            rows.setdefault(section, []).extend(measured)
        corrections += find_corrections(cfg, figures, measured[0].params_m, decimals)
    for section_rows in rows.values():
        section_rows.sort(key=_row_order)
    order = {s.key: i for i, s in enumerate(layout.sections)}
    section_of = {cfg.name: figures[0].section for cfg, figures in page_tags}
    corrections.sort(key=lambda c: (order[section_of[c.name]], c.name))  # stable: keeps each tag's order
    robustness = robustness_rows(cfg for cfg, _ in page_tags if is_model(cfg.architecture))
    return Page(layout, rows, corrections, sorted(unregistered), user, robustness=robustness)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _own_top1_header(setting: Setting) -> str:
    return "own top-1 (diff)" if not setting.label else f"own top-1 ({setting.label}; diff)"


def _own_top1_cell(user: UserResults, setting: Setting, row: Row) -> str:
    mine = user.own_accuracy(setting, row.name, row.img_size)
    if mine is None:
        return "-"
    return f"{mine.top1:.3f}" + (f" ({mine.top1 - row.top1:+.3f})" if row.top1 is not None else "")


def _table(page: Page, rows: list[Row]) -> list[str]:
    user = page.user
    # the user's figures on the other eval sets are in the robustness table, next to the published ones
    accuracy = [s for s in user.accuracy_settings if s["eval_set"] == IMAGENET] if user is not None else []
    settings = user.settings if user is not None else []
    header = ["model.tag", "img size", "top-1"] + [_own_top1_header(s) for s in accuracy] + \
        ["top-5", "params (M)", "GMACs"] + [f"img/s ({s.label})" for s in settings] + ["recipe"]
    lines = ["| " + " | ".join(header) + " |", "|:---|" + ":---:|" * (len(header) - 1)]
    for row in rows:
        cells = [row.name, str(row.img_size), _fmt(row.top1, ".3f")]
        cells += [_own_top1_cell(user, s, row) for s in accuracy]
        cells += [_fmt(row.top5, ".3f"), f"{row.params_m:.2f}", f"{row.gmacs:.2f}"]
        cells += [_fmt(user.throughput(s, row.name, row.img_size), ".1f") for s in settings]
        cells.append(_recipe_cell(row.name))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _recipe_cell(tag: str) -> str:
    """The recipe that trained `tag`, linked to its source (`visionzoo recipes TAG --show` prints it), or why
    there is none."""
    link = recipe_link(tag)
    text = link.text.replace("|", "/")
    return f"[{text}]({link.url})" if link.url else text


def render(page: Page) -> str:
    """The page as markdown."""
    layout = page.layout
    out = [f"# {layout.title}", "", layout.intro, "",
           "Generated by `visionzoo report` from visionzoo's tag data; do not edit by hand. Top-1/top-5: the "
           "published weights' measured ImageNet-1k validation results (the reference project's "
           "results-imagenet.csv, kept in the tag data), at every image size they were measured at. "
           "Params: counted from the model with the tag's head. GMACs: multiply-accumulates for one image "
           "at that size, counted with `torch.utils.flop_counter`. Where the hand-copied page had a figure "
           "wrong, this page shows the right one and [Corrections](#corrections) lists it.", ""]
    if page.unregistered:
        out += ["Not on this page yet (their model family is not in this build): "
                f"{', '.join(page.unregistered)}.", ""]
    if page.user is not None and page.user.speed:
        devices = "; ".join(f"{device}: {name}" for device, name in sorted(page.user.device_names.items()))
        out += ["img/s: inference images per second measured with `visionzoo benchmark` "
                "(median over timed runs)"
                + (f", on {devices}" if devices else "") + ".", ""]
    if page.plots:
        out += ["Plots: " + " · ".join(f"[{title}]({file})" for title, file in page.plots), ""]
    for section in layout.sections:
        rows = page.rows.get(section.key, [])
        if not rows and not (section.level == 2 and _month_has_rows(page, section)):
            continue
        out += ["#" * section.level + " " + section.heading, ""]
        if rows:
            out += ([section.text, ""] if section.text else []) + _table(page, rows) + [""]
    if page.robustness:
        out += [f"## {ROBUSTNESS_HEADING}", "", robustness_text(), ""]
        out += robustness_table(page.robustness, page.user) + [""]
    if layout.naming:
        out += ["## Tag naming", ""] + [f"- **{part}**: {meaning}" for part, meaning in layout.naming] + [""]
    if page.plots:
        out += ["## Plots", ""] + [f"![{title}]({file})" for title, file in page.plots] + [""]
    if page.user is not None and page.user.deployed:
        out += deployed_section(page.user.deployed)
    out += ["## Corrections", "",
            "Figures of the hand-copied page that differ from the measured results (or parameter counts) by "
            "more than the page's own rounding; the tables above show the right values. An accuracy figure "
            "is paired with the measured result of the same tag that it is closest to, so one filed under "
            "the wrong image size shows up as such.", ""]
    if not page.corrections:
        out += ["None.", ""]
    tags = len({c.name for c in page.corrections})
    for title, accuracy in (("Model names, parameter counts and image sizes", False), ("Accuracies", True)):
        corrections = [c for c in page.corrections if c.is_accuracy is accuracy]
        if corrections:
            out += [f"### {title}", "", "| model.tag | figure | source page | correct |",
                    "|:---|:---|:---:|:---:|"]
            out += [f"| {c.name} | {c.figure} | {c.page} | {c.correct} |" for c in corrections] + [""]
    if page.corrections:
        out.append(f"{len(page.corrections)} corrections of {tags} tags.")
    return "\n".join(out) + "\n"


DEPLOYED_HEADER = ("model", "size", "backend", "format", "precision", "batch", "top-1", "agree %", "img/s",
                   "latency ms", "setup s", "size MB")


def deployed_section(rows: Sequence[DeployedResult]) -> list[str]:
    """Markdown lines: the user's deployment results, one table of accuracy x speed x format."""
    out = ["## Deployed: accuracy x speed per format", "",
           "Measured with `visionzoo benchmark --backend ... --precision ... --val-data DIR`: top-1 on the "
           "user's labelled set and top-1 agreement with the eager model on the same images, speed of the "
           "same artifact. CPU: " + "; ".join(sorted({r.cpu for r in rows})) + ".", "",
           "| " + " | ".join(DEPLOYED_HEADER) + " |",
           "|" + "|".join([":---", "---:", ":---", ":---", ":---"] + ["---:"] * 7) + "|"]
    for r in sorted(rows, key=lambda r: (r.model, r.img_size, r.batch_size, r.precision, r.backend)):
        cells = [r.model, str(r.img_size), r.backend, r.format, r.precision, str(r.batch_size),
                 f"{r.top1:.2f}", _fmt(r.top1_agreement, ".2f"), f"{r.img_per_s:.1f}", f"{r.latency_ms:.2f}",
                 _fmt(r.setup_s, ".1f"), _fmt(r.artifact_mb, ".1f")]
        out.append("| " + " | ".join(cells) + " |")
    return out + [""]


def _month_has_rows(page: Page, month: Section) -> bool:
    """True if a section under this level-2 heading (up to the next one) has rows."""
    sections = page.layout.sections
    start = sections.index(month) + 1
    for section in sections[start:]:
        if section.level <= month.level:
            return False
        if page.rows.get(section.key):
            return True
    return False


ROBUSTNESS_HEADING = "Robustness: ReaL, V2, Sketch, A and R"
ROBUSTNESS_PLOT = "ImageNet top-1 vs shifted sets"


def plot_files(year: int, with_throughput: bool,
               with_deployed: bool = False) -> list[tuple[str, str]]:
    """(title, file name) of the page's plots."""
    plots = [("top-1 vs params", f"{year}-top1-vs-params.png"),
             ("top-1 vs GMACs", f"{year}-top1-vs-gmacs.png")]
    if with_throughput:
        plots.append(("top-1 vs measured throughput", f"{year}-top1-vs-throughput.png"))
    plots.append((ROBUSTNESS_PLOT, f"{year}-robustness.png"))
    if with_deployed:
        plots.append(("deployed: top-1 vs latency per backend", f"{year}-deployed-top1-vs-latency.png"))
    return plots


def throughput_setting(user: UserResults, rows: list[Row]) -> Setting | None:
    """The benchmark setting that measured most of the page's rows (ties: the larger batch), if any."""
    def coverage(setting: Setting) -> tuple:
        measured = sum(user.throughput(setting, r.name, r.img_size) is not None
                       for r in rows if r.top1 is not None)
        return measured, int(setting["batch_size"]), setting.label

    best = max(user.settings, key=coverage, default=None)
    return best if best is not None and coverage(best)[0] > 0 else None


def write_plots(page: Page, directory: Path) -> None:
    """Write the plots named in `page.plots` into `directory` (matplotlib needed)."""
    rows = [r for r in page.all_rows if r.top1 is not None]
    best: dict[str, Row] = {}
    for row in rows:
        if row.name not in best or row.top1 > best[row.name].top1:
            best[row.name] = row
    files = dict(page.plots)
    year = page.layout.year
    write_plot(directory / files["top-1 vs params"],
               [Point(r.name, r.params_m, r.top1) for r in best.values()], "parameters (M, log scale)",
               f"{year} models: ImageNet-1k top-1 vs parameters (best size per tag)")
    write_plot(directory / files["top-1 vs GMACs"],
               [Point(f"{r.name} @{r.img_size}", r.gmacs, r.top1) for r in rows],
               "GMACs per image (log scale)", f"{year} models: ImageNet-1k top-1 vs GMACs at each image size")
    if "top-1 vs measured throughput" in files:
        setting = throughput_setting(page.user, rows)
        points = [Point(f"{r.name} @{r.img_size}", speed, r.top1) for r in rows
                  if (speed := page.user.throughput(setting, r.name, r.img_size)) is not None]
        write_plot(directory / files["top-1 vs measured throughput"], points,
                   f"inference images/s ({setting.label}, log scale)",
                   f"{year} models: ImageNet-1k top-1 vs measured throughput", higher_x_better=True)
    if "deployed: top-1 vs latency per backend" in files:
        deployed = page.user.deployed
        write_plot(directory / files["deployed: top-1 vs latency per backend"],
                   [Point(r.label, r.latency_ms, r.top1) for r in deployed],
                   "latency of one batch (ms, log scale)",
                   "Deployed models: top-1 on the user's set vs latency, per backend and precision",
                   data="the user's labelled set:")
    if ROBUSTNESS_PLOT in files and page.robustness:
        write_robustness_plot(directory / files[ROBUSTNESS_PLOT], page.robustness, year)


def generate(output: str | Path, results: Sequence[str | Path] = (), plots: bool = True) -> Page:
    """Write the page to `output` (and its plots next to it); `results`: the user's validate/benchmark
    files."""
    output = Path(output)
    user = read_user_results(results) if results else None
    page = build_page(user=user)
    if plots:
        with_speed = user is not None and throughput_setting(user, page.all_rows) is not None
        page.plots = plot_files(page.layout.year, with_speed, user is not None and bool(user.deployed))
        write_plots(page, output.parent)
    write_text_atomic(output, render(page))
    return page
