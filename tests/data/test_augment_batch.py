"""Random erasing, mixup/cutmix, repeated-augmentation sampling, soft-target losses, the train transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from visionzoo.data.mixup import BatchMixer, MixupOptions, smooth_one_hot
from visionzoo.data.random_erasing import RandomErasing
from visionzoo.data.samplers import RepeatAugSampler
from visionzoo.data.train_transforms import TrainAugmentation, create_batch_erasing, create_train_transform
from visionzoo.train.losses import BinaryCrossEntropy, SoftTargetCrossEntropy

# --- random erasing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 3])
def test_erasing_const_covers_at_most_a_third(count):
    torch.manual_seed(0)
    erase = RandomErasing(1.0, mode="const", max_count=count)
    for _ in range(20):
        img = erase(torch.ones(3, 40, 50))
        erased = (img == 0).all(0).float().mean().item()
        assert 0.01 <= erased <= 1 / 3 + 0.02  # box areas sum to a uniform fraction of [0.02, 1/3]
        assert ((img == 0) | (img == 1)).all()


def test_erasing_modes_and_batches():
    torch.manual_seed(0)
    batch = RandomErasing(1.0, mode="pixel")(torch.full((4, 3, 64, 64), 5.0))
    for img in batch:
        noise = img[img != 5.0]
        assert noise.numel() > 0 and 0.5 < noise.std().item() < 1.5  # standard-normal fill
    box = RandomErasing(1.0, mode="rand")(torch.full((3, 64, 64), 5.0))
    for channel in box:  # one colour per channel inside the box
        assert channel[channel != 5.0].unique().numel() == 1
    untouched = RandomErasing(0.0)(torch.ones(3, 8, 8))
    assert (untouched == 1).all()
    with pytest.raises(TypeError, match="after normalisation"):
        RandomErasing(1.0)(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="mode must be one of"):
        RandomErasing(0.5, mode="noise")


# --- mixup / cutmix ---------------------------------------------------------------------------------------

def test_mixup_blends_neighbours_with_the_targets_weights():
    torch.manual_seed(0)
    images = torch.rand(6, 3, 8, 8)
    labels = torch.arange(6)
    mixer = BatchMixer(MixupOptions(mixup=0.8), num_classes=10)
    mixed, targets = mixer(images.clone(), labels)
    lam = targets[0, 0].item()
    assert 0 < lam < 1 and torch.allclose(targets.sum(1), torch.ones(6))
    for i in range(6):  # sample i is mixed with i - 1 (torchvision's roll), weight lam on its own label
        assert targets[i, i].item() == pytest.approx(lam)
        assert targets[i, (i - 1) % 6].item() == pytest.approx(1 - lam)
        torch.testing.assert_close(mixed[i], lam * images[i] + (1 - lam) * images[i - 1])


def test_cutmix_target_weights_are_the_pasted_areas():
    torch.manual_seed(1)
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 32, 32).clone()
    mixer = BatchMixer(MixupOptions(cutmix=1.0), num_classes=4)
    for _ in range(5):
        mixed, targets = mixer(images.clone(), torch.arange(4))
        for i in range(4):
            own = (mixed[i, 0] == i).float().mean().item()
            assert targets[i, i].item() == pytest.approx(own, abs=1e-6)
            assert set(mixed[i].unique().tolist()) <= {float(i), float((i - 1) % 4)}


def test_smoothing_switch_probability_and_off_epoch():
    options = MixupOptions(mixup=0.8, cutmix=1.0, mixup_switch_prob=1.0, mixup_off_epoch=5)
    mixer = BatchMixer(options, num_classes=10, smoothing=0.1)
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 16, 16).clone()
    torch.manual_seed(0)
    mixed, targets = mixer(images.clone(), torch.arange(4))
    assert targets.min().item() == pytest.approx(0.01)  # smoothing folded in: every class keeps s / K
    assert torch.allclose(targets.sum(1), torch.ones(4))
    # switch probability 1: always cutmix, so every pixel comes from one of the two images
    assert all(set(m.unique().tolist()) <= {float(i), float((i - 1) % 4)} for i, m in enumerate(mixed))
    mixer.set_epoch(5)
    unmixed, smoothed = mixer(images.clone(), torch.arange(4))
    assert torch.equal(unmixed, images)
    torch.testing.assert_close(smoothed, smooth_one_hot(torch.arange(4), 10, 0.1))
    mixer.set_epoch(4)
    assert mixer.enabled
    never = BatchMixer(MixupOptions(mixup=1.0, mixup_prob=0.0), num_classes=4)
    assert torch.equal(never(images.clone(), torch.arange(4))[0], images)


def test_mixup_smoothing_matches_the_reference_target():
    """Smoothing the mixed one-hot targets equals the reference's mix of smoothed targets."""
    from timm.data.mixup import mixup_target

    labels = torch.tensor([3, 1, 4, 1])
    lam = 0.7
    reference = mixup_target(labels, 6, lam=lam, smoothing=0.1)  # pairs i with B-1-i
    one_hot = smooth_one_hot(labels, 6)
    ours = smooth_one_hot(lam * one_hot + (1 - lam) * one_hot.flip(0), 6, 0.1)
    torch.testing.assert_close(ours, reference)


# --- repeated-augmentation sampler -------------------------------------------------------------------------

