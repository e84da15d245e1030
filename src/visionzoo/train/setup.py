"""Everything a run works on, built from its config: model (DDP, compiled), EMA, optimiser, scaler,
schedule, data, loss; and the small operations the loop needs from them."""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .. import __version__
from ..data import ModelClasses, create_dataset, create_loader, create_transform, resolve_data_config
from ..data.auto_augment import parse_rand_augment
from ..data.loader import collate_samples, default_workers
from ..data.mixup import BatchMixer, MixupOptions
from ..data.train_transforms import (
    TRAIN_INTERPOLATIONS,
    TrainAugmentation,
    create_batch_erasing,
    create_train_transform,
)
from ..data.transforms import normalize_batch
from ..evaluation import evaluate
from ..factory import create_model
from ..files import write_text_atomic
from ..recipes import get_recipe
from ..registry import get_architecture
from ..runtime import precision_dtype
from .config import AUGMENTATION_KEYS, ConfigError, TrainConfig
from .data import EpochBatchSampler, RepeatBatchSampler, SeededSamples, derive_seed, train_transform
from .ema import ModelEma
from .losses import LabelSmoothingCrossEntropy
from .model_folders import data_sha256, run_model_config, training_classes
from .optim import create_optimizer, default_lr, is_known_optimizer
from .param_groups import param_groups
from .schedule import Schedule, lr_scale_rule, scaled_lr
from .soft_losses import create_loss


def _seed_everything(seed: int) -> None:
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_lr(config: TrainConfig, global_batch: int) -> tuple[float, str]:
    """The peak learning rate and a note saying where it came from."""
    if config.lr is not None:
        return config.lr, "--lr as given"
    rule = config.lr_base_scale or lr_scale_rule(config.opt)
    base = config.lr_base if config.lr_base is not None else default_lr(config.opt)
    lr = scaled_lr(base, global_batch, config.lr_base_size, rule)
    source = "--lr-base" if config.lr_base is not None else f"the default base lr of {config.opt}"
    if config.recipe and config.lr_base is not None:
        if get_recipe(config.recipe).train_options().get("lr_base") == config.lr_base:
            source = f"recipe {config.recipe}: lr"
    return lr, (f"{source} {base:g} at batch {config.lr_base_size}, scaled ({rule}) to the global batch "
                f"{global_batch}: {lr:.6g}")


