"""RandAugment: the grammar, each op at a fixed magnitude, and pixel parity with the reference's ops."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from PIL import Image

from visionzoo.data.auto_augment import (
    RAND_INCREASING_OPS,
    RAND_OPS,
    AugmentSpecError,
    RandAugment,
    RandAugmentSpec,
    apply_op,
    op_argument,
    parse_rand_augment,
)

FILL = (124, 116, 104)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A real photo (scikit-image's cat), small enough to keep every op fast."""
    from skimage import data

    return Image.fromarray(data.chelsea()).resize((96, 64), Image.Resampling.BILINEAR)


def gradient(width: int = 256, height: int = 4) -> Image.Image:
    row = np.arange(width, dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(row, (height, 1))] * 3, axis=-1))


@pytest.mark.parametrize("text, expected", [
    ("rand-m9-mstd0.5-inc1", RandAugmentSpec(magnitude=9, magnitude_std=0.5, increasing=True)),
    ("rand-m8-inc1-mstd1.0", RandAugmentSpec(magnitude=8, magnitude_std=1.0, increasing=True)),
    ("rand-m7-inc1-mstd1.0-n3", RandAugmentSpec(magnitude=7, magnitude_std=1.0, increasing=True, num_ops=3)),
    ("rand-m3-inc1-mstd101", RandAugmentSpec(magnitude=3, magnitude_std=101.0, increasing=True)),
    ("rand-m9-mstd0.5", RandAugmentSpec(magnitude=9, magnitude_std=0.5)),
    ("rand-m10-n1-p0.8-mmax15-inc0", RandAugmentSpec(magnitude=10, num_ops=1, prob=0.8, magnitude_max=15)),
    ("rand", RandAugmentSpec()),
])
def test_parse_and_round_trip(text, expected):
    spec = parse_rand_augment(text)
    assert spec == expected
    assert parse_rand_augment(spec.format()) == spec


@pytest.mark.parametrize("text, message", [
    ("original", "not a RandAugment string"),
    ("augmix-m5", "not a RandAugment string"),
    ("rand-m9-x3", "unknown section 'x3'"),
    ("rand-mabc", "unknown section 'mabc'"),
    ("rand-m9-m8", "given twice"),
    ("rand-inc2", "inc must be 0 or 1"),
    ("rand-p1.5", "p must be in"),
    ("rand-n0", "n must be at least 1"),
    ("rand-m9.5", "whole number"),
])
def test_bad_strings_give_one_clear_error(text, message):
    with pytest.raises(AugmentSpecError, match=message):
        parse_rand_augment(text)


def test_rotate_moves_a_point_by_the_magnitudes_angle():
    angle = op_argument("Rotate", 10)
    assert angle == 30.0
    canvas = np.zeros((65, 65, 3), np.uint8)
    canvas[31:34, 51:54] = 255  # a bright block 20 px right of the centre (32, 32)
    out = np.asarray(apply_op(Image.fromarray(canvas), "Rotate", angle, "bilinear", (0, 0, 0)))[..., 0]
    y, x = np.unravel_index(np.argmax(out), out.shape)
    # counter-clockwise on screen: the block rises (smaller y) as it turns
    assert abs(x - (32 + 20 * math.cos(math.radians(30)))) <= 1.5
    assert abs(y - (32 - 20 * math.sin(math.radians(30)))) <= 1.5


@pytest.mark.parametrize("name, magnitude, threshold", [("Solarize", 5, 128), ("SolarizeIncreasing", 5, 128),
                                                        ("Solarize", 10, 256), ("SolarizeIncreasing", 10, 0)])
def test_solarize_inverts_at_and_above_its_threshold(name, magnitude, threshold):
    assert op_argument(name, magnitude) == threshold
    values = np.asarray(apply_op(gradient(), name, threshold))[0, :, 0].astype(int)
    expected = np.where(np.arange(256) >= threshold, 255 - np.arange(256), np.arange(256))
    np.testing.assert_array_equal(values, expected)


@pytest.mark.parametrize("name, magnitude, bits", [("Posterize", 5, 2), ("PosterizeIncreasing", 5, 2),
                                                   ("PosterizeIncreasing", 2, 4), ("Posterize", 10, 4)])
def test_posterize_keeps_its_bits(name, magnitude, bits):
    assert op_argument(name, magnitude) == bits
    values = np.asarray(apply_op(gradient(), name, bits))[0, :, 0].astype(int)
    np.testing.assert_array_equal(values, np.arange(256) & (0xFF << (8 - bits) & 0xFF))


