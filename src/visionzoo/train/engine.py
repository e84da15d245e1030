"""The training loop: one process or a torchrun group, validation every epoch, checkpoints that resume to
the exact bit.

    from visionzoo.train import TrainConfig, train
    train(TrainConfig(model="efficientnet_lite0", pretrained=True, num_classes=10, data="photos/train",
                      val_data="photos/val", output="runs/lite0", epochs=5, lr=0.01))

The pieces the recipes change are arguments: `train_transform` (DataConfig -> PIL-to-uint8-tensor
transform), `batch_transform` (mixup/cutmix on the normalised batch on the device) and `criterion`
(logits, targets -> loss).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..evaluation import close_distributed, init_distributed
from .checkpoint import ResumeError, load_state, rng_state, save_model_file, save_state, set_rng_state
from .config import TrainConfig
from .model_folders import save_weights_folder
from .outputs import BestTracker, check_output, draw_curves, prepare_output, write_summary
from .setup import Run, build_run

# Options that may differ when a run is resumed: they do not change the computation.
RESUMABLE_CHANGES = ("output", "workers", "log_every", "checkpoint_every", "keep", "device", "epochs")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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
    for key, value in given.items():
        if key in RESUMABLE_CHANGES or value is None:
            continue
        if getattr(stored, key) != value:
            what = {"model": "architecture", "num_classes": "class count"}.get(key, _flag(key))
            raise ResumeError(f"{source} is a run of {key}={getattr(stored, key)!r}, not {value!r}: resuming "
                              f"cannot change its {what}; start a new run with another --output instead")
    changes = {k: v for k, v in given.items() if k in RESUMABLE_CHANGES and v is not None}
    if changes.get("epochs", stored.epochs) != stored.epochs and stored.sched != "constant":
        raise ResumeError(f"{source} was scheduled for {stored.epochs} epochs; changing --epochs on resume "
                          "would change its learning-rate schedule (start a new run, or use --sched "
                          "constant)")
    return stored.replace(**changes)


def train(config: TrainConfig | None = None, *, resume: str | None = None, overwrite: bool = False,
          train_transform: Callable | None = None, batch_transform: Callable | None = None,
          criterion: Callable | None = None, command: str | None = None,
          resume_overrides: dict | None = None) -> TrainResult:
    """Train as `config` says, or continue the run saved at `resume` (a run folder or its checkpoint.pt).

    Args:
        overwrite: replace a run already in the output folder (otherwise that is an error).
        train_transform: DataConfig -> transform from a PIL image to a (3, H, W) uint8 tensor; default the
            random-resized crop and flip of `TrainConfig.scale/ratio/hflip`.
        batch_transform: (images, targets, epoch=...) -> (images, targets) on the normalised batch, e.g.
            mixup; targets may become class probabilities.
        criterion: (logits, targets) -> loss; default cross-entropy with `config.smoothing`.
        command: the command line, recorded in args.yaml.
        resume_overrides: options given again with `resume` (checked by `resume_config`).
    """

    state = None
    if resume is not None:
        state = load_state(resume)
        stored = TrainConfig.from_dict(state["config"], where=str(resume))
        overrides = dict(resume_overrides or {})
        if config is not None:
            defaults = TrainConfig()
            overrides.update({f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                              if getattr(config, f.name) != getattr(defaults, f.name)})
        overrides.setdefault("output", str(Path(resume) if Path(resume).is_dir() else Path(resume).parent))
        config = resume_config(stored, overrides, str(resume))
    if config is None:
        raise ValueError("train() needs a config or a run to resume")
    device_type = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    context = init_distributed(device_type)
    try:
        if state is not None and state["world_size"] != context.world_size:
            raise ResumeError(f"{resume} was written by {state['world_size']} process(es); resume it with "
                              f"the same number (now {context.world_size}), so the data order stays the same")
        if state is None:
            # Every rank checks before any writes, so that all of them stop on a refused folder (a rank
            # left alone would wait for its peers forever); then one rank prepares it.
            check_output(Path(config.output), overwrite)
            if context.world_size > 1:
                torch.distributed.barrier()
            if context.is_main:
                prepare_output(Path(config.output), overwrite)
        run = build_run(config, context, train_transform, criterion, command)
        return _Loop(run, batch_transform).run(state)
    finally:
        close_distributed()


class _Loop:
    """The epochs of one run; `setup.Run` holds the model, data and optimiser it works on."""

    def __init__(self, run: Run, batch_transform: Callable | None):
        self.run_ = run
        # a batch transform given to train() replaces the one the config's mixup/erasing options build
        self.batch_transform = batch_transform or run.batch_transform
        self.step = 0
        self.rows: list[dict] = []
        self.best = BestTracker(run.config.keep)
        self.output = Path(run.config.output)

    # ---- state ----------------------------------------------------------------------------------------
    def _gather_rng(self) -> list[dict]:
        import torch.distributed as dist

        mine = rng_state()
        if self.run_.context.world_size == 1:
            return [mine]
        every: list = [None] * self.run_.context.world_size
        dist.all_gather_object(every, mine)
        return every

    def _save(self, epoch: int, position: int, loss_sum: torch.Tensor, seconds: float, samples: int) -> None:
        r = self.run_
        rngs = self._gather_rng()  # every rank takes part, one rank writes
        if not r.context.is_main:
            return
        state = {
            "config": r.config.to_dict(), "world_size": r.context.world_size, "step": self.step,
            "epoch": epoch, "position": position, "epoch_loss_sum": loss_sum.detach().cpu(),
            "epoch_seconds": seconds, "epoch_samples": samples, "model": r.core.state_dict(),
            "optimizer": r.optimizer.state_dict(),
            "ema": r.ema.state_dict() if r.ema is not None else None,
            "scaler": r.scaler.state_dict() if r.scaler is not None else None,
            "rng": rngs, "rows": self.rows, "best": self.best.entries, "label_names": r.label_names,
        }
        save_state(self.output, state)
        meta = {"arch": r.arch, "num_classes": str(r.num_classes), "step": str(self.step)}
        last = self.output / "last"
        save_weights_folder(last, r.core.state_dict(), r.model_config, {**meta, "weights": "model"})
        if r.ema is not None:
            save_model_file(last / "ema.safetensors", r.ema.state_dict(), {**meta, "weights": "ema"})

    def _restore(self, state: dict) -> tuple[int, int, torch.Tensor, float, int]:
        r = self.run_
        try:
            r.core.load_state_dict(state["model"])
            r.optimizer.load_state_dict(state["optimizer"])
            if r.ema is not None:
                r.ema.load_state_dict(state["ema"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:  # an edited or mixed-up file
            reason = str(error).strip().splitlines()[0]
            raise ResumeError(f"the training checkpoint in {self.output} does not fit {r.arch}: "
                              f"{reason}") from None
        if r.scaler is not None and state["scaler"] is not None:
            r.scaler.load_state_dict(state["scaler"])
        if state.get("label_names", r.label_names) != r.label_names:
            raise ResumeError(f"the training data's classes changed since {self.output} started "
                              f"({len(state['label_names'] or ())} then, {len(r.label_names or ())} now); "
                              "resume it on the same data, or start a new run")
        set_rng_state(state["rng"][r.context.rank])
        self.step, self.rows, self.best.entries = state["step"], list(state["rows"]), list(state["best"])
        loss_sum = state["epoch_loss_sum"].to(r.device)
        return state["epoch"], state["position"], loss_sum, state["epoch_seconds"], state["epoch_samples"]

    # ---- the loop -------------------------------------------------------------------------------------
    def run(self, state: dict | None) -> TrainResult:
        r = self.run_
        cfg = r.config
        start_epoch, position = 0, 0
        loss_sum, seconds, samples = torch.zeros((), dtype=torch.float64, device=r.device), 0.0, 0
        if state is not None:
            start_epoch, position, loss_sum, seconds, samples = self._restore(state)
            if r.context.is_main:
                print(f"resuming {self.output} at epoch {start_epoch + 1}, update {self.step}",
                      file=sys.stderr)
                write_summary(self.output, self.rows)
        for epoch in range(start_epoch, cfg.epochs):
            self._train_epoch(epoch, position, loss_sum, seconds, samples)
            position, seconds, samples = 0, 0.0, 0
            loss_sum = torch.zeros((), dtype=torch.float64, device=r.device)
        best = self.best.entries[0][0] if self.best.entries else None
        return TrainResult(self.output, self.rows, best, self.step, self.run_.context.is_main)

    def _set_lr(self) -> float:
        lr = self.run_.schedule(self.step)
        for group in self.run_.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def _train_epoch(self, epoch: int, start: int, loss_sum: torch.Tensor, seconds: float,
                     samples: int) -> None:
        r, cfg = self.run_, self.run_.config
        accum = cfg.grad_accum
        loader = r.train_loader(epoch, start)
        r.model.train()
        progress = r.progress(epoch, start // accum)
        began = time.perf_counter()
        lr = r.schedule(max(self.step - 1, 0))
        for index, batch in enumerate(loader, start=start):
            if batch.images is None:
                continue
            last_micro = (index + 1) % accum == 0
            loss = r.forward_backward(batch.images, batch.targets, last_micro, self.batch_transform, epoch)
            loss_sum += loss.double()
            samples += len(batch.targets) * r.context.world_size
            if not last_micro:
                continue
            lr = self._set_lr()
            r.optimizer_step()
            self.step += 1
            if r.ema is not None:
                r.ema.update(r.core, self.step)
            progress.update(loss, lr)
            updates_done = (index + 1) // accum
            if (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0
                    and updates_done < r.updates_per_epoch):
                elapsed = seconds + time.perf_counter() - began
                self._save(epoch, index + 1, loss_sum, elapsed, samples)
        progress.close()
        seconds += time.perf_counter() - began
        self._end_epoch(epoch, lr, loss_sum, seconds, samples)

    def _end_epoch(self, epoch: int, lr: float, loss_sum: torch.Tensor, seconds: float, samples: int) -> None:
        r = self.run_
        micro_batches = r.updates_per_epoch * r.config.grad_accum
        total = r.all_reduce_sum(loss_sum.clone())
        row = {"epoch": epoch + 1, "step": self.step, "lr": lr,
               "train_loss": float(total) / (micro_batches * r.context.world_size),
               "images_per_sec": round(samples / seconds, 1) if seconds > 0 else None,
               "seconds": round(seconds, 2)}
        scores = {}
        if r.val_loader is not None:
            for which, module in (("model", r.core), ("ema", r.ema.module if r.ema is not None else None)):
                if module is None:
                    continue
                result = r.evaluate(module)
                prefix = "" if which == "model" else "ema_"
                row.update({f"{prefix}eval_loss": result.loss, f"{prefix}eval_top1": result.top1,
                            f"{prefix}eval_top5": result.top5})
                scores[which] = result.top1
        self.rows.append(row)
        # Every rank keeps the ranking (the scores are merged over ranks, so all agree); one rank writes.
        is_best, dropped, which = False, [], None
        if scores:
            which = max(scores, key=lambda k: (scores[k], k == "model"))
            is_best, dropped = self.best.offer(scores[which], epoch + 1, which)
        if r.context.is_main:
            self._write_epoch_outputs(epoch, row, scores, which, is_best, dropped)
        self._save(epoch + 1, 0, torch.zeros((), dtype=torch.float64), 0.0, 0)

    def _write_epoch_outputs(self, epoch: int, row: dict, scores: dict, which: str | None, is_best: bool,
                             dropped: list[int]) -> None:
        r = self.run_
        line = (f"epoch {epoch + 1}/{r.config.epochs}: train loss {row['train_loss']:.4f}, "
                f"lr {row['lr']:.3g}, {row['images_per_sec']} img/s")
        if scores:
            line += f", eval top-1 {row['eval_top1']:.2f}"
            if "ema" in scores:
                line += f" (EMA {row['ema_eval_top1']:.2f})"
            module = r.core if which == "model" else r.ema.module
            meta = {"arch": r.arch, "num_classes": str(r.num_classes), "epoch": str(epoch + 1),
                    "weights": which, "eval_top1": repr(scores[which])}
            if is_best:
                save_weights_folder(self.output / "best", module.state_dict(), r.model_config, meta)
            if r.config.keep > 1 and self.best.kept(epoch + 1):
                folder = self.output / f"epoch-{epoch + 1:03d}"
                save_weights_folder(folder, module.state_dict(), r.model_config, meta)
            for gone in dropped:
                shutil.rmtree(self.output / f"epoch-{gone:03d}", ignore_errors=True)
        print(line, file=sys.stderr, flush=True)
        write_summary(self.output, self.rows)
        draw_curves(self.output, self.rows)