class Run:
    """The model, data and optimiser of one run on one process (see `build_run`)."""

    def __init__(self, **parts):
        self.__dict__.update(parts)

    # ---- steps of the loop ----------------------------------------------------------------------------
    def autocast(self):
        amp = self.config.amp
        dtype = precision_dtype(amp) if amp is not None else torch.float32
        return torch.autocast(self.device.type, dtype=dtype, enabled=amp is not None)

    def forward_backward(self, images: torch.Tensor, targets: torch.Tensor, last_micro: bool = True,
                         batch_transform: Callable | None = None, epoch: int = 0) -> torch.Tensor:
        """One micro-batch: uint8 images to the device, normalised, (mixed,) forward, loss, backward.
        Returns the detached loss; the gradients accumulate until `optimizer_step`."""
        images = normalize_batch(images.to(self.device, non_blocking=True), self.data_config)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(self.device, non_blocking=True)
        if batch_transform is not None:
            images, targets = batch_transform(images, targets, epoch=epoch)
        with self.no_sync(not last_micro), self.autocast():
            loss = self.criterion(self.model(images), targets)
        scaled = loss / self.config.grad_accum
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        return loss.detach()

    def no_sync(self, skip: bool):
        """DDP skips the gradient all-reduce on micro-batches that do not end an update."""
        if skip and self.context.world_size > 1:
            return self.ddp.no_sync()
        return contextlib.nullcontext()

    def optimizer_step(self) -> None:
        cfg = self.config
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if cfg.clip_grad is not None:
            params = [p for p in self.core.parameters() if p.grad is not None]
            if cfg.clip_mode == "norm":
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            else:
                torch.nn.utils.clip_grad_value_(params, cfg.clip_grad)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.context.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor)
        return tensor

    def train_loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        """This rank's batches of `epoch` from micro-batch `start` on."""
        cfg = self.config
        stop = self.updates_per_epoch * cfg.grad_accum
        if cfg.aug_repeats > 1:
            sampler = RepeatBatchSampler(len(self.train_data), cfg.batch_size, cfg.seed, epoch,
                                         self.context.rank, self.context.world_size, cfg.aug_repeats, start,
                                         stop)
        else:
            sampler = EpochBatchSampler(len(self.train_data), cfg.batch_size, cfg.seed, epoch,
                                        self.context.rank, self.context.world_size, start, stop)
        return torch.utils.data.DataLoader(
            self.train_data, batch_sampler=sampler, num_workers=self.workers, collate_fn=collate_samples,
            pin_memory=self.device.type == "cuda", prefetch_factor=4 if self.workers > 0 else None,
            # Its own generator: the loader draws its worker base seed from it, not from the training RNG,
            # which must advance the same way in a resumed run as in the run it replaces.
            generator=torch.Generator().manual_seed(derive_seed(cfg.seed, epoch)))

    def evaluate(self, module: torch.nn.Module):
        result = evaluate(module, self.val_loader, self.data_config, self.device, amp=self.config.amp,
                          channels_last=self.config.channels_last)
        return result

    def progress(self, epoch: int, start_update: int) -> TrainProgress:
        return TrainProgress(epoch, self.config.epochs, self.updates_per_epoch, start_update,
                             self.config.log_every, enabled=self.context.is_main)


class TrainProgress:
    """A tqdm bar per epoch with loss, lr and images/s on a terminal; otherwise a line every `log_every`."""

    def __init__(self, epoch: int, epochs: int, total: int, done: int, log_every: int, enabled: bool):
        self.label = f"epoch {epoch + 1}/{epochs}"
        self.total, self.done, self.log_every = total, done, log_every
        self.enabled = enabled
        self.start, self.start_done = time.perf_counter(), done
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=self.label, unit="step", file=sys.stderr,
                            dynamic_ncols=True, leave=False)

    def update(self, loss: torch.Tensor, lr: float) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if self.done % 10 == 0 or self.done == self.total:  # .item() waits for the device: not every step
                self.bar.set_postfix_str(f"loss {loss.item():.4f} lr {lr:.3g}", refresh=False)
        elif self.done % self.log_every == 0 or self.done == self.total:
            rate = (self.done - self.start_done) / max(time.perf_counter() - self.start, 1e-9)
            print(f"{self.label}: update {self.done}/{self.total}, loss {loss.item():.4f}, lr {lr:.3g}, "
                  f"{rate:.2f} updates/s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def check_augmentation(config: TrainConfig) -> None:
    """ConfigError for a RandAugment string that does not parse (before any data-loader worker meets it)."""
    if config.aa:
        try:
            parse_rand_augment(config.aa)
        except ValueError as error:
            raise ConfigError(f"--aa: {str(error).splitlines()[0]}") from None


def recipe_transform(config: TrainConfig) -> Callable | None:
    """DataConfig -> train transform with the recipe augmentation `config` sets (crop, flips, RandAugment
    or jitter, grayscale, blur; erasing is left to the batch), or None when it sets none of it."""
    defaults = TrainConfig()
    if all(getattr(config, key) == getattr(defaults, key) for key in AUGMENTATION_KEYS):
        return None
    def make(data_config) -> Callable:
        interpolation = config.train_interpolation or data_config.interpolation
        options = TrainAugmentation(
            scale=config.scale, ratio=config.ratio, hflip=config.hflip, vflip=config.vflip,
            color_jitter=config.color_jitter, color_jitter_prob=config.color_jitter_prob,
            grayscale_prob=config.grayscale_prob, gaussian_blur_prob=config.gaussian_blur_prob, aa=config.aa,
            train_interpolation=interpolation if interpolation in TRAIN_INTERPOLATIONS else "bilinear")
        return create_train_transform(data_config.img_size, options, mean=data_config.mean,
                                      std=data_config.std, normalize=False)

    return make


class RecipeBatchTransform:
    """Random erasing, then mixup/cutmix, of a normalised batch on the device (engine's batch_transform).
    Its randomness is the training RNG's, which checkpoints save, so a resumed run draws the same."""

    def __init__(self, erasing: Callable | None, mixer):
        self.erasing, self.mixer = erasing, mixer

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, epoch: int = 0):
        if self.erasing is not None:
            images = self.erasing(images)
        if self.mixer is not None:
            self.mixer.set_epoch(epoch)
            images, targets = self.mixer(images, targets)
        return images, targets


