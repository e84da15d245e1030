"""Loader: exact sharding over ranks, uint8 collation, unreadable images skipped and reported."""

import pytest
import torch

from tests.images import synset_folder, write_truncated_jpeg
from visionzoo.data import DataConfig, create_dataset, create_loader, create_transform, normalize_batch
from visionzoo.data.loader import ShardedBatchSampler, subset_indices


@pytest.mark.parametrize("size,batch,world",
                         [(13, 4, 2), (13, 4, 3), (8, 4, 2), (3, 4, 4), (1, 1, 2), (0, 2, 2)])
def test_sharding_covers_every_sample_once_in_the_single_process_batches(size, batch, world):
    single = list(ShardedBatchSampler(range(size), batch))
    shards = [ShardedBatchSampler(range(size), batch, rank, world) for rank in range(world)]
    batches = [b for shard in shards for b in shard]
    assert sorted(map(tuple, batches)) == sorted(map(tuple, single))  # the same batches, nothing padded
    assert sorted(i for b in batches for i in b) == list(range(size))
    assert [s.num_samples() for s in shards] == [sum(map(len, s)) for s in shards]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_limit_spreads_over_the_dataset():
    assert subset_indices(10, None) == list(range(10))
    assert subset_indices(10, 4) == [0, 2, 5, 7]
    assert subset_indices(3, 5) == [0, 1, 2]


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_equal_the_per_image_transform(tmp_path, workers):
    root = synset_folder(tmp_path / "val", ["n01440764", "n02123045"], per_class=4)
    write_truncated_jpeg(root / "n02123045" / "cut.jpg")
    (root / "n01440764" / "zero.jpg").write_bytes(b"")
    config = DataConfig(input_size=(3, 32, 32))
    dataset = create_dataset(root)
    loader = create_loader(dataset.with_transform(create_transform(config, normalize=False)), batch_size=3,
                           workers=workers)
    batches = list(loader)
    images = torch.cat([b.images for b in batches if b.images is not None])
    indices = torch.cat([b.indices for b in batches]).tolist()
    failures = [f for b in batches for f in b.failures]
    assert images.dtype == torch.uint8 and len(indices) == 8
    assert sorted(dataset.files[i] for i, _ in failures) == ["n01440764/zero.jpg", "n02123045/cut.jpg"]
    reference = dataset.with_transform(create_transform(config))
    expected = torch.stack([reference[i].image for i in indices])
    assert torch.equal(normalize_batch(images, config), expected)
    assert torch.cat([b.targets for b in batches]).tolist() == [dataset.labels[i] for i in indices]
