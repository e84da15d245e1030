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

import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import REFUSALS, Interrupted
from ..runtime import DistributedContext, close_distributed, init_distributed, resolve_device
from .build import build_run
from .checkpoint import STATE_FILE, ResumeError, load_state
from .config import ConfigError, TrainConfig, read_config_file
from .elastic import elastic_config
from .loop import Progress, restore_checkpoint, run_epochs
from .outputs import open_output, write_summary

AUTO = "auto"  # resume the output folder's run if it has a checkpoint, else start it
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


def edited_options(folder: Path, stored: TrainConfig) -> dict:
    """The options of the run's args.yaml that differ from its checkpoint's: edits made to the file since
    the run wrote it (an option left out of the file is not an edit). ConfigError for a file that cannot be
    read, an unknown option or a value of the wrong kind, naming the file."""
    path = folder / "args.yaml"
    if not path.is_file():
        return {}
    values = read_config_file(path)
    try:  # the file's values checked as any config's
        TrainConfig.from_dict(values, where=str(path))
    except ConfigError as error:
        prefix = "" if error.template.startswith(str(path)) else f"{path}: "
        raise ConfigError(prefix + error.template) from None
    saved = stored.to_dict()
    return {key: value for key, value in values.items()
            if (list(value) if isinstance(value, tuple) else value) != saved[key]}


def resume_config(stored: TrainConfig, given: dict, source: str, edited: dict | None = None,
                  edited_in: str = "args.yaml") -> TrainConfig:
    """The stored run's config with the options given again on resume, and the `edited` options of its
    args.yaml (`edited_in`) where none is given; ResumeError for a change that would make it another run
    (another model, class count, batch ...): never silently dropped."""
    values = stored.to_dict()
    for key, value in (edited or {}).items():
        if key in given:  # the command line wins over the file
            continue
        if key not in RESUMABLE_CHANGES:
            raise ResumeError(f"{edited_in} was edited after the run wrote it ({{{key}}} {values[key]!r} -> "
                              f"{value!r}); a resume cannot change {{{key}}}, which would make it another "
                              "run: undo the edit, or start a new run from the file with another {output} "
                              f"(see {REFUSALS})")
        given = {**given, key: value}
    unknown = sorted(set(given) - set(values))
    if unknown:
        raise ConfigError(f"{source}: unknown option {', '.join(map(repr, unknown))}")
    for key, value in given.items():
        # grad_accum follows the number of processes, which is known later (`check_grad_accum`)
        if key in RESUMABLE_CHANGES or key == "grad_accum" or value is None:
            continue
        if isinstance(value, tuple):
            value = list(value)
        if values[key] != value:
            what = {"model": "architecture", "num_classes": "class count"}.get(key, f"{{{key}}}")
            raise ResumeError(f"{source} is a run of {key}={values[key]!r}, not {value!r}: resuming cannot "
                              f"change its {what}; start a new run with another {{output}} instead")
    changes = {k: v for k, v in given.items()
               if k in RESUMABLE_CHANGES and (v is not None or k in (edited or {}))}
    epochs = stored.schedule.epochs
    if changes.get("epochs", epochs) != epochs and stored.schedule.sched != "constant":
        raise ResumeError(f"{source} was scheduled for {epochs} epochs; changing {{epochs}} on resume would "
                          "change its learning-rate schedule (start a new run, or use {sched} constant)")
    return stored.replace(**changes)


def check_grad_accum(given: int | None, stored: int, now: int, source: str) -> None:
    """A `grad_accum` given again on resume must be the run's, or the one that keeps its global batch on
    this number of processes (so the command that started a run can restart it on another)."""
    if given is not None and given not in (stored, now):
        raise ResumeError(f"{source} keeps its global batch, so {{grad_accum}} is {now} on this number of "
                          f"processes, not {given}; leave {{grad_accum}} out to resume it")


def auto_resume(output: Path, overwrite: bool) -> tuple[str | None, bool]:
    """What `resume='auto'` does in `output`: (the run to resume, or None to start afresh; overwrite).

    A folder with a checkpoint is resumed. A run that wrote no checkpoint yet (killed before its first) is
    started again in place; anything else in the folder is refused as usual."""
    if (output / STATE_FILE).is_file():
        return str(output), overwrite
    return None, overwrite or (output / "args.yaml").is_file()


