"""RandAugment in the string grammar the published recipes write it in (`rand-m9-mstd0.5-inc1`).

The grammar (`rand-m<int>-...`) is parsed in `rand_augment_spec.py`.

RandAugment (Cubuk et al., https://arxiv.org/abs/1909.13719) as the reference implementation's recipes use
it: each op maps the magnitude to its argument (`op_argument`); geometric and enhancement ops flip the sign
of that argument half of the time. The AutoAugment policies (`original`, `v0`, `3a`) and AugMix are not
built: no recipe shipped here uses them, and asking for them is a clear error.

Which ops are torchvision's and which are ours (both act on PIL images, so the pixels are PIL's):
- torchvision.transforms.functional: AutoContrast, Equalize, Invert, Posterize, Solarize, Rotate (about the
  centre, filled with the mean colour), Color (`adjust_saturation`), Contrast, Brightness, Sharpness.
- ours: ShearX/ShearY and TranslateXRel/TranslateYRel, because the recipes' shear is about the image origin
  (top-left) and their translation is a fraction of the image side, while torchvision's `affine` shears
  about the centre and rounds translations to whole pixels; SolarizeAdd, which torchvision does not have.

Randomness comes from torch's generator, so a data-loader worker seeded by the training engine makes the
augmentation reproducible.

Against the reference (`timm.data.auto_augment`, checked op by op in the tests): every op gives the same
pixels for the same argument. Two differences: the random draws come from torch rather than Python's and
numpy's generators (same distributions, other numbers for a seed), and keeping 0 bits in Posterize gives a
black image where the reference raises on Pillow >= 10 (which refuses 0 bits).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from .rand_augment_spec import (
    RAND_INCREASING_OPS,
    RAND_OPS,
    AugmentSpecError,
    RandAugmentSpec,
    parse_rand_augment,
)

__all__ = ["MAX_LEVEL", "RAND_INCREASING_OPS", "RAND_OPS", "AugmentSpecError", "RandAugment",
           "RandAugmentSpec", "affine_matrix", "apply_op", "enhance_factor", "op_argument",
           "parse_rand_augment"]

if TYPE_CHECKING:
    from PIL import Image

# The magnitude scale: op arguments are linear in magnitude / MAX_LEVEL.
MAX_LEVEL = 10.0

# Ops whose argument is negated with probability 1/2.
_SIGNED = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "ColorIncreasing",
           "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"}


def op_argument(name: str, magnitude: float, translate_pct: float = 0.45):
    """The argument op `name` takes at `magnitude` (0..10), before any random sign; None for no argument."""
    level = magnitude / MAX_LEVEL
    if name in ("AutoContrast", "Equalize", "Invert"):
        return None
    if name == "Rotate":
        return level * 30.0                      # degrees
    if name == "Posterize":
        return int(level * 4)                    # bits kept
    if name == "PosterizeIncreasing":
        return 4 - int(level * 4)
    if name == "Solarize":
        return min(256, int(level * 256))        # threshold
    if name == "SolarizeIncreasing":
        return 256 - min(256, int(level * 256))
    if name == "SolarizeAdd":
        return min(128, int(level * 110))        # added below threshold 128
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return level * 1.8 + 0.1                 # enhancement factor, 1.0 = unchanged
    if name.endswith("Increasing"):
        return level * 0.9                       # distance from factor 1.0
    if name in ("ShearX", "ShearY"):
        return level * 0.3
    if name in ("TranslateXRel", "TranslateYRel"):
        return level * translate_pct             # fraction of the image side
    raise AugmentSpecError(f"unknown augmentation op {name!r}")


def apply_op(img: Image.Image, name: str, argument, interpolation: str = "bicubic",
             fill: tuple[int, ...] = (128, 128, 128)) -> Image.Image:
    """Apply op `name` with its (already signed) `argument` to an RGB PIL image."""
    from PIL import Image as PILImage
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    if name == "AutoContrast":
        return F.autocontrast(img)
    if name == "Equalize":
        return F.equalize(img)
    if name == "Invert":
        return F.invert(img)
    if name.startswith("Posterize"):
        if argument >= 8:
            return img
        # Keeping 0 bits leaves a black image (what PIL gave before version 10, which now refuses 0 bits).
        return F.posterize(img, argument) if argument > 0 else img.point(lambda _: 0)
    if name.startswith("Solarize") and name != "SolarizeAdd":
        return F.solarize(img, argument)
    if name == "SolarizeAdd":
        lut = [min(255, i + argument) if i < 128 else i for i in range(256)]
        return img.point(lut * len(img.getbands()))
    if name == "Rotate":
        return F.rotate(img, argument, interpolation=InterpolationMode(interpolation), fill=list(fill))
    if name.startswith("Color"):
        return F.adjust_saturation(img, enhance_factor(name, argument))
    if name.startswith("Contrast"):
        return F.adjust_contrast(img, enhance_factor(name, argument))
    if name.startswith("Brightness"):
        return F.adjust_brightness(img, enhance_factor(name, argument))
    if name.startswith("Sharpness"):
        return F.adjust_sharpness(img, enhance_factor(name, argument))
    if name not in _SHIFTS:
        raise AugmentSpecError(f"unknown augmentation op {name!r}")
    # Affine ops on PIL directly
    resample = {"bilinear": PILImage.Resampling.BILINEAR, "bicubic": PILImage.Resampling.BICUBIC,
                "nearest": PILImage.Resampling.NEAREST}[interpolation]
    return img.transform(img.size, PILImage.Transform.AFFINE, affine_matrix(name, argument, *img.size),
                         resample=resample, fillcolor=fill)


_SHIFTS = ("ShearX", "ShearY", "TranslateXRel", "TranslateYRel")  # the affine ops besides Rotate


def affine_matrix(name: str, argument: float, width: int, height: int) -> tuple[float, ...]:
    """The output-to-input matrix (a, b, c, d, e, f) of geometric op `name` in Pillow's convention (pixel
    centres at +0.5): input (x, y) = (a x + b y + c, d x + e y + f) for output (x, y). Rotate turns about
    the image centre, as `Image.rotate` does."""
    if name == "Rotate":
        angle = -math.radians(argument)
        a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
        centre_x, centre_y = width / 2, height / 2
        return (a, b, centre_x - a * centre_x - b * centre_y, d, e, centre_y - d * centre_x - e * centre_y)
    return {"ShearX": (1, argument, 0, 0, 1, 0), "ShearY": (1, 0, 0, argument, 1, 0),
            "TranslateXRel": (1, 0, argument * width, 0, 1, 0),
            "TranslateYRel": (1, 0, 0, 0, 1, argument * height)}[name]


def enhance_factor(name: str, argument: float) -> float:
    """The enhancement factor of Color/Contrast/Brightness/Sharpness(Increasing) at `argument`: the
    increasing ops move away from 1.0 by it, kept at or above 0.1."""
    return max(0.1, 1.0 + argument) if name.endswith("Increasing") else argument


class RandAugment:
    """Apply `spec.num_ops` ops drawn uniformly (with replacement), each with probability `spec.prob`.

    Args:
        spec: a parsed spec or a RandAugment string.
        fill: the colour uncovered areas get (the dataset mean, 0..255).
        interpolation: of the geometric ops: 'nearest', 'bilinear', 'bicubic' or 'random' (bilinear or
            bicubic, drawn per op, as the recipes' 'random' train interpolation does).
        apply: (image, op name, argument, interpolation, fill) -> image: `apply_op`, or the fast training
            input's `array_augment.apply_op_array` on arrays.
    """

    def __init__(self, spec: RandAugmentSpec | str, fill: tuple[int, ...] = (128, 128, 128),
                 interpolation: str = "bicubic", apply: Callable = apply_op):
        self.spec = parse_rand_augment(spec) if isinstance(spec, str) else spec
        if interpolation not in ("nearest", "bilinear", "bicubic", "random"):
            raise ValueError("RandAugment interpolation must be nearest, bilinear, bicubic or random, "
                             f"got {interpolation!r}")
        self.fill = tuple(fill)
        self.interpolation = interpolation
        self.apply = apply

    def _magnitude(self) -> float:
        spec = self.spec
        magnitude = float(spec.magnitude)
        if spec.magnitude_std > 100:  # the grammar's "uniform" setting
            magnitude = float(torch.empty(()).uniform_(0, magnitude))
        elif spec.magnitude_std > 0:
            magnitude = float(torch.normal(torch.tensor(magnitude), torch.tensor(spec.magnitude_std)))
        upper = spec.magnitude_max if spec.magnitude_max is not None else MAX_LEVEL
        return max(0.0, min(magnitude, upper))

    def __call__(self, img: Image.Image) -> Image.Image:
        ops = self.spec.ops
        for index in torch.randint(len(ops), (self.spec.num_ops,)).tolist():
            if self.spec.prob < 1.0 and float(torch.rand(())) > self.spec.prob:
                continue
            name = ops[index]
            argument = op_argument(name, self._magnitude())
            if name in _SIGNED and float(torch.rand(())) < 0.5:
                argument = -argument
            interpolation = self.interpolation
            if interpolation == "random":
                interpolation = ("bilinear", "bicubic")[int(torch.randint(2, ()))]
            img = self.apply(img, name, argument, interpolation, self.fill)
        return img

    def __repr__(self) -> str:
        return f"RandAugment({self.spec.format()!r}, fill={self.fill}, interpolation={self.interpolation})"

