"""The recipes' augmentation, mixing, repeated-augmentation and loss options wired into the training engine:
config checks, the repeated-augmentation batches and their seeds, the pieces a config builds, and a tiny
run with all of them on that resumes to the same weights."""

import pytest
import torch
from safetensors.torch import load_file

from visionzoo.data.mixup import BatchMixer
from visionzoo.data.samplers import RepeatBatchSampler, SeededSamples
from visionzoo.data.train_transforms import create_batch_transform, create_train_transform
from visionzoo.train import TrainConfig, train
from visionzoo.train.config import ConfigError
from visionzoo.train.losses import (
    BinaryCrossEntropy,
    LabelSmoothingCrossEntropy,
    SoftTargetCrossEntropy,
    create_loss,
)


def recipe_batch_and_loss(config: TrainConfig, num_classes: int):
    """The batch transform and the loss a config makes (as the run builders make them)."""
    batch = create_batch_transform(config.augment, config.mixing, num_classes, config.loss.smoothing)
    return batch, create_loss(config.loss, soft_targets=config.mixing.active)


def test_a_bad_randaugment_string_is_one_config_error():
    TrainConfig(aa="rand-m9-mstd0.5-inc1")
    with pytest.raises(ConfigError, match="aa: "):
        TrainConfig(aa="rand-x9")


@pytest.mark.parametrize("change, message", [
    ({"remode": "noise"}, "remode"), ({"reprob": 1.5}, "reprob"),
    ({"aug_repeats": 0.5}, "aug_repeats"), ({"train_interpolation": "lanczos"}, "train_interpolation"),
    ({"mixup": -1.0}, "mixup"),
])
def test_bad_recipe_options_name_the_option(change, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**change)


def test_the_defaults_leave_the_basic_transform_batch_and_loss():
    config = TrainConfig()
    transform = create_train_transform(32, config.augment, normalize=False)
    steps = [type(step).__name__ for step in transform.transforms]
    assert steps == ["ToRGB", "RandomResizedCrop", "RandomHorizontalFlip", "PILToUint8Tensor"]
    batch, criterion = recipe_batch_and_loss(config, 10)
    assert batch is None and isinstance(criterion, LabelSmoothingCrossEntropy)


def test_mixing_gives_soft_targets_and_their_loss_bce_its_own():
    config = TrainConfig(mixup=0.2, cutmix=1.0, smoothing=0.1, reprob=1.0)
    batch, criterion = recipe_batch_and_loss(config, 10)
    assert isinstance(batch.mixer, BatchMixer) and batch.erasing is not None
    assert isinstance(criterion, SoftTargetCrossEntropy)
    images, targets = batch(torch.zeros(4, 3, 8, 8), torch.arange(4), epoch=0)
    assert targets.shape == (4, 10) and torch.allclose(targets.sum(1), torch.ones(4))
    assert images.abs().sum() > 0  # erased with pixel noise
    off, _ = recipe_batch_and_loss(TrainConfig(mixup=1.0, mixup_off_epoch=2, epochs=3, smoothing=0.0), 10)
    _, targets = off(torch.zeros(4, 3, 8, 8), torch.arange(4), epoch=2)
    assert torch.equal(targets, torch.eye(10)[:4])  # mixing off from epoch 2: plain one-hot targets
    _, bce = recipe_batch_and_loss(TrainConfig(bce_loss=True, bce_target_thresh=0.2), 10)
    assert isinstance(bce, BinaryCrossEntropy) and bce.target_threshold == 0.2