def interrupted(output: Path, saved_step: int | None, context: DistributedContext) -> Interrupted:
    """What Ctrl-C leaves: the last checkpoint (atomic writes: never a half one) and the command that
    resumes it, or that there is none."""
    if saved_step is None:
        return Interrupted("training interrupted before its first checkpoint: start it again with "
                           "{overwrite=True} (or another {output})", context.is_main)
    resume = f"visionzoo train --resume {shlex.quote(str(output))}"
    # under torchrun: any number of processes that keeps the global batch (elastic.py)
    how = f"`torchrun ... -m {resume}`" if context.world_size > 1 else f"`{resume}`"
    return Interrupted(f"training interrupted; the last checkpoint in {output} (update {saved_step}) is "
                       f"kept: resume it with {how}", context.is_main)


def train(config: TrainConfig | None = None, *, resume: str | None = None, overwrite: bool = False,
          train_transform: Callable | None = None, batch_transform: Callable | None = None,
          criterion: Callable | None = None, command: str | None = None,
          resume_overrides: dict | None = None) -> TrainResult:
    """Train as `config` says, or continue the run saved at `resume` (a run folder or its checkpoint.pt;
    'auto': the run in `config`'s output folder if it wrote a checkpoint, else a fresh start, so that
    `torchrun --max-restarts` restarts a failed group without a person). The run may resume on another
    number of processes, mid-epoch too (see `elastic.py`).

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

    if resume == AUTO:
        if config is None:
            raise ValueError("train(resume='auto') needs the run's config")
        resume, overwrite = auto_resume(Path(config.task.output), overwrite)
    state, applied, given_accum = None, {}, None
    if resume is not None:
        state = load_state(resume)
        stored = TrainConfig.from_dict(state["config"], where=str(resume))
        overrides = dict(resume_overrides or {})
        if config is not None:
            defaults = TrainConfig().to_dict()
            overrides.update({k: v for k, v in config.to_dict().items() if v != defaults[k]})
        folder = Path(resume) if Path(resume).is_dir() else Path(resume).parent
        overrides.setdefault("output", str(folder))
        edited = edited_options(folder, stored)
        config = resume_config(stored, overrides, str(resume), edited, str(folder / "args.yaml"))
        applied = {k: v for k, v in edited.items() if k not in overrides}
        given_accum = overrides.get("grad_accum")
    if config is None:
        raise ValueError("train() needs a config or a run to resume")
    if not config.task.model or not config.task.data or not config.task.output:
        raise ConfigError("{model}, {data} and {output} must be set")
    context = init_distributed(resolve_device(config.runtime.device).type)
    lock, progress = None, None
    try:
        if state is not None:
            # another number of processes keeps the global batch through grad_accum (elastic.py)
            stored_accum = config.optim.grad_accum
            config = elastic_config(config, state["world_size"], context.world_size, str(resume))
            check_grad_accum(given_accum, stored_accum, config.optim.grad_accum, str(resume))
        lock = open_output(Path(config.task.output), context, new=state is None, overwrite=overwrite)
        run = build_run(config, context, train_transform, batch_transform, criterion, command)
        output = Path(run.config.task.output)
        progress = Progress.start(run)
        if state is not None:
            progress = restore_checkpoint(run, state)
            if context.is_main:
                moved = (f" on {context.world_size} process(es) instead of {state['world_size']}, "
                         f"{run.config.optim.grad_accum} micro-batch(es) per update"
                         if state["world_size"] != context.world_size else "")
                print(f"resuming {output} at epoch {progress.epoch + 1}, update {progress.step}{moved}",
                      file=sys.stderr)
                before = stored.to_dict()
                for key, value in applied.items():
                    print(f"resuming with the edit of args.yaml: {key} {before[key]!r} -> {value!r}",
                          file=sys.stderr)
                write_summary(output, progress.rows)
        run_epochs(run, progress)
        best = progress.best.entries[0][0] if progress.best.entries else None
        return TrainResult(output, progress.rows, best, progress.step, context.is_main)
    except KeyboardInterrupt:
        saved = progress.saved_step if progress is not None else state["step"] if state is not None else None
        raise interrupted(Path(config.task.output), saved, context) from None
    finally:
        if lock is not None:
            lock.release()
        close_distributed()