def test_solarize_add_brightens_only_below_128():
    add = op_argument("SolarizeAdd", 10)
    assert add == 110
    values = np.asarray(apply_op(gradient(), "SolarizeAdd", add))[0, :, 0].astype(int)
    x = np.arange(256)
    np.testing.assert_array_equal(values, np.where(x < 128, np.minimum(255, x + 110), x))


def test_shear_and_translate_follow_their_matrices():
    canvas = np.zeros((40, 40, 3), np.uint8)
    canvas[:, 20] = 255  # a vertical line at x = 20
    img = Image.fromarray(canvas)
    sheared = np.asarray(apply_op(img, "ShearX", 0.25, "nearest", (0, 0, 0)))[..., 0]
    for y in (0, 20, 36):  # output (x, y) samples input (x + 0.25 y, y): the line moves left with depth
        assert abs(int(np.argmax(sheared[y])) - (20 - 0.25 * y)) <= 1
    assert op_argument("TranslateXRel", 10) == pytest.approx(0.45)
    shifted = np.asarray(apply_op(img, "TranslateXRel", -0.25, "nearest", (0, 0, 0)))[..., 0]
    assert int(np.argmax(shifted[5])) == 30  # shifted right by a quarter of the width


@pytest.mark.parametrize("name, magnitude, factor", [("Brightness", 10, 1.9), ("Color", 0, 0.1),
                                                     ("BrightnessIncreasing", 10, 1.9),
                                                     ("ContrastIncreasing", 5, 1.45)])
def test_enhancement_factors(name, magnitude, factor):
    from visionzoo.data.auto_augment import enhance_factor

    assert enhance_factor(name, op_argument(name, magnitude)) == pytest.approx(factor)


def _reference_args(name, magnitude, negate):
    """The reference's op arguments at `magnitude`, with its random sign forced."""
    from timm.data import auto_augment as ref

    # `random.random` is the module's own attribute (a bound method of its hidden generator): put that back
    original, state = random.random, random.getstate()
    try:
        random.random = (lambda: 1.0) if negate else (lambda: 0.0)
        fn = ref.LEVEL_TO_ARG[name]
        return fn(magnitude, {"translate_pct": 0.45}) if fn is not None else ()
    finally:
        random.random = original
        random.setstate(state)


@pytest.mark.parametrize("name", sorted(set(RAND_OPS) | set(RAND_INCREASING_OPS)))
@pytest.mark.parametrize("magnitude", [0, 4, 9])
def test_same_pixels_as_reference(photo, name, magnitude):
    """Every op of both sets, at three magnitudes and both signs, matches timm.data's op pixel for pixel."""
    from timm.data import auto_augment as ref

    for negate in (False, True):
        args = _reference_args(name, magnitude, negate)
        if name.startswith("Posterize") and args[0] == 0:
            # 0 bits: PIL >= 10 refuses it (so the reference raises); ours gives the black image PIL gave
            with pytest.raises(ValueError):
                ref.NAME_TO_OP[name](photo, *args)
            assert not np.asarray(apply_op(photo, name, 0)).any()
            continue
        expected = ref.NAME_TO_OP[name](photo, *args, fillcolor=FILL, resample=Image.Resampling.BICUBIC)
        argument = op_argument(name, magnitude)
        signed = name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel") or \
            name.endswith("Increasing") and name[:-10] in ("Color", "Contrast", "Brightness", "Sharpness")
        if negate and signed:
            argument = -argument
        ours = apply_op(photo, name, argument, "bicubic", FILL)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(expected), err_msg=f"{name} m{magnitude}")


def test_rand_augment_is_reproducible_and_respects_prob(photo):
    augment = RandAugment("rand-m9-mstd0.5-inc1-n3", fill=FILL, interpolation="random")
    torch.manual_seed(3)
    first = np.asarray(augment(photo))
    torch.manual_seed(3)
    np.testing.assert_array_equal(np.asarray(augment(photo)), first)
    assert not np.array_equal(first, np.asarray(photo))
    never = RandAugment("rand-m9-p0", fill=FILL)
    assert np.array_equal(np.asarray(never(photo)), np.asarray(photo))


def test_magnitude_noise_is_clipped():
    augment = RandAugment("rand-m9-mstd2", fill=FILL)
    torch.manual_seed(0)
    samples = [augment._magnitude() for _ in range(200)]
    assert min(samples) >= 0 and max(samples) <= 10 and 10.0 in samples and len(set(samples)) > 100
    uniform = RandAugment("rand-m6-mstd101-mmax6")
    assert all(0 <= uniform._magnitude() <= 6 for _ in range(100))