@pytest.mark.parametrize("size, world, repeats", [(600, 4, 3), (10, 2, 3), (300, 2, 2)])
def test_sampler_matches_reference_order(size, world, repeats):
    from timm.data.distributed_sampler import RepeatAugSampler as Reference

    dataset = list(range(size))
    for epoch in (0, 1):
        for rank in range(world):
            ours = RepeatAugSampler(size, world, rank, repeats=repeats)
            theirs = Reference(dataset, num_replicas=world, rank=rank, num_repeats=repeats)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_sampler_sends_copies_to_different_ranks():
    samplers = [RepeatAugSampler(12, 3, rank, repeats=3, seed=7) for rank in range(3)]
    shares = [list(s) for s in samplers]
    assert all(len(share) == 4 for share in shares)  # the epoch keeps its un-repeated length
    order = samplers[0].epoch_order()
    assert all(order[3 * i] == order[3 * i + 1] == order[3 * i + 2] for i in range(12))
    for i in range(4):  # the 3 copies of each of the first images are at the same position on the 3 ranks
        assert shares[0][i] == shares[1][i] == shares[2][i]
    samplers[0].set_epoch(1)
    assert list(samplers[0]) != shares[0]
    with pytest.raises(ValueError, match="rank must be in"):
        RepeatAugSampler(10, 2, 2)


# --- losses -----------------------------------------------------------------------------------------------

def test_soft_target_cross_entropy_matches_reference_and_torch():
    from timm.loss import SoftTargetCrossEntropy as Reference

    torch.manual_seed(0)
    logits, labels = torch.randn(5, 7), torch.randint(7, (5,))
    soft = torch.softmax(torch.randn(5, 7), -1)
    torch.testing.assert_close(SoftTargetCrossEntropy()(logits, soft), Reference()(logits, soft))
    torch.testing.assert_close(SoftTargetCrossEntropy(0.1)(logits, labels),
                               torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1))


@pytest.mark.parametrize("smoothing, thresh, sum_classes", [(0.0, None, False), (0.1, 0.2, False),
                                                            (0.1, None, True), (0.0, 0.2, True)])
def test_binary_cross_entropy_matches_reference(smoothing, thresh, sum_classes):
    from timm.loss import BinaryCrossEntropy as Reference

    torch.manual_seed(0)
    logits, labels = torch.randn(6, 9), torch.randint(9, (6,))
    soft = smooth_one_hot(labels, 9, 0.1) * 0.7 + smooth_one_hot(labels.roll(1), 9, 0.1) * 0.3
    ours = BinaryCrossEntropy(smoothing, target_threshold=thresh, sum_classes=sum_classes)
    theirs = Reference(smoothing, target_threshold=thresh, sum_classes=sum_classes)
    for targets in (labels, soft):
        torch.testing.assert_close(ours(logits, targets), theirs(logits, targets))
    with pytest.raises(ValueError, match="class indices"):
        ours(logits, torch.zeros(6, 3))


# --- train transform ----------------------------------------------------------------------------------------

def test_train_transform_from_recipe_options():
    options = {"aa": "rand-m8-inc1-mstd1.0", "reprob": 0.25, "remode": "pixel", "recount": 1,
               "scale": [0.08, 1.0], "hflip": 0.5, "color_jitter": 0.4, "train_interpolation": "random",
               "lr": 0.002, "opt": "adamw"}
    transform = create_train_transform(48, options)
    text = repr(transform)
    assert "RandAugment" in text and "RandomErasing" in text
    assert "ColorJitter" not in text  # colour jitter is off when RandAugment is on
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8))
    torch.manual_seed(0)
    out = transform(img)
    assert out.shape == (3, 48, 48) and out.dtype == torch.float32
    torch.manual_seed(0)
    assert torch.equal(transform(img), out)  # one seed, one augmentation
    raw_transform = create_train_transform((32, 40), options, normalize=False)
    raw = raw_transform(img)
    assert raw.shape == (3, 32, 40) and raw.dtype == torch.uint8
    assert "RandomErasing" not in repr(raw_transform)
    assert isinstance(create_batch_erasing(options), RandomErasing)
    basic = repr(create_train_transform(32, {"color_jitter": 0.4, "train_interpolation": "bilinear"}))
    assert "ColorJitter" in basic and "RandomResizedCrop" in basic


@pytest.mark.parametrize("options, message", [({"aa": "rand-m9-q1"}, "unknown section"),
                                              ({"scale": (0.5, 0.1)}, "scale must be"),
                                              ({"train_interpolation": "lanczos"}, "train_interpolation"),
                                              ({"remode": "zeros"}, "remode must be")])
def test_bad_train_options_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        TrainAugmentation.from_options(options)


def test_sampler_resumes_mid_epoch_and_keys_copies_by_position():
    sampler = RepeatAugSampler(40, 2, 1, repeats=2, seed=3)
    sampler.set_epoch(4)
    items = sampler.rank_items()
    assert len({position for position, _ in items}) == len(items)  # a unique key per copy
    sampler.set_epoch(4, start=7)
    assert sampler.rank_items() == items[7:] and list(sampler) == [i for _, i in items[7:]]
    assert len(sampler) == len(items) - 7
    with pytest.raises(ValueError, match="start must be in"):
        sampler.set_epoch(0, start=len(items) + 1)


def test_options_build_mixer_and_loss():
    from visionzoo.train.losses import create_loss

    recipe = {"mixup": 0.2, "cutmix": 1.0, "smoothing": 0.1, "bce_loss": True, "bce_target_thresh": 0.2,
              "mixup_off_epoch": None, "opt": "lamb"}
    options = MixupOptions.from_options(recipe)
    assert (options.mixup, options.cutmix, options.mixup_off_epoch) == (0.2, 1.0, 0)
    loss = create_loss(recipe)
    assert isinstance(loss, BinaryCrossEntropy) and loss.target_threshold == 0.2
    assert isinstance(create_loss({"smoothing": 0.1}), SoftTargetCrossEntropy)
