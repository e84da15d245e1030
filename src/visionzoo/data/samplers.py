"""Repeated-augmentation sampling (Hoffer et al., https://arxiv.org/abs/1901.09335; Berman et al.,
https://arxiv.org/abs/1902.05509), as the SBB and "ResNet strikes back" recipes use it (`aug_repeats`).

Each image appears `repeats` times in an epoch's order, the copies next to each other, so that with N
processes they land on different ranks and get different augmentations. The epoch keeps the length it has
without repeats (each rank takes its share of the dataset's size, rounded down to a multiple of 256 images
as the recipes do), so an epoch costs the same and the schedule in epochs means the same.

Seeding augmentation per sample: the copies of an image share its index, so a per-sample seed must come
from the sample's position in the epoch (`rank_items`), not from its index alone, or the copies would get
the same augmentation and repeating them would do nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class RepeatAugSampler(torch.utils.data.Sampler[int]):
    """Indices of one rank's share of a repeated-augmentation epoch.

    Args:
        dataset_size: number of samples in the dataset.
        num_replicas: world size (processes); rank: this process, both given explicitly.
        repeats: copies of each sample per epoch (`aug_repeats`, > 1 to have an effect; may be fractional).
        shuffle: shuffle the order each epoch, from a generator seeded by `seed` and the epoch.
        round_to: the per-epoch dataset share is rounded down to a multiple of this many samples (256 in the
            recipes); datasets smaller than it are not rounded.
    """

    def __init__(self, dataset_size: int, num_replicas: int = 1, rank: int = 0, repeats: float = 3,
                 shuffle: bool = True, seed: int = 0, round_to: int = 256):
        if dataset_size < 1:
            raise ValueError("repeated-augmentation sampler needs a non-empty dataset")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if repeats < 1:
            raise ValueError(f"aug_repeats must be at least 1, got {repeats}")
        self.dataset_size, self.num_replicas, self.rank = dataset_size, num_replicas, rank
        self.repeats, self.shuffle, self.seed = repeats, shuffle, seed
        self.epoch = 0
        self.start = 0
        self.total_size = math.ceil(dataset_size * repeats / num_replicas) * num_replicas
        kept = dataset_size // round_to * round_to if round_to and dataset_size >= round_to else dataset_size
        self.num_selected = min(math.ceil(kept / num_replicas), self.total_size // num_replicas)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Make the next iteration use epoch `epoch`'s order (the same on every rank), from this rank's
        `start`-th sample on (to resume part-way through an epoch)."""
        if not 0 <= start <= self.num_selected:
            raise ValueError(f"start must be in [0, {self.num_selected}], got {start}")
        self.epoch, self.start = epoch, start

    def epoch_order(self) -> list[int]:
        """Every rank's indices for the current epoch, before the split: the repeated, shuffled dataset."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.dataset_size, generator=generator)
        else:
            order = torch.arange(self.dataset_size)
        repeated_size = math.ceil(self.repeats * self.dataset_size)
        # sample k of the repeated order is original position floor(k / repeats): integer repeats give each
        # index `repeats` adjacent copies, fractional ones spread the extra copies evenly.
        positions = (torch.arange(repeated_size, dtype=torch.float64) / self.repeats).floor().long()
        return order[positions].tolist()

    def rank_items(self) -> list[tuple[int, int]]:
        """This rank's (position, index) pairs from `start` on: the position in the epoch's order is unique
        per copy of an image (seed augmentation from it), the index is the dataset sample."""
        order = self.epoch_order()
        positions = range(self.rank, self.total_size, self.num_replicas)[:self.num_selected]
        return [(position, order[position % len(order)]) for position in positions][self.start:]

    def __iter__(self) -> Iterator[int]:
        return iter([index for _, index in self.rank_items()])

    def __len__(self) -> int:
        return self.num_selected - self.start
