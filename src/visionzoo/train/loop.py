"""The training loop, top to bottom: the epochs; an epoch of steps; a step (forward, backward, optimiser
update); the evaluation and the outputs after each epoch; the checkpoint that resumes it to the exact bit.

Everything the loop works on is in `Run` (build.py); where the run stands is in `Progress`, which the
checkpoint saves with the weights, the optimiser and every random state.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.transforms import normalize_batch
from ..evaluation import evaluate
from ..runtime import precision_dtype
from .checkpoint import ResumeError, rng_state, save_model_file, save_state, set_rng_state
from .elastic import check_epoch_length, rank_loss_sum, rank_reading, reseed_rank, resumed_position
from .health import (
    EpochReading,
    check_epoch_reading,
    check_finite,
    check_val_outputs,
    check_val_reading,
    note_unreadable,
    track_loss,
)
from .model_folders import save_weights_folder
from .outputs import BestTracker, draw_curves, write_summary
from .probes import fault_point, record_batch
from .progress import TrainProgress
from .run import Run


@dataclass
class Progress:
    """Where a run stands: updates made, the epoch and its micro-batches done, that epoch's running loss
    sum, time, images and reading so far, the summary rows of finished epochs and the best ones; and, not
    saved, the first update whose loss was not finite and the update of the last checkpoint written."""

    best: BestTracker
    step: int = 0
    epoch: int = 0
    position: int = 0  # micro-batches of `epoch` done on every rank
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    seconds: float = 0.0
    samples: int = 0
    rows: list[dict] = field(default_factory=list)
    reading: EpochReading = field(default_factory=EpochReading)
    first_bad: torch.Tensor = field(default_factory=lambda: torch.full((), -1, dtype=torch.int64))
    saved_step: int | None = None
    noted: set[str] = field(default_factory=set)  # what unreadable images were already noted

    @classmethod
    def start(cls, run: Run) -> Progress:
        """The progress of a run that has not begun."""
        return cls(BestTracker(run.config.outputs.keep), loss_sum=torch.zeros((), dtype=torch.float64,
                                                                                device=run.device),
                   first_bad=torch.full((), -1, dtype=torch.int64, device=run.device))

    def next_epoch(self) -> None:
        self.epoch, self.position, self.seconds, self.samples = self.epoch + 1, 0, 0.0, 0
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.loss_sum.device)
        self.reading = EpochReading()


def run_epochs(run: Run, progress: Progress) -> None:
    """Train from where `progress` stands to the last epoch, evaluating, writing and checkpointing after
    each."""
    output = Path(run.config.task.output)
    for _ in range(progress.epoch, run.config.schedule.epochs):
        lr = train_epoch(run, progress)
        _check_finite(run, progress, lr)
        used, unreadable = check_epoch_reading(progress.reading, progress.epoch, run.config.task.data,
                                               run.device)
        if unreadable and run.context.is_main and "train" not in progress.noted:
            note_unreadable("training", unreadable, progress.reading.examples)
            progress.noted.add("train")
        row, scores = evaluate_epoch(run, progress, lr, used)
        row["unreadable_images"] = unreadable
        progress.rows.append(row)
        write_epoch_outputs(run, progress, output, row, scores)
        progress.next_epoch()
        save_checkpoint(run, progress, output)


def train_epoch(run: Run, progress: Progress) -> float:
    """The steps of `progress.epoch` from its `position` on (a checkpoint every `checkpoint_every`
    updates); returns the learning rate of its last update."""
    config, epoch = run.config, progress.epoch
    accum = config.optim.grad_accum
    loader = run.data.loader(epoch, progress.position)
    run.model.runner.train()
    bar = TrainProgress(epoch, config.schedule.epochs, run.updates_per_epoch, progress.position // accum,
                        config.outputs.log_every, enabled=run.context.is_main)
    began, seconds_before = time.perf_counter(), progress.seconds
    lr = run.optim.schedule(max(progress.step - 1, 0))
    learnt = False  # whether a micro-batch of this update had images
    for index, batch in enumerate(loader, start=progress.position):
        last_micro = (index + 1) % accum == 0
        progress.reading.add(batch.failures, batch.images is not None, run.data.train_set.dataset.name)
        record_batch(run.context.rank, epoch, progress.step, batch.indices)
        if batch.images is None:  # every image of it unreadable
            loss = skip_micro_batch(run, sync=last_micro)
        else:
            loss = forward_backward(run, batch.images, batch.targets, epoch, sync=last_micro)
            progress.first_bad = track_loss(progress.first_bad, loss, progress.step)
            progress.loss_sum += loss.double()
            progress.samples += len(batch.targets) * run.context.world_size
            learnt = True
        if not last_micro:
            continue
        if learnt or run.model.ddp is not None:
            lr = optimizer_step(run, progress.step)
        else:  # no image in this update, alone: the step of the schedule passes, the weights stay
            lr = run.optim.schedule(progress.step)
            run.optim.optimizer.zero_grad(set_to_none=True)
        learnt = False
        progress.step += 1
        if run.model.ema is not None:
            run.model.ema.update(run.model.core, progress.step)
        bar.update(loss, lr)
        every = config.outputs.checkpoint_every
        if every and progress.step % every == 0 and (index + 1) // accum < run.updates_per_epoch:
            progress.position, progress.seconds = index + 1, seconds_before + time.perf_counter() - began
            _check_finite(run, progress, lr)
            save_checkpoint(run, progress, Path(config.task.output))
        fault_point(run.context.rank, progress.step)
    bar.close()
    progress.seconds = seconds_before + time.perf_counter() - began
    return lr


def forward_backward(run: Run, images: torch.Tensor, targets: torch.Tensor, epoch: int,
                     sync: bool = True) -> torch.Tensor:
    """One micro-batch: uint8 images to the device, normalised, (mixed,) forward, loss, backward.
    Returns the detached loss; the gradients accumulate until `optimizer_step`. Without `sync`, DDP skips
    the gradient all-reduce (a micro-batch that does not end an update)."""
    config = run.config
    images = normalize_batch(images.to(run.device, non_blocking=True), run.data.data_config)
    if config.runtime.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = targets.to(run.device, non_blocking=True)
    if run.data.batch_transform is not None:
        images, targets = run.data.batch_transform(images, targets, epoch=epoch)
    ddp = run.model.ddp
    with ddp.no_sync() if not sync and ddp is not None else contextlib.nullcontext(), _autocast(run):
        loss = run.optim.criterion(run.model.runner(images), targets)
    scaled = loss / config.optim.grad_accum
    scaler = run.optim.scaler
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    return loss.detach()


def skip_micro_batch(run: Run, sync: bool) -> torch.Tensor:
    """A micro-batch of which no image could be read. A process alone skips it. Under DDP the others wait for
    its gradients, so it makes a zero-weighted pass of a blank image (in eval mode: no batch-norm statistics
    change) and takes part in the all-reduce with zero gradients. Returns a zero loss (not counted)."""
    ddp = run.model.ddp
    zero = torch.zeros((), device=run.device)
    if ddp is None:
        return zero
    blank = torch.zeros(1, *run.data.data_config.input_size, device=run.device)
    run.model.runner.eval()
    try:
        with ddp.no_sync() if not sync else contextlib.nullcontext(), _autocast(run):
            (run.model.runner(blank).float().sum() * 0).backward()
    finally:
        run.model.runner.train()
    return zero


def _check_finite(run: Run, progress: Progress, lr: float) -> None:
    check_finite(progress.first_bad, run.model.core, progress.step, progress.epoch, lr,
                 run.config.task.output, progress.saved_step)


def _autocast(run: Run):
    amp = run.config.runtime.amp
    dtype = precision_dtype(amp) if amp is not None else torch.float32
    return torch.autocast(run.device.type, dtype=dtype, enabled=amp is not None)


def optimizer_step(run: Run, step: int) -> float:
    """The update after `step` updates: the learning rate of the schedule (times each group's `lr_scale`),
    the gradients unscaled and clipped, the optimiser's step. Returns the learning rate."""
    options, optimizer, scaler = run.config.optim, run.optim.optimizer, run.optim.scaler
    lr = run.optim.schedule(step)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    if scaler is not None:
        scaler.unscale_(optimizer)
    if options.clip_grad is not None:
        params = [p for p in run.model.core.parameters() if p.grad is not None]
        if options.clip_mode == "norm":
            torch.nn.utils.clip_grad_norm_(params, options.clip_grad)
        else:
            torch.nn.utils.clip_grad_value_(params, options.clip_grad)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return lr


def evaluate_epoch(run: Run, progress: Progress, lr: float, used: int) -> tuple[dict, dict[str, float]]:
    """The epoch's summary row (train loss over the `used` micro-batches of every rank, the model's and the
    EMA's eval scores) and the eval top-1 of each of them. DataError if no validation image could be
    read."""
    total = progress.loss_sum.clone()
    if run.context.world_size > 1:
        torch.distributed.all_reduce(total)
    seconds, samples = progress.seconds, progress.samples
    row = {"epoch": progress.epoch + 1, "step": progress.step, "lr": lr,
           "train_loss": float(total) / used,
           "images_per_sec": round(samples / seconds, 1) if seconds > 0 else None,
           "seconds": round(seconds, 2)}
    scores = {}
    if run.data.val_loader is not None:
        ema = run.model.ema
        for which, module in (("model", run.model.core), ("ema", ema.module if ema is not None else None)):
            if module is None:
                continue
            result = evaluate(module, run.data.val_loader, run.data.data_config, run.device,
                              amp=run.config.runtime.amp, channels_last=run.config.runtime.channels_last)
            name = run.data.val_loader.dataset.name
            check_val_reading(result.count, result.failures, name, run.config.task.val_data)
            check_val_outputs(result.loss, progress.step, progress.epoch, lr, run.config.task.output,
                              progress.saved_step)
            if result.failures and run.context.is_main and "val" not in progress.noted:
                note_unreadable("validation", len(result.failures),
                                [f"{name(index)} ({error})" for index, error in result.failures])
                progress.noted.add("val")
            prefix = "" if which == "model" else "ema_"
            row.update({f"{prefix}eval_loss": result.loss, f"{prefix}eval_top1": result.top1,
                        f"{prefix}eval_top5": result.top5})
            scores[which] = result.top1
    return row, scores


def write_epoch_outputs(run: Run, progress: Progress, output: Path, row: dict,
                        scores: dict[str, float]) -> None:
    """The epoch's line on stderr, summary.csv and curves.png, and its weights where they are among the
    best. Every rank keeps the ranking (the scores are merged over ranks, so all agree); one rank writes."""
    epoch = progress.epoch + 1
    is_best, dropped, which = False, [], None
    if scores:
        which = max(scores, key=lambda k: (scores[k], k == "model"))
        is_best, dropped = progress.best.offer(scores[which], epoch, which)
    if not run.context.is_main:
        return
    line = (f"epoch {epoch}/{run.config.schedule.epochs}: train loss {row['train_loss']:.4f}, "
            f"lr {row['lr']:.3g}, {row['images_per_sec']} img/s")
    if row.get("unreadable_images"):
        line += f" ({row['unreadable_images']} unreadable images skipped)"
    if scores:
        line += f", eval top-1 {row['eval_top1']:.2f}"
        if "ema" in scores:
            line += f" (EMA {row['ema_eval_top1']:.2f})"
        module = run.model.core if which == "model" else run.model.ema.module
        meta = {"arch": run.model.arch, "num_classes": str(run.model.num_classes), "epoch": str(epoch),
                "weights": which, "eval_top1": repr(scores[which])}
        if is_best:
            save_weights_folder(output / "best", module.state_dict(), run.folder_config, meta)
        if run.config.outputs.keep > 1 and progress.best.kept(epoch):
            save_weights_folder(output / f"epoch-{epoch:03d}", module.state_dict(), run.folder_config, meta)
        for gone in dropped:
            shutil.rmtree(output / f"epoch-{gone:03d}", ignore_errors=True)
    print(line, file=sys.stderr, flush=True)
    write_summary(output, progress.rows)
    draw_curves(output, progress.rows)


# ---- the checkpoint ----------------------------------------------------------------------------------------
def save_checkpoint(run: Run, progress: Progress, output: Path) -> None:
    """checkpoint.pt (the whole training state: every rank's random states, gathered) and last/ (the
    weights), written by one rank."""
    ranks = _gather_rank_states(run, progress)  # every rank takes part, one rank writes
    if not run.context.is_main:
        progress.saved_step = progress.step
        return
    model, ema = run.model, run.model.ema
    state = {
        "config": run.config.to_dict(), "world_size": run.context.world_size, "step": progress.step,
        "epoch": progress.epoch, "position": progress.position, "updates_per_epoch": run.updates_per_epoch,
        "epoch_loss_sums": [rank["loss_sum"] for rank in ranks], "epoch_seconds": progress.seconds,
        "epoch_samples": progress.samples, "model": model.core.state_dict(),
        "epoch_readings": [rank["reading"] for rank in ranks],
        "optimizer": run.optim.optimizer.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "scaler": run.optim.scaler.state_dict() if run.optim.scaler is not None else None,
        "rng": [rank["rng"] for rank in ranks], "rows": progress.rows, "best": progress.best.entries,
        "label_names": run.data.label_names,
    }
    with _ctrl_c_after():
        save_state(output, state)
        progress.saved_step = progress.step  # what a resume starts from: the weights folders follow
    meta = {"arch": model.arch, "num_classes": str(model.num_classes), "step": str(progress.step)}
    last = output / "last"
    save_weights_folder(last, model.core.state_dict(), run.folder_config, {**meta, "weights": "model"})
    if ema is not None:
        save_model_file(last / "ema.safetensors", ema.state_dict(), {**meta, "weights": "ema"})


@contextlib.contextmanager
def _ctrl_c_after():
    """Ctrl-C while the training state is written takes effect once it is whole and counted: the run stops
    on the checkpoint it was writing, and the message that follows names the one that is there."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda *_: received.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt


def _gather_rank_states(run: Run, progress: Progress) -> list[dict]:
    """Every rank's own state, by rank: its random states, its part of the epoch's loss sum and reading."""
    mine = {"rng": rng_state(), "loss_sum": progress.loss_sum.detach().cpu(),
            "reading": [progress.reading.used, progress.reading.unreadable]}
    if run.context.world_size == 1:
        return [mine]
    every: list = [None] * run.context.world_size
    torch.distributed.all_gather_object(every, mine)
    return every


def restore_checkpoint(run: Run, state: dict) -> Progress:
    """Load a training state into the run's parts and this rank's random states; returns where it stood.

    Raises ResumeError for weights or optimiser state that do not fit the run's model.
    """
    model = run.model
    try:
        model.core.load_state_dict(state["model"])
        run.optim.optimizer.load_state_dict(state["optimizer"])
        if model.ema is not None:
            model.ema.load_state_dict(state["ema"])
    except (RuntimeError, ValueError, KeyError, TypeError) as error:  # an edited or mixed-up file
        reason = str(error).strip().splitlines()[0]
        raise ResumeError(f"the training checkpoint in {run.config.task.output} does not fit "
                          f"{model.arch}: {reason}") from None
    if run.optim.scaler is not None and state["scaler"] is not None:
        run.optim.scaler.load_state_dict(state["scaler"])
    names = run.data.label_names
    if state.get("label_names", names) != names:
        raise ResumeError(f"the training data's classes changed since {run.config.task.output} started "
                          f"({len(state['label_names'] or ())} then, {len(names or ())} now); "
                          "resume it on the same data, or start a new run")
    # On another number of processes (elastic resume), the rest of the epoch is split over the new ones.
    rank, world, stored_world = run.context.rank, run.context.world_size, state["world_size"]
    position = state["position"]
    if world == stored_world:
        set_rng_state(state["rng"][rank])
    else:
        check_epoch_length(state.get("updates_per_epoch"), run.updates_per_epoch, stored_world, world,
                           run.config.task.output)
        position = resumed_position(position, stored_world, world)
        reseed_rank(run.config.runtime.seed, state["step"], rank, world)
    # a checkpoint of an earlier visionzoo: rank 0's sum only; every micro-batch so far had images
    sums = state.get("epoch_loss_sums", [state.get("epoch_loss_sum")])
    readings = state.get("epoch_readings", [state.get("epoch_reading", [state["position"], 0])])
    return Progress(best=BestTracker(run.config.outputs.keep, list(state["best"])), step=state["step"],
                    epoch=state["epoch"], position=position,
                    loss_sum=rank_loss_sum(sums, rank, world).to(run.device), seconds=state["epoch_seconds"],
                    samples=state["epoch_samples"], rows=list(state["rows"]),
                    reading=EpochReading(*rank_reading(readings, rank, world)),
                    first_bad=torch.full((), -1, dtype=torch.int64, device=run.device),
                    saved_step=state["step"])
