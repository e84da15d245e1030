"""Plots of the metrics page: top-1 against a cost (params, GMACs) or a speed, or against another accuracy
(`write_scatter`), with the Pareto front marked.

matplotlib is an optional dependency (`pip install 'visionzoo[report]'`), imported only when plotting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingDependencyError
from ..files import atomic_write


@dataclass(frozen=True)
class Point:
    """One labelled point: x (a cost or a speed) and top-1."""

    label: str
    x: float
    top1: float


def pareto_front(points: Sequence[Point], higher_x_better: bool = False) -> list[Point]:
    """The points no other point beats on both axes (top-1 higher, x lower or higher as given), by x."""
    ordered = sorted(points, key=lambda p: (-p.x if higher_x_better else p.x, -p.top1, p.label))
    front, best = [], float("-inf")
    for point in ordered:
        if point.top1 > best:
            front.append(point)
            best = point.top1
    return sorted(front, key=lambda p: (p.x, p.label))


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise MissingDependencyError("the plots need matplotlib: pip install 'visionzoo[report]' "
                                     "(or leave them out: {plots=False})") from error
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


TOP1_TICKS = (0, 20, 40, 50, 60, 65, 70, 72, 74, 76, 78, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92,
              94, 95, 96, 97, 98, 99)


def _log_error(top1):
    import numpy as np

    return -np.log10(np.clip(100.0 - np.asarray(top1, dtype=float), 1e-3, None))


def _from_log_error(value):
    import numpy as np

    return 100.0 - 10.0 ** -np.asarray(value, dtype=float)


def _place_labels(axes, points: Sequence[Point], on_front: set[Point], renderer) -> None:
    """Label every point, moving a label up or down (with a leader line) until it overlaps no placed label.

    Front points are placed first so that they keep the spot next to their marker; a label with no free
    spot within reach is drawn faded at its first spot.
    """
    placed = []
    inside = axes.get_window_extent(renderer)
    ordered = sorted(points, key=lambda p: (p not in on_front, -p.top1, p.x, p.label))
    steps = [0] + [sign * k for k in range(1, 9) for sign in (1, -1)]
    for point in ordered:
        color = "tab:red" if point in on_front else "0.25"
        for side, align in ((4, "left"), (-4, "right")):
            for step in steps:
                arrow = dict(arrowstyle="-", color="0.7", linewidth=0.4) if step else None
                text = axes.annotate(point.label, (point.x, point.top1), xytext=(side, 2 + 7 * step),
                                     textcoords="offset points", fontsize=6, color=color, ha=align,
                                     va="center", arrowprops=arrow)
                box = text.get_window_extent(renderer).expanded(1.0, 1.1)
                fits = (inside.x0 <= box.x0 and box.x1 <= inside.x1
                        and inside.y0 <= box.y0 and box.y1 <= inside.y1)
                if fits and not any(box.overlaps(other) for other in placed):
                    placed.append(box)
                    break
                text.remove()
            else:
                continue
            break
        else:
            axes.annotate(point.label, (point.x, point.top1), xytext=(4, 2), textcoords="offset points",
                          fontsize=6, color=color, alpha=0.45, va="center")


def _draw(path: Path, points: Sequence[Point], front: Sequence[Point], front_label: str, xlabel: str,
          ylabel: str, title: str, set_axes) -> None:
    """The common figure: the points, the front drawn through its points, every point labelled; `set_axes`
    sets the scales and limits."""
    plt = _pyplot()
    on_front = set(front)
    figure, axes = plt.subplots(figsize=(18, 12), dpi=100)
    set_axes(axes)
    others = [p for p in points if p not in on_front]
    axes.scatter([p.x for p in others], [p.top1 for p in others], s=16, color="tab:blue", label="model.tag")
    axes.plot([p.x for p in front], [p.top1 for p in front], "-o", color="tab:red", markersize=5, linewidth=1,
              label=front_label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", linewidth=0.3, alpha=0.5)
    axes.legend(loc="lower right")
    figure.tight_layout()
    _place_labels(axes, points, on_front, figure.canvas.get_renderer())
    # no "Software" entry: the file should not change with the matplotlib version alone
    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", metadata={"Software": None}))
    finally:
        plt.close(figure)


def write_plot(path: Path, points: Sequence[Point], xlabel: str, title: str,
               higher_x_better: bool = False, data: str = "ImageNet-1k") -> None:
    """Top-1 against x (log scale) as a PNG: every point labelled, the Pareto front drawn and highlighted."""

    def set_axes(axes) -> None:
        axes.set_xscale("log")
        # Spaced by the log of the error (100 - top-1): most models sit between 75 and 90, and this gives
        # them room without hiding the tiny test models far below. Ticks still read as top-1.
        axes.set_yscale("function", functions=(_log_error, _from_log_error))
        lowest = min(p.top1 for p in points)
        axes.set_yticks([t for t in TOP1_TICKS if t >= lowest - 5])
        axes.set_ylim(max(0.0, lowest - 3), min(99.5, max(p.top1 for p in points) + 1))

    _draw(path, points, pareto_front(points, higher_x_better),
          "Pareto front" + (" (faster and more accurate)" if higher_x_better else ""), xlabel,
          f"{data} top-1 (%), axis spaced by log(100 - top-1)", title, set_axes)


def write_scatter(path: Path, points: Sequence[Point], xlabel: str, ylabel: str, title: str) -> None:
    """One accuracy against another (both linear, higher better) as a PNG, the Pareto front highlighted."""

    def set_axes(axes) -> None:
        axes.set_xlim(min(p.x for p in points) - 2, max(p.x for p in points) + 2)
        axes.set_ylim(min(p.top1 for p in points) - 2, max(p.top1 for p in points) + 2)

    _draw(path, points, pareto_front(points, higher_x_better=True), "Pareto front (better on both)", xlabel,
          ylabel, title, set_axes)
