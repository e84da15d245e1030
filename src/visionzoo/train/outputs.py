"""What a run writes besides checkpoints: args.yaml, summary.csv, curves.png; which weights are best."""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..files import write_text_atomic
from .checkpoint import STATE_FILE

SUMMARY_FIELDS = ("epoch", "step", "lr", "train_loss", "eval_loss", "eval_top1", "eval_top5", "ema_eval_loss",
                  "ema_eval_top1", "ema_eval_top5", "images_per_sec", "seconds")
# Columns that measure time: they differ between two runs of the same computation.
TIMING_FIELDS = ("images_per_sec", "seconds")
RUN_FILES = ("args.yaml", "summary.csv", "curves.png", STATE_FILE, "last", "best")


class OutputExistsError(ConfigError, FileExistsError):
    """The output folder already holds a run."""


def check_output(folder: Path, overwrite: bool) -> None:
    """Raise OutputExistsError for a file, or a folder that holds files without `overwrite`."""
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{{output}} {folder} is a file; give a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise OutputExistsError(f"{{output}} {folder} already holds files; pass {{resume}} {folder} to "
                                "continue that run, {overwrite} to replace it, or another {output}")


def prepare_output(folder: Path, overwrite: bool) -> None:
    """Create `folder`; refuse one that holds files unless `overwrite`, which removes the run's own files
    (only those: a folder given by mistake keeps anything else)."""
    check_output(folder, overwrite)
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name in RUN_FILES or entry.name.startswith("epoch-"):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def write_summary(folder: Path, rows: list[dict]) -> None:
    """summary.csv: one row per finished epoch."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in SUMMARY_FIELDS})
    write_text_atomic(folder / "summary.csv", buffer.getvalue())


_NOTED = []


def draw_curves(folder: Path, rows: list[dict]) -> None:
    """curves.png: train/eval loss, eval top-1 and the learning rate against epoch (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if not _NOTED:
            print("note: curves.png is not drawn: matplotlib is missing (pip install 'visionzoo[report]')",
                  file=sys.stderr)
            _NOTED.append(True)
        return
    epochs = [r["epoch"] for r in rows]

    def series(key):
        return [math.nan if r.get(key) is None else r[key] for r in rows]

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(epochs, series("train_loss"), "o-", label="train")
    axes[0].plot(epochs, series("eval_loss"), "o-", label="eval")
    if any(r.get("ema_eval_loss") is not None for r in rows):
        axes[0].plot(epochs, series("ema_eval_loss"), "o-", label="eval (EMA)")
    axes[1].plot(epochs, series("eval_top1"), "o-", label="model")
    if any(r.get("ema_eval_top1") is not None for r in rows):
        axes[1].plot(epochs, series("ema_eval_top1"), "o-", label="EMA")
    axes[2].plot(epochs, series("lr"), "o-")
    for axis, title in zip(axes, ("loss", "eval top-1 (%)", "learning rate (end of epoch)"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.tight_layout()
    tmp = folder / ".curves.png.tmp"
    fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    os.replace(tmp, folder / "curves.png")


@dataclass
class BestTracker:
    """The `keep` best epochs by eval top-1 (each epoch scored by the better of model and EMA)."""

    keep: int
    entries: list[list] = field(default_factory=list)  # [top1, epoch, "model" | "ema"], best first

    def offer(self, top1: float, epoch: int, which: str) -> tuple[bool, list[int]]:
        """Record an epoch's score; returns (whether it is the new best, epochs that fell out of the top)."""
        if math.isnan(top1):
            return False, []
        self.entries.append([top1, epoch, which])
        # Ties go to the earlier epoch: a later one must be strictly better to replace it.
        self.entries.sort(key=lambda e: (-e[0], e[1]))
        dropped = [e[1] for e in self.entries[self.keep:]]
        self.entries = self.entries[:self.keep]
        return self.entries[0][1] == epoch, dropped

    def kept(self, epoch: int) -> bool:
        return any(e[1] == epoch for e in self.entries)
