"""Batches for evaluation: worker processes, uint8 collation into shared memory, exact sharding across
ranks."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch

from ..errors import UserError
from .image_dataset import ImageDataset, Sample


@dataclass
class Batch:
    """Decoded images of one batch (uint8 (B, 3, H, W) when the transform does not normalise), their labels
    and dataset indices, and the items of the batch that could not be read as (index, error)."""

    images: torch.Tensor | None
    targets: torch.Tensor
    indices: torch.Tensor
    failures: list[tuple[int, str]] = field(default_factory=list)

    def pin_memory(self) -> Batch:
        # Called by the DataLoader's pinning thread: page-locked memory makes the copy to the GPU
        # asynchronous.
        images = self.images.pin_memory() if self.images is not None else None
        return Batch(images, self.targets.pin_memory(), self.indices.pin_memory(), self.failures)


def collate_samples(samples: list[Sample]) -> Batch:
    """Stack the readable samples of a batch; unreadable ones only leave their index and error."""
    good = [s for s in samples if s.image is not None]
    failures = [(s.index, s.error) for s in samples if s.image is None]
    # default_collate stacks straight into shared memory inside a worker, saving one copy per batch.
    images = torch.utils.data.default_collate([s.image for s in good]) if good else None
    targets = torch.tensor([s.label for s in good], dtype=torch.int64)
    indices = torch.tensor([s.index for s in good], dtype=torch.int64)
    return Batch(images, targets, indices, failures)


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Batches of `indices` in order, dealt out to ranks in turn: batch k goes to rank k % world_size.

    Every sample lands in exactly one batch on exactly one rank (nothing padded, nothing dropped), and each
    batch holds the same samples as in a single-process run, so per-sample results match it bit for bit.
    """

    def __init__(self, indices: Sequence[int], batch_size: int, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise UserError(f"{{batch_size}} must be at least 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise UserError(f"rank {rank} is outside world size {world_size}")
        self.indices = list(indices)
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size

    def _batch_numbers(self) -> range:
        total = -(-len(self.indices) // self.batch_size)
        return range(self.rank, total, self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        for k in self._batch_numbers():
            yield self.indices[k * self.batch_size:(k + 1) * self.batch_size]

    def __len__(self) -> int:
        return len(self._batch_numbers())

    def num_samples(self) -> int:
        """How many samples this rank's batches hold."""
        return sum(min(self.batch_size, len(self.indices) - k * self.batch_size)
                   for k in self._batch_numbers())


def subset_indices(size: int, limit: int | None) -> list[int]:
    """All indices, or `limit` of them spread evenly over the dataset (class folders are stored in class
    order, so the first `limit` would cover only the first classes)."""
    if limit is None or limit >= size:
        return list(range(size))
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return [i * size // limit for i in range(limit)]


def default_workers(local_world_size: int = 1) -> int:
    """Loader workers per process: the CPUs this process may use, shared among the ranks on this node
    (`local_world_size`; not the whole world, which spans nodes), at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus // max(1, local_world_size)))


def create_loader(dataset: ImageDataset, batch_size: int, workers: int, indices: Sequence[int] | None = None,
                  rank: int = 0, world_size: int = 1,
                  pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A loader over `indices` of `dataset` (default all) yielding this rank's `Batch`es.

    Args:
        workers: decoding processes (0 decodes in this process).
        pin_memory: page-locked batches, for asynchronous copies to a GPU.
    """
    sampler = ShardedBatchSampler(range(len(dataset)) if indices is None else indices, batch_size, rank,
                                  world_size)
    return torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_samples,
        pin_memory=pin_memory, persistent_workers=False, prefetch_factor=4 if workers > 0 else None)
