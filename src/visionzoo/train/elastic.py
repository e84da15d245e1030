"""Resuming a run on another number of processes (elastic resume), mid-epoch included.

Why it works: an epoch's sample order is one sequence, a function of (seed, epoch) alone (`data/samplers.py`),
and update u of the epoch takes its samples `u * G` to `(u + 1) * G`, G the global batch
(`batch_size` x processes x `grad_accum`), however they are dealt to processes and micro-batches. So a
checkpoint after u updates has used exactly the first `u * G` samples, and W' processes that keep G (each
micro-batch the same `batch_size`, `grad_accum` scaled by W / W') take the rest of the sequence: no sample
twice, none skipped, the same updates per epoch, so the same learning-rate schedule.

What cannot carry over bit for bit: the per-rank random states (dropout masks, mixing draws) of ranks that
no longer exist, and the summation order of the gradients. A resumed run on the same number of processes
stays bit-identical; on another it is the same training, to float rounding and fresh random draws.
"""

from __future__ import annotations

import random

import torch

from ..data.samplers import derive_seed
from .checkpoint import ResumeError
from .config import TrainConfig


def process_counts(micro_batches_per_update: int) -> list[int]:
    """The process counts that keep a global batch of `micro_batches_per_update` micro-batches: its
    divisors."""
    return [n for n in range(1, micro_batches_per_update + 1) if micro_batches_per_update % n == 0]


def elastic_config(config: TrainConfig, stored_world: int, world: int, source: str) -> TrainConfig:
    """`config` (a run written by `stored_world` processes) for `world` processes: the same micro-batch and
    global batch, `grad_accum` scaled by stored_world / world.

    Raises ResumeError, naming the process counts that work, where `world` does not divide the micro-batches
    of one update.
    """
    if world == stored_world:
        return config
    per_update = stored_world * config.optim.grad_accum
    if per_update % world:
        counts = ", ".join(map(str, process_counts(per_update)))
        global_batch = per_update * config.inputs.batch_size
        raise ResumeError(f"{source} has a global batch of {global_batch} ({{batch_size}} "
                          f"{config.inputs.batch_size} x {stored_world} process(es) x {{grad_accum}} "
                          f"{config.optim.grad_accum}), which {world} processes cannot keep; resume it with "
                          f"{counts} process(es)")
    return config.replace(grad_accum=per_update // world)


def resumed_position(position: int, stored_world: int, world: int) -> int:
    """The micro-batches of the epoch done by each of `world` processes, from the `position` of each of
    `stored_world` (checkpoints fall on update boundaries, so the samples used divide evenly)."""
    used = position * stored_world
    if used % world:
        raise ResumeError(f"the checkpoint stands at micro-batch {position} of {stored_world} process(es), "
                          f"between two updates; it cannot be split over {world}")
    return used // world


def check_epoch_length(stored: int | None, now: int, stored_world: int, world: int, source: str) -> None:
    """Refuse a world size under which an epoch has another number of updates than the run was scheduled
    for (possible with `aug_repeats`, whose epochs are rounded per process)."""
    if stored is not None and stored != now:
        raise ResumeError(f"{source}: an epoch has {stored} updates on {stored_world} process(es) but {now} "
                          f"on {world} (repeated augmentation rounds each process's share), which would "
                          "change the learning-rate schedule; resume it on another number of processes")


def rank_loss_sum(sums: list[torch.Tensor], rank: int, world: int) -> torch.Tensor:
    """This rank's part of the epoch's running loss sum: its own on the same world; on another, rank 0
    carries the sum over the old ranks (the epoch's mean is taken over every rank's sum)."""
    if len(sums) == world:
        return sums[rank]
    if rank == 0:
        return torch.stack([s.to(torch.float64) for s in sums]).sum()
    return torch.zeros((), dtype=torch.float64)


def rank_reading(readings: list[list[int]], rank: int, world: int) -> list[int]:
    """This rank's (micro-batches used, images unreadable) of the epoch so far, as `rank_loss_sum` splits
    the loss sum."""
    if len(readings) == world:
        return list(readings[rank])
    return [sum(reading[i] for reading in readings) for i in range(2)] if rank == 0 else [0, 0]


def reseed_rank(seed: int, step: int, rank: int, world: int) -> None:
    """Fresh random states for a rank that has none of its own in the checkpoint (another world size):
    drawn from (seed, step, rank, world), so that the same elastic resume repeats exactly."""
    import numpy as np

    value = derive_seed(seed, step, rank, world, -3)
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)
