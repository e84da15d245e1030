"""What one process of a run works on, as typed records: the model, the data, the optimisation; `build.py`
makes them from the config, `loop.py` uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..data.config import DataConfig
from ..data.loader import collate_samples
from ..data.samplers import EpochBatchSampler, RepeatBatchSampler, SeededSamples, derive_seed
from ..runtime import DistributedContext
from .config import TrainConfig
from .ema import ModelEma
from .schedule import Schedule


@dataclass
class RunModel:
    """The model being trained. `core` holds the weights (its state dict is what is saved); `runner` is
    what the forward pass calls: `core`, wrapped by DDP over several processes, compiled with `compile`."""

    arch: str
    num_classes: int
    core: nn.Module
    runner: nn.Module
    ddp: nn.parallel.DistributedDataParallel | None
    ema: ModelEma | None


@dataclass
class RunData:
    """The training data of this rank, in the order of (seed, epoch), and the validation loader.

    An epoch is `updates_per_epoch * grad_accum` micro-batches of `batch_size` images per rank; the sample
    order is a function of (seed, epoch) and a resumed epoch starts at any micro-batch (`loader`).
    """

    data_config: DataConfig  # the preprocessing: size, normalisation (done on the device), eval crop
    train_set: SeededSamples  # the training images, keyed by (epoch, index[, position])
    label_names: tuple[str, ...] | None  # the run's classes, by label (from the data, or the head kept)
    val_loader: torch.utils.data.DataLoader | None
    batch_transform: Callable | None  # (images, targets, epoch=) -> (images, targets), on the device
    batch_size: int
    micro_batches: int  # per epoch and rank
    aug_repeats: float
    workers: int
    seed: int
    context: DistributedContext
    pin_memory: bool

    def batch_sampler(self, epoch: int, start: int) -> torch.utils.data.Sampler:
        """This rank's micro-batches of `epoch`, from micro-batch `start` on."""
        rank, world = self.context.rank, self.context.world_size
        if self.aug_repeats > 1:
            return RepeatBatchSampler(len(self.train_set), self.batch_size, self.seed, epoch, rank, world,
                                      self.aug_repeats, start, self.micro_batches)
        return EpochBatchSampler(len(self.train_set), self.batch_size, self.seed, epoch, rank, world, start,
                                 self.micro_batches)

    def loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        """This rank's batches of `epoch` from micro-batch `start` on."""
        return torch.utils.data.DataLoader(
            self.train_set, batch_sampler=self.batch_sampler(epoch, start), num_workers=self.workers,
            collate_fn=collate_samples, pin_memory=self.pin_memory,
            prefetch_factor=4 if self.workers > 0 else None,
            # Its own generator: the loader draws its worker base seed from it, not from the training RNG,
            # which must advance the same way in a resumed run as in the run it replaces.
            generator=torch.Generator().manual_seed(derive_seed(self.seed, epoch)))


@dataclass
class RunOptimisation:
    """How the weights change: the loss, the optimiser, its learning rate by step, the fp16 scaler."""

    criterion: Callable  # (logits, targets) -> loss
    optimizer: torch.optim.Optimizer
    schedule: Schedule  # update step -> learning rate
    scaler: torch.amp.GradScaler | None
    lr_note: str  # where the peak learning rate came from (args.yaml)


@dataclass
class Run:
    """One process's run: its resolved config (every option as it takes effect, written to args.yaml), its
    place among the processes, its device, the three parts the loop works on, and the config.json of the
    model folders it writes (best/, last/, epoch-NNN/: the model at its trained size, with its classes)."""

    config: TrainConfig
    context: DistributedContext
    device: torch.device
    model: RunModel
    data: RunData
    optim: RunOptimisation
    folder_config: dict

    @property
    def updates_per_epoch(self) -> int:
        return self.data.micro_batches // self.config.optim.grad_accum
