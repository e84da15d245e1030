"""The run folder and what a run writes besides checkpoints: one writer per folder (its lock), args.yaml,
summary.csv, curves.png; which weights are best."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, VisionzooError
from ..files import LOCK_FILE, FolderLock, atomic_write, remove_stale_temporaries, write_text_atomic
from ..runtime import DistributedContext
from .checkpoint import STATE_FILE

SUMMARY_FIELDS = ("epoch", "step", "lr", "train_loss", "eval_loss", "eval_top1", "eval_top5", "ema_eval_loss",
                  "ema_eval_top1", "ema_eval_top5", "images_per_sec", "seconds", "unreadable_images")
# Columns that measure time: they differ between two runs of the same computation.
TIMING_FIELDS = ("images_per_sec", "seconds")
RUN_FILES = ("args.yaml", "summary.csv", "curves.png", STATE_FILE, "last", "best")


class OutputExistsError(ConfigError, FileExistsError):
    """The output folder already holds a run."""


def check_output(folder: Path, overwrite: bool) -> None:
    """Raise OutputExistsError for a file, or a folder that holds files without `overwrite`."""
    _refuse_file(folder)
    if folder.is_dir() and any(e.name != LOCK_FILE for e in folder.iterdir()) and not overwrite:
        raise OutputExistsError(f"{{output}} {folder} already holds files; pass {{resume}} {folder} to "
                                "continue that run, {overwrite} to replace it, or another {output}")


def _refuse_file(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{{output}} {folder} is a file; give a folder")


def open_output(folder: Path, context: DistributedContext, new: bool, overwrite: bool) -> FolderLock | None:
    """Make `folder` this run's, before anything is written to it: the main process takes its lock for the
    run's life (a second run on it is refused, naming the process that holds it); a `new` run's folder must
    be empty unless `overwrite`; then the main process prepares it and removes the temporary files that
    interrupted writes left (only while it holds the lock, so never a live writer's). Every process raises
    the same error, so that none waits for a peer that stopped. Returns the lock (None on other ranks)."""
    _agreed(context, lambda: _refuse_file(folder))
    existed, locked_before = folder.exists(), (folder / LOCK_FILE).exists()
    # Only the main process writes (under torchrun, on every machine), so only it holds the lock.
    lock = _agreed(context, lambda: FolderLock(folder, "run folder") if context.is_main else None)
    try:
        if new:
            _agreed(context, lambda: check_output(folder, overwrite))
        if context.is_main:
            if new:
                prepare_output(folder, overwrite)
            if not new or overwrite:
                removed = remove_stale_temporaries(folder)
                if removed:
                    print(f"removed {len(removed)} temporary file(s) that interrupted writes left in "
                          f"{folder}", file=sys.stderr)
    except BaseException:
        if lock is not None:  # a refused folder is left as it was found
            if not locked_before:
                lock.path.unlink(missing_ok=True)
            lock.release()
            if not existed:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    return lock


def _agreed(context: DistributedContext, action):
    """`action()` on every process; if it raised a VisionzooError on any of them, every process raises the
    first (by rank)."""
    error, result = None, None
    try:
        result = action()
    except VisionzooError as raised:
        error = raised
    if context.world_size > 1:
        import torch.distributed

        errors: list = [None] * context.world_size
        torch.distributed.all_gather_object(errors, error)
        error = next((e for e in errors if e is not None), None)
    if error is not None:
        if result is not None and hasattr(result, "release"):
            result.release()
        raise error
    return result


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
    try:
        atomic_write(folder / "curves.png", lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    finally:
        plt.close(fig)


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
