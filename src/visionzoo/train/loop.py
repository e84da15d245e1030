"""The training loop, top to bottom: the epochs; an epoch of steps; a step (forward, backward, optimiser
update); the evaluation and the outputs after each epoch; the checkpoint that resumes it to the exact bit.

Everything the loop works on is in `Run` (build.py); where the run stands is in `Progress`, which the
checkpoint saves with the weights, the optimiser and every random state.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.transforms import normalize_batch
from ..evaluation import evaluate
from ..runtime import precision_dtype
from .checkpoint import ResumeError, rng_state, save_model_file, save_state, set_rng_state
from .model_folders import save_weights_folder
from .outputs import BestTracker, draw_curves, write_summary
from .progress import TrainProgress
from .run import Run


@dataclass
class Progress:
    """Where a run stands: updates made, the epoch and its micro-batches done, that epoch's running loss
    sum, time and images so far, the summary rows of finished epochs and the best ones."""

    best: BestTracker
    step: int = 0
    epoch: int = 0
    position: int = 0  # micro-batches of `epoch` done on every rank
    loss_sum: torch.Tensor = field(default_factory=lambda: torch.zeros((), dtype=torch.float64))
    seconds: float = 0.0
    samples: int = 0
    rows: list[dict] = field(default_factory=list)

    @classmethod
    def start(cls, run: Run) -> Progress:
        """The progress of a run that has not begun."""
        return cls(BestTracker(run.config.outputs.keep), loss_sum=torch.zeros((), dtype=torch.float64,
                                                                                device=run.device))

    def next_epoch(self) -> None:
        self.epoch, self.position, self.seconds, self.samples = self.epoch + 1, 0, 0.0, 0
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.loss_sum.device)


def run_epochs(run: Run, progress: Progress) -> None:
    """Train from where `progress` stands to the last epoch, evaluating, writing and checkpointing after
    each."""
    output = Path(run.config.task.output)
    for _ in range(progress.epoch, run.config.schedule.epochs):
        lr = train_epoch(run, progress)
        row, scores = evaluate_epoch(run, progress, lr)
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
    for index, batch in enumerate(loader, start=progress.position):
        if batch.images is None:
            continue
        last_micro = (index + 1) % accum == 0
        loss = forward_backward(run, batch.images, batch.targets, epoch, sync=last_micro)
        progress.loss_sum += loss.double()
        progress.samples += len(batch.targets) * run.context.world_size
        if not last_micro:
            continue
        lr = optimizer_step(run, progress.step)
        progress.step += 1
        if run.model.ema is not None:
            run.model.ema.update(run.model.core, progress.step)
        bar.update(loss, lr)
        every = config.outputs.checkpoint_every
        if every and progress.step % every == 0 and (index + 1) // accum < run.updates_per_epoch:
            progress.position, progress.seconds = index + 1, seconds_before + time.perf_counter() - began
            save_checkpoint(run, progress, Path(config.task.output))
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


def evaluate_epoch(run: Run, progress: Progress, lr: float) -> tuple[dict, dict[str, float]]:
    """The epoch's summary row (train loss over every rank, the model's and the EMA's eval scores) and the
    eval top-1 of each of them."""
    micro_batches = run.data.micro_batches
    total = progress.loss_sum.clone()
    if run.context.world_size > 1:
        torch.distributed.all_reduce(total)
    seconds, samples = progress.seconds, progress.samples
    row = {"epoch": progress.epoch + 1, "step": progress.step, "lr": lr,
           "train_loss": float(total) / (micro_batches * run.context.world_size),
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
    rngs = _gather_rng(run)  # every rank takes part, one rank writes
    if not run.context.is_main:
        return
    model, ema = run.model, run.model.ema
    state = {
        "config": run.config.to_dict(), "world_size": run.context.world_size, "step": progress.step,
        "epoch": progress.epoch, "position": progress.position,
        "epoch_loss_sum": progress.loss_sum.detach().cpu(), "epoch_seconds": progress.seconds,
        "epoch_samples": progress.samples, "model": model.core.state_dict(),
        "optimizer": run.optim.optimizer.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "scaler": run.optim.scaler.state_dict() if run.optim.scaler is not None else None,
        "rng": rngs, "rows": progress.rows, "best": progress.best.entries,
        "label_names": run.data.label_names,
    }
    save_state(output, state)
    meta = {"arch": model.arch, "num_classes": str(model.num_classes), "step": str(progress.step)}
    last = output / "last"
    save_weights_folder(last, model.core.state_dict(), run.folder_config, {**meta, "weights": "model"})
    if ema is not None:
        save_model_file(last / "ema.safetensors", ema.state_dict(), {**meta, "weights": "ema"})


def _gather_rng(run: Run) -> list[dict]:
    mine = rng_state()
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
    set_rng_state(state["rng"][run.context.rank])
    return Progress(best=BestTracker(run.config.outputs.keep, list(state["best"])), step=state["step"],
                    epoch=state["epoch"], position=state["position"],
                    loss_sum=state["epoch_loss_sum"].to(run.device), seconds=state["epoch_seconds"],
                    samples=state["epoch_samples"], rows=list(state["rows"]))