def recipe_batch_and_loss(config: TrainConfig, num_classes: int) -> tuple[Callable | None, Callable | None]:
    """The batch transform (erasing, mixing) and the criterion (soft-target CE or BCE) `config` sets; None
    for what it leaves off."""
    options = config.to_dict()
    erasing = create_batch_erasing({"reprob": config.reprob, "remode": config.remode,
                                    "recount": config.recount})
    mixing = MixupOptions.from_options(options)
    mixer = BatchMixer(mixing, num_classes) if mixing.active else None
    batch = RecipeBatchTransform(erasing, mixer) if erasing is not None or mixer is not None else None
    criterion = create_loss(options) if mixer is not None or config.bce_loss else None
    return batch, criterion


def _device(config: TrainConfig, local_rank: int) -> torch.device:
    name = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but no CUDA device is available; "
                              "use --device cpu")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def build_run(config: TrainConfig, context, transform: Callable | None, criterion: Callable | None,
              command: str | None) -> Run:
    """Build the run's pieces on this process; rank 0 writes args.yaml."""

    if not config.model or not config.data or not config.output:
        raise ConfigError("--model, --data and --output are required (or --resume RUN, or --config FILE)")
    if not is_known_optimizer(config.opt):
        # raises, naming the choices
        create_optimizer([torch.zeros(1, requires_grad=True)], config.opt, lr=0.1)
    check_augmentation(config)
    device = _device(config, context.local_rank)
    if config.sync_bn and device.type == "cpu" and context.world_size > 1:
        raise ConfigError("--sync-bn needs CUDA devices (torch's SyncBatchNorm does not run on the CPU); "
                          "train without it")
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    _seed_everything(config.seed)

    architecture = get_architecture(config.model)
    with torch.device("meta"):
        blueprint = create_model(config.model)
    size_kwargs = {}
    if config.img_size is not None and getattr(blueprint, "fixed_input_size", False):
        size_kwargs["img_size"] = config.img_size
    # Without --num-classes: the classes of the initial weights (the tag's, or the checkpoint file's).
    model = create_model(config.model, pretrained=config.pretrained, checkpoint_path=config.checkpoint,
                         num_classes=config.num_classes, drop_rate=config.drop,
                         drop_path_rate=config.drop_path, **size_kwargs)
    num_classes = model.num_classes
    data_config = resolve_data_config(model, img_size=config.img_size)
    # Each rank draws its own dropout / drop-path masks; the model was initialised identically on all.
    torch.manual_seed(config.seed + context.rank)

    workers = default_workers(context.world_size) if config.workers is None else config.workers
    make_transform = (transform or recipe_transform(config)
                      or (lambda c: train_transform(c, config.scale, config.ratio, config.hflip)))
    train_set = create_dataset(config.data, transform=make_transform(data_config),
                               classes=training_classes(model))
    label_names = train_set.classes  # the run's classes, stored in its model folders
    accum, world = config.grad_accum, context.world_size
    global_batch = config.batch_size * world * accum
    if config.aug_repeats > 1:
        batches = RepeatBatchSampler.batches_per_epoch(len(train_set), config.batch_size, world,
                                                       config.aug_repeats)
    else:
        batches = EpochBatchSampler.batches_per_epoch(len(train_set), config.batch_size, world)
    updates_per_epoch = batches // accum
    if updates_per_epoch < 1:
        raise ConfigError(f"{len(train_set)} training images make no full global batch of {global_batch} "
                          f"(--batch-size {config.batch_size} x {world} process(es) x --grad-accum {accum}); "
                          "lower --batch-size")
    val_loader = None
    if config.val_data:
        val_set = create_dataset(config.val_data, transform=create_transform(data_config, normalize=False),
                                 classes=ModelClasses(num_classes, label_names))
        val_loader = create_loader(val_set, config.batch_size, workers, rank=context.rank, world_size=world,
                                   pin_memory=device.type == "cuda")

    core = model.to(device)
    if config.channels_last:
        core = core.to(memory_format=torch.channels_last)
    if config.sync_bn and world > 1:
        core = torch.nn.SyncBatchNorm.convert_sync_batchnorm(core)
    ema = None
    if config.ema is not None:
        ema = ModelEma(core, config.ema, config.ema_warmup, config.ema_warmup_gamma, config.ema_warmup_power)
    lr, lr_note = resolve_lr(config, global_batch)
    groups = param_groups(core, config.weight_decay, config.layer_decay)
    optimizer = create_optimizer(groups, config.opt, lr=lr, weight_decay=config.weight_decay,
                                 momentum=config.momentum, eps=config.opt_eps, betas=config.opt_betas)
    ddp = None
    runner = core
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [device.index] if device.type == "cuda" else None
        ddp = runner = DistributedDataParallel(core, device_ids=device_ids)
    if config.compile:
        runner = torch.compile(runner)
    scaler = torch.amp.GradScaler("cuda") if config.amp == "fp16" and device.type == "cuda" else None

    total = updates_per_epoch * config.epochs
    def steps(epochs: float) -> int:
        return round(epochs * updates_per_epoch)

    schedule = Schedule(lr=lr, total_steps=total, sched=config.sched,
                        warmup_steps=steps(config.warmup_epochs), warmup_lr=config.warmup_lr,
                        min_lr=config.min_lr, cooldown_steps=steps(config.cooldown_epochs),
                        decay_steps=max(1, steps(config.decay_epochs)), decay_rate=config.decay_rate)
    recipe_batch, recipe_criterion = recipe_batch_and_loss(config, num_classes)
    resolved = config.replace(lr=lr, num_classes=num_classes, img_size=data_config.img_size[0],
                              device=device.type, workers=workers)
    if context.is_main:
        _write_args(resolved, command, world, global_batch, lr_note, data_sha256(train_set))
    return Run(config=resolved, label_names=label_names,
               model_config=run_model_config(model, data_config, label_names, config.pretrained),
               context=context, device=device, arch=architecture.name,
               num_classes=num_classes, model=runner, core=core, ddp=ddp, ema=ema, optimizer=optimizer,
               scaler=scaler, schedule=schedule, updates_per_epoch=updates_per_epoch, data_config=data_config,
               train_data=SeededSamples(train_set, config.seed), val_loader=val_loader, workers=workers,
               batch_transform=recipe_batch,
               criterion=criterion or recipe_criterion or LabelSmoothingCrossEntropy(config.smoothing))


def _write_args(config: TrainConfig, command: str | None, world_size: int, global_batch: int,
                lr_note: str, data_hash: str) -> None:
    extra = {"visionzoo_version": __version__, "torch_version": str(torch.__version__),
             "command": command, "world_size": world_size, "global_batch": global_batch, "lr_note": lr_note,
             "data_sha256": data_hash}
    write_text_atomic(Path(config.output) / "args.yaml", config.to_yaml(extra))

