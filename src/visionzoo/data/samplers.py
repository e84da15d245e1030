"""The order of training samples: one order per epoch, split across ranks and resumable mid-epoch
(`EpochBatchSampler`), repeated augmentation (`RepeatAugSampler`, `RepeatBatchSampler`), and per-sample random
seeds (`SeededSamples`), so that augmentation depends on neither the worker count nor a resume.

Repeated-augmentation sampling (Hoffer et al., https://arxiv.org/abs/1901.09335; Berman et al.,
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

import hashlib
import math
import random
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


def epoch_permutation(size: int, seed: int, epoch: int) -> list[int]:
    """The sample order of `epoch`: a pure function of (seed, epoch)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, epoch, -1))
    return torch.randperm(size, generator=generator).tolist()


def derive_seed(*values: int) -> int:
    """A 63-bit seed mixing `values` (neighbouring inputs give unrelated seeds)."""
    digest = hashlib.blake2b(",".join(map(str, values)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class EpochBatchSampler(torch.utils.data.Sampler):
    """This rank's batches of one epoch, from batch `start` up to (not including) `stop`.

    Global batch k of the epoch holds samples `perm[k * B * W:(k + 1) * B * W]` (B the per-rank batch, W the
    world size); rank r takes the r-th B of them. The partial last global batch is dropped, so every rank
    runs the same number of steps. Items are (epoch, index) pairs for `SeededSamples`.
    """

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1,
                 start: int = 0, stop: int | None = None):
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, epoch
        self.rank, self.world_size, self.start = rank, world_size, start
        full = self.batches_per_epoch(size, batch_size, world_size)
        self.stop = full if stop is None else min(stop, full)

    @staticmethod
    def batches_per_epoch(size: int, batch_size: int, world_size: int = 1) -> int:
        """Full global batches in an epoch of `size` samples."""
        return size // (batch_size * world_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perm = epoch_permutation(self.size, self.seed, self.epoch)
        global_batch = self.batch_size * self.world_size
        for k in range(self.start, self.stop):
            first = k * global_batch + self.rank * self.batch_size
            yield [(self.epoch, i) for i in perm[first:first + self.batch_size]]


class RepeatBatchSampler(torch.utils.data.Sampler):
    """This rank's batches of one repeated-augmentation epoch (`aug_repeats`), from batch `start` up to
    (not including) `stop`: `RepeatAugSampler`'s order for the rank, cut into batches (the
    partial last one dropped). Items are (epoch, index, position) triples: the copies of an image share its
    index, so `SeededSamples` seeds them by their position in the epoch's order, which differs per copy.
    """

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, rank: int, world_size: int,
                 repeats: float, start: int = 0, stop: int | None = None):
        self.sampler = RepeatAugSampler(size, world_size, rank, repeats, seed=seed)
        self.sampler.set_epoch(epoch)
        self.batch_size, self.epoch, self.start = batch_size, epoch, start
        full = self.batches_per_epoch(size, batch_size, world_size, repeats)
        self.stop = full if stop is None else min(stop, full)

    @staticmethod
    def batches_per_epoch(size: int, batch_size: int, world_size: int, repeats: float) -> int:
        """Full batches per rank in an epoch (the same on every rank)."""
        return RepeatAugSampler(size, world_size, 0, repeats).num_selected // batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        items = self.sampler.rank_items()
        size = self.batch_size
        for k in range(self.start, self.stop):
            yield [(self.epoch, index, position) for position, index in items[k * size:(k + 1) * size]]


class SeededSamples(torch.utils.data.Dataset):
    """`dataset[index]` with torch, numpy and Python random seeded from (seed, epoch, index), or from
    (seed, epoch, position) for the (epoch, index, position) keys of `RepeatBatchSampler`.

    The random state of the calling process is restored afterwards, so loading in the main process
    (0 workers) leaves the training RNG untouched, and a sample's augmentation is the same whichever worker
    loads it, and in a resumed run.
    """

    def __init__(self, dataset: torch.utils.data.Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int] | tuple[int, int, int]):
        import numpy as np

        epoch, index = key[:2]
        # -2 marks a position seed, so that it never equals the index seed of the same number
        sample_seed = derive_seed(self.seed, epoch, index) if len(key) == 2 else derive_seed(self.seed, epoch,
                                                                                             -2, key[2])
        if torch.utils.data.get_worker_info() is not None:
            # a loader worker: nothing else draws from its generators, so there is no state to keep
            _seed_all(sample_seed)
            return self.dataset[index]
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            _seed_all(sample_seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


def _seed_all(seed: int) -> None:
    import numpy as np

    # the CPU generator only: torch.manual_seed also seeds every accelerator's, lazily, at the cost of a
    # formatted stack trace per call (over a millisecond a sample)
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
