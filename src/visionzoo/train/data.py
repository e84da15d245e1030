"""Training data: the basic train transform, one sample order per epoch split across ranks and resumable
mid-epoch, and per-sample random seeds, so augmentation depends on neither the worker count nor a resume.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from ..data.samplers import RepeatAugSampler
from ..data.transforms import PILToUint8Tensor, ToRGB, _interpolation_mode

if TYPE_CHECKING:
    from ..data import DataConfig


def train_transform(config: DataConfig, scale: tuple[float, float] = (0.08, 1.0),
                    ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip: float = 0.5) -> Callable:
    """The basic training transform: random-resized crop at the config's size (area fraction `scale`,
    aspect `ratio`), horizontal flip with probability `hflip`, to a uint8 tensor (normalised on the device
    with the config's mean/std, as evaluation does)."""
    from torchvision import transforms

    crop = transforms.RandomResizedCrop(list(config.img_size), scale=tuple(scale), ratio=tuple(ratio),
                                        interpolation=_interpolation_mode(config.interpolation))
    steps = [ToRGB(), crop]
    if hflip > 0:
        steps.append(transforms.RandomHorizontalFlip(hflip))
    steps.append(PILToUint8Tensor())
    return transforms.Compose(steps)


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
    (not including) `stop`: `data.samplers.RepeatAugSampler`'s order for the rank, cut into batches (the
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
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed)
            random.seed(sample_seed)
            np.random.seed(sample_seed % 2**32)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)

