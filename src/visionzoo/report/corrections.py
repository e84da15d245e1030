"""Where the hand-copied 2024 page was wrong: its figures checked against measured results and counts.

A page figure is wrong when it differs from the measured value by more than the page's own rounding: an
accuracy printed with 3 decimals must equal the result rounded to 3 decimals; a parameter count printed
"7.5" must round from the measured count; "400+" is a lower bound. Accuracy figures are paired with the
measured results of the same tag by closest top-1, so a figure filed under the wrong image size is found as
such (not as a wrong accuracy at that size).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..pretrained_cfg import PretrainedCfg, ReportedResult
from .figures import PageFigure


@dataclass(frozen=True)
class Correction:
    """One wrong figure of the source page: what it printed and what is right."""

    name: str  # arch.tag
    figure: str  # which figure, e.g. "params (M)", "img size", "top-1 @ 256"
    page: str  # as the source page printed it
    correct: str

    @property
    def is_accuracy(self) -> bool:
        """A top-1/top-5 figure (not the model's name, parameter count or image size)."""
        return self.figure.startswith(("top-1 @", "top-5 @"))


def within_rounding(measured: float, printed: float, decimals: int) -> bool:
    """True if `printed` (with `decimals` decimals) is `measured` rounded."""
    return abs(measured - printed) <= 0.5 * 10.0**-decimals + 1e-9


def params_agree(printed: str, measured_m: float) -> bool:
    """True if the printed parameter count ('7.30', '2.2', '400+') agrees with the measured millions."""
    if printed.endswith("+"):
        return measured_m >= float(printed[:-1])
    decimals = len(printed.partition(".")[2])
    return within_rounding(measured_m, float(printed), decimals)


def pair_figures(figures: list[PageFigure],
                 results: tuple[ReportedResult, ...]) -> list[tuple[PageFigure, ReportedResult | None]]:
    """Pair each accuracy figure with the measured result it stands for (None: no result is left for it).

    The pairing minimises the total top-1 difference, with as many figures paired as there are results; a
    tie goes to the pairing that keeps the printed sizes. Tags have at most a few figures, so every
    assignment is tried.
    """
    slots: list[ReportedResult | None] = list(results) + [None] * len(figures)
    best, best_cost = None, None
    for chosen in itertools.permutations(slots, len(figures)):
        cost = 0.0
        for figure, result in zip(figures, chosen, strict=True):
            if result is None:
                cost += 1000.0
            else:
                moved = figure.img_size not in (None, result.img_size)
                cost += abs(figure.top1 - result.top1) + (1e-6 if moved else 0)
        if best_cost is None or cost < best_cost - 1e-12:
            best, best_cost = chosen, cost
    return list(zip(figures, best or [None] * len(figures), strict=True))


def _accuracy(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def find_corrections(cfg: PretrainedCfg, page: tuple[PageFigure, ...], params_m: float,
                     printed_decimals: dict[str, int]) -> list[Correction]:
    """Every figure of the source page's rows `page` of the tag `cfg` that is wrong, in the order: name,
    params, sizes, accuracies.

    `printed_decimals` maps a page section to the decimals its accuracies were printed with.
    """
    name = cfg.name
    corrections = []
    for page_name in dict.fromkeys(f.page_name for f in page if f.page_name):
        corrections.append(Correction(name, "model name", page_name, name))
    for printed in dict.fromkeys(f.params for f in page if f.params):
        if not params_agree(printed, params_m):
            corrections.append(Correction(name, "params (M)", printed, f"{params_m:.2f}"))

    figures = [f for f in page if f.top1 is not None]
    sizes, accuracies = [], []
    for figure, result in pair_figures(figures, cfg.results):
        decimals = printed_decimals[figure.section]
        printed_top1 = _accuracy(figure.top1, decimals)
        if result is None:
            measured_at = ", ".join(str(r.img_size) for r in cfg.results) or "no size"
            sizes.append(Correction(name, f"img size of top-1 {printed_top1}", str(figure.img_size),
                                    f"not measured (measured at {measured_at})"))
            continue
        if figure.img_size is not None and figure.img_size != result.img_size:
            sizes.append(Correction(name, f"img size of top-1 {printed_top1}", str(figure.img_size),
                                    str(result.img_size)))
        if not within_rounding(result.top1, figure.top1, decimals):
            accuracies.append(Correction(name, f"top-1 @ {result.img_size}", printed_top1,
                                         f"{result.top1:.3f}"))
        if figure.top5 is not None and not within_rounding(result.top5, figure.top5, decimals):
            accuracies.append(Correction(name, f"top-5 @ {result.img_size}", _accuracy(figure.top5, decimals),
                                         f"{result.top5:.3f}"))
    return corrections + sizes + accuracies
