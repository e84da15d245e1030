"""The data order: one sample order per epoch split over ranks and resumable, and per-sample seeds."""

import pytest
import torch

from visionzoo.data.samplers import EpochBatchSampler, SeededSamples


def test_epoch_batches_split_over_ranks_and_resume_mid_epoch():
    single = list(EpochBatchSampler(103, 8, seed=1, epoch=2))
    assert len(single) == 12 and all(len(b) == 8 for b in single)  # the partial batch is dropped
    rank0 = list(EpochBatchSampler(103, 4, seed=1, epoch=2, rank=0, world_size=2))
    rank1 = list(EpochBatchSampler(103, 4, seed=1, epoch=2, rank=1, world_size=2))
    assert [a + b for a, b in zip(rank0, rank1, strict=True)] == single  # the same global batches
    assert list(EpochBatchSampler(103, 8, seed=1, epoch=2, start=5)) == single[5:]
    assert list(EpochBatchSampler(103, 8, seed=1, epoch=3)) != single
    assert {e for batch in single for e, _ in batch} == {2}


class _RandomItem(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, index):
        return torch.rand(2)


@pytest.mark.parametrize("workers", [0, 2])
def test_augmentation_randomness_depends_on_the_sample_not_the_worker(workers):
    data = SeededSamples(_RandomItem(), seed=5)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    loader = torch.utils.data.DataLoader(data, batch_sampler=EpochBatchSampler(16, 4, 5, 0),
                                         num_workers=workers, generator=torch.Generator())
    batches = list(loader)
    assert torch.equal(torch.get_rng_state(), before)  # the training RNG is untouched
    direct = torch.stack([data[(0, i)] for batch in EpochBatchSampler(16, 4, 5, 0) for _, i in batch])
    assert torch.equal(torch.cat(batches), direct)
