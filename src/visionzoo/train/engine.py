"""`train`: a run from its config, or the run a checkpoint resumes, on one process or a torchrun group.
It checks the output folder, joins the process group, builds the run (build.py) and runs its epochs
(loop.py): validation every epoch, checkpoints that resume to the exact bit.

    from visionzoo.train import TrainConfig, train
    train(TrainConfig(model="efficientnet_lite0", pretrained=True, num_classes=10, data="photos/train",
                      val_data="photos/val", output="runs/lite0", epochs=5, lr=0.01))

The pieces the recipes change are arguments: `train_transform` (DataConfig -> PIL-to-uint8-tensor
transform), `batch_transform` (mixup/cutmix on the normalised batch on the device) and `criterion`
(logits, targets -> loss).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..runtime import close_distributed, init_distributed, resolve_device
from .build import build_run
from .checkpoint import ResumeError, load_state
from .config import ConfigError, TrainConfig
from .loop import Progress, restore_checkpoint, run_epochs
from .outputs import check_output, prepare_output, write_summary

# Options that may differ when a run is resumed: they do not change the computation.
RESUMABLE_CHANGES = ("output", "workers", "log_every", "checkpoint_every", "keep", "device", "epochs")


@dataclass
class TrainResult:
    """What `train` leaves: the output folder, the summary rows, the best epoch's score (None without
    validation data), the number of updates made, and whether this process is the one that wrote."""

    output: Path
    rows: list[dict]
    best_top1: float | None
    steps: int
    main_process: bool = True  # False on the other ranks of a torchrun group


def resume_config(stored: TrainConfig, given: dict, source: str) -> TrainConfig:
    """The stored run's config with the options given again on resume; ResumeError for a change that would
    make it another run (another model, class count, batch ...)."""
    values = stored.to_dict()
    unknown = sorted(set(given) - set(values))
    if unknown:
        raise ConfigError(f"{source}: unknown option {', '.join(map(repr, unknown))}")
    for key, value in given.items():
        if key in RESUMABLE_CHANGES or value is None:
            continue
        if isinstance(value, tuple):
            value = list(value)
        if values[key] != value:
            what = {"model": "architecture", "num_classes": "class count"}.get(key, f"{{{key}}}")
            raise ResumeError(f"{source} is a run of {key}={values[key]!r}, not {value!r}: resuming cannot "
                              f"change its {what}; start a new run with another {{output}} instead")
    changes = {k: v for k, v in given.items() if k in RESUMABLE_CHANGES and v is not None}
    epochs = stored.schedule.epochs
    if changes.get("epochs", epochs) != epochs and stored.schedule.sched != "constant":
        raise ResumeError(f"{source} was scheduled for {epochs} epochs; changing {{epochs}} on resume would "
                          "change its learning-rate schedule (start a new run, or use {sched} constant)")
    return stored.replace(**changes)


def train(config: TrainConfig | None = None, *, resume: str | None = None, overwrite: bool = False,
          train_transform: Callable | None = None, batch_transform: Callable | None = None,
          criterion: Callable | None = None, command: str | None = None,
          resume_overrides: dict | None = None) -> TrainResult:
    """Train as `config` says, or continue the run saved at `resume` (a run folder or its checkpoint.pt).

    Args:
        overwrite: replace a run already in the output folder (otherwise that is an error).
        train_transform: DataConfig -> transform from a PIL image to a (3, H, W) uint8 tensor; default the
            one `config.augment` makes (by default a random-resized crop and a flip).
        batch_transform: (images, targets, epoch=...) -> (images, targets) on the normalised batch, e.g.
            mixup; targets may become class probabilities.
        criterion: (logits, targets) -> loss; default the one `config.loss` makes.
        command: the command line, recorded in args.yaml.
        resume_overrides: options given again with `resume` (checked by `resume_config`).
    """

    state = None
    if resume is not None:
        state = load_state(resume)
        stored = TrainConfig.from_dict(state["config"], where=str(resume))
        overrides = dict(resume_overrides or {})
        if config is not None:
            defaults = TrainConfig().to_dict()
            overrides.update({k: v for k, v in config.to_dict().items() if v != defaults[k]})
        overrides.setdefault("output", str(Path(resume) if Path(resume).is_dir() else Path(resume).parent))
        config = resume_config(stored, overrides, str(resume))
    if config is None:
        raise ValueError("train() needs a config or a run to resume")
    if not config.task.model or not config.task.data or not config.task.output:
        raise ConfigError("{model}, {data} and {output} must be set")
    context = init_distributed(resolve_device(config.runtime.device).type)
    try:
        if state is not None and state["world_size"] != context.world_size:
            raise ResumeError(f"{resume} was written by {state['world_size']} process(es); resume it with "
                              f"the same number (now {context.world_size}), so the data order stays the same")
        if state is None:
            # Every rank checks before any writes, so that all of them stop on a refused folder (a rank
            # left alone would wait for its peers forever); then one rank prepares it.
            check_output(Path(config.task.output), overwrite)
            if context.world_size > 1:
                torch.distributed.barrier()
            if context.is_main:
                prepare_output(Path(config.task.output), overwrite)
        run = build_run(config, context, train_transform, batch_transform, criterion, command)
        output = Path(run.config.task.output)
        progress = Progress.start(run)
        if state is not None:
            progress = restore_checkpoint(run, state)
            if context.is_main:
                print(f"resuming {output} at epoch {progress.epoch + 1}, update {progress.step}",
                      file=sys.stderr)
                write_summary(output, progress.rows)
        run_epochs(run, progress)
        best = progress.best.entries[0][0] if progress.best.entries else None
        return TrainResult(output, progress.rows, best, progress.step, context.is_main)
    finally:
        close_distributed()
