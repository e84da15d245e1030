"""Plots of the metrics page: top-1 against a cost (params, GMACs) or a speed, with the Pareto front marked.

matplotlib is an optional dependency (`pip install 'visionzoo[report]'`), imported only when plotting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


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
        raise ImportError("the plots need matplotlib: pip install 'visionzoo[report]' "
                          "(or pass --no-plots)") from error
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def write_plot(path: Path, points: Sequence[Point], xlabel: str, title: str, higher_x_better: bool = False) -> None:
    """Top-1 against x (log scale) as a PNG: every point labelled, the Pareto front drawn and highlighted."""
    plt = _pyplot()
    front = pareto_front(points, higher_x_better)
    on_front = set(front)
    figure, axes = plt.subplots(figsize=(14, 9), dpi=100)
    axes.set_xscale("log")
    others = [p for p in points if p not in on_front]
    axes.scatter([p.x for p in others], [p.top1 for p in others], s=16, color="tab:blue", label="model.tag")
    axes.plot([p.x for p in front], [p.top1 for p in front], "-o", color="tab:red", markersize=5, linewidth=1,
              label="Pareto front" + (" (faster and more accurate)" if higher_x_better else ""))
    for point in sorted(points, key=lambda p: (p.x, p.top1, p.label)):
        axes.annotate(point.label, (point.x, point.top1), xytext=(3, 2), textcoords="offset points", fontsize=6,
                      color="tab:red" if point in on_front else "0.25")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("ImageNet-1k top-1 (%)")
    axes.set_title(title)
    axes.grid(True, which="both", linewidth=0.3, alpha=0.5)
    axes.legend(loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # no "Software" entry: the file should not change with the matplotlib version alone
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