def test_repeated_batches_split_over_ranks_resume_and_seed_copies_apart():
    full = list(RepeatBatchSampler(300, 8, seed=1, epoch=2, rank=0, world_size=1, repeats=2))
    assert len(full) == 256 // 8  # the epoch keeps the dataset's length, rounded down to 256 images
    indices = [i for batch in full for _, i, _ in batch]
    assert len(set(indices)) < len(indices)  # images come twice
    positions = [p for batch in full for _, _, p in batch]
    assert len(set(positions)) == len(positions)  # but every copy has its own position
    assert list(RepeatBatchSampler(300, 8, 1, 2, 0, 1, 2, start=5)) == full[5:]
    ranks = [list(RepeatBatchSampler(300, 4, 1, 2, rank, 2, 2)) for rank in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == RepeatBatchSampler.batches_per_epoch(300, 4, 2, 2)
    first = [i for _, i, _ in ranks[0][0]], [i for _, i, _ in ranks[1][0]]
    assert first[0] == first[1]  # adjacent copies of an image land on different ranks


class _RandomItem(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.rand(2)


def test_copies_of_an_image_get_different_augmentation_and_single_keys_keep_their_seed():
    data = SeededSamples(_RandomItem(), seed=5)
    assert not torch.equal(data[(0, 1, 6)], data[(0, 1, 7)])
    assert torch.equal(data[(0, 1, 6)], data[(0, 1, 6)])
    assert torch.equal(data[(0, 1)], data[(0, 1)])


RECIPE = dict(model="test_efficientnet", num_classes=10, img_size=32, batch_size=10, opt="adamw", lr=2e-3,
              sched="constant", workers=0, deterministic=True, aa="rand-m3-inc1-mstd101", reprob=0.25,
              mixup=0.2, cutmix=1.0, smoothing=0.1, aug_repeats=2, train_interpolation="random", seed=4)


def test_a_run_with_every_recipe_option_resumes_to_the_same_weights(digits, tmp_path):
    """Two epochs in one go against one epoch then a resume for the second (mixing draws from the training
    RNG, which the checkpoint saves; the repeated order is a function of the epoch)."""
    # 6 digits per class: 60 images, under 256 so the epoch is not rounded down
    data = _small_digits(digits, tmp_path / "data")
    whole = train(TrainConfig(**RECIPE, data=str(data), output=str(tmp_path / "whole"), epochs=2))
    assert whole.steps == 2 * 60 // 10
    train(TrainConfig(**RECIPE, data=str(data), output=str(tmp_path / "half"), epochs=1))
    resumed = train(resume=str(tmp_path / "half"), resume_overrides={"epochs": 2})
    assert resumed.steps == whole.steps
    a = load_file(tmp_path / "whole" / "last" / "model.safetensors")
    b = load_file(tmp_path / "half" / "last" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- --recipe on the command line ------------------------------------------------------------------------
def _small_digits(digits, root, per_class: int = 6):
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for picture in sorted((digits[1] / str(label)).iterdir())[:per_class]:
            (root / str(label) / picture.name).write_bytes(picture.read_bytes())
    return root


def test_train_with_a_recipe_rescales_its_lr_and_flags_override_fields(digits, tmp_path, capsys):
    import math

    import yaml

    from visionzoo.cli.main import main

    data, output = _small_digits(digits, tmp_path / "data"), tmp_path / "run"
    recipe = "mobilenetv4_conv_small.e2400_r224_in1k"
    assert main(["train", "--recipe", recipe, "--model", "test_efficientnet", "--num-classes", "10",
                 "--img-size", "32", "--epochs", "1", "--batch-size", "30",
                 "--weight-decay", "0.01", "--ema", "none", "--workers", "0", "--data", str(data),
                 "--output", str(output)]) == 0
    args = yaml.safe_load((output / "args.yaml").read_text())
    assert args["recipe"] == "mobilenetv4_conv_small.e2400_r224_in1k"
    # the recipe's fields ...
    assert (args["opt"], args["opt_betas"], args["aa"], args["reprob"]) == ("adamw", [0.6, 0.995],
                                                                             "rand-m8-inc1-mstd1.0", 0.25)
    # ... but the flags given win, `none` included
    assert (args["weight_decay"], args["ema"], args["img_size"], args["model"]) == (0.01, None, 32,
                                                                                     "test_efficientnet")
    # lr 2e-3 at the recipe's batch 4096, rescaled by its sqrt rule to the global batch 30
    assert math.isclose(args["lr"], 2e-3 * math.sqrt(30 / 4096))
    assert "recipe mobilenetv4_conv_small.e2400_r224_in1k" in args["lr_note"]
    assert "4096" in args["lr_note"] and "global batch 30" in args["lr_note"]


def test_recipe_defaults_pick_the_model_and_a_fine_tune_its_parent_weights():
    from visionzoo.errors import UserError
    from visionzoo.train.resolve import recipe_options as recipe_defaults

    scratch = recipe_defaults("mobilenetv4_conv_small.e2400_r224_in1k", {})
    assert scratch["model"] == "mobilenetv4_conv_small.e2400_r224_in1k" and "pretrained" not in scratch
    tune = recipe_defaults("vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k", {})
    assert tune["model"] == "vit_mediumd_patch16_reg4_gap_256.sbb_in12k" and tune["pretrained"] is True
    assert "pretrained" not in recipe_defaults("vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k",
                                               {"checkpoint": "mine.safetensors"})
    with pytest.raises(UserError, match="name the tag it trains"):
        recipe_defaults("sbb_in12k_ft_in1k", {})
    with pytest.raises(UserError, match="no recipe or tag named"):
        recipe_defaults("no_such_recipe", {})
