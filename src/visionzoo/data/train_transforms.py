"""The training transform a recipe describes: PIL image -> augmented tensor.

Order (the recipes'): random-resized crop (scale, ratio, interpolation incl. 'random'), flips, then either
RandAugment (`aa`) or colour jitter (jitter is off when RandAugment is on, as in the recipes), grayscale and
blur with their probabilities, to tensor, normalise, random erasing. The crop, flips, jitter, grayscale and
blur are torchvision's; RandAugment and erasing are ours (see their modules for why).

With `normalize=False` the transform stops at a uint8 tensor (for the loader's device-side normalisation,
`visionzoo.data.normalize_batch`) and random erasing is left to `create_batch_erasing`, applied to the
normalised batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..image_inputs import size_pair
from .auto_augment import RandAugment, parse_rand_augment
from .random_erasing import ERASE_MODES, RandomErasing
from .transforms import PILToUint8Tensor, ToRGB, _interpolation_mode

TRAIN_INTERPOLATIONS = ("random", "bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class TrainAugmentation:
    """The augmentation fields of a recipe, with the option names of `visionzoo train`.

    `scale` is the crop's area fraction range, `ratio` its aspect-ratio range; `color_jitter` is the
    brightness/contrast/saturation strength (None: off); `aa` a RandAugment string (None: off).
    """

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    vflip: float = 0.0
    color_jitter: float | None = 0.4
    color_jitter_prob: float | None = None
    grayscale_prob: float = 0.0
    gaussian_blur_prob: float = 0.0
    aa: str | None = None
    reprob: float = 0.0
    remode: str = "pixel"
    recount: int = 1
    train_interpolation: str = "random"

    def __post_init__(self):
        object.__setattr__(self, "scale", tuple(self.scale))
        object.__setattr__(self, "ratio", tuple(self.ratio))
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max <= 1, got {self.scale}")
        if len(self.ratio) != 2 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"ratio must be (min, max) with 0 < min <= max, got {self.ratio}")
        for name in ("hflip", "vflip", "grayscale_prob", "gaussian_blur_prob", "reprob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.train_interpolation not in TRAIN_INTERPOLATIONS:
            raise ValueError(f"train_interpolation must be one of {', '.join(TRAIN_INTERPOLATIONS)}, "
                             f"got {self.train_interpolation!r}")
        if self.remode not in ERASE_MODES:
            raise ValueError(f"remode must be one of {', '.join(ERASE_MODES)}, got {self.remode!r}")
        if self.aa:
            parse_rand_augment(self.aa)  # one clear error now rather than in a data-loader worker

    @classmethod
    def from_options(cls, options: dict) -> TrainAugmentation:
        """From a recipe's or the train command's option dict. Keys that are not augmentation fields are
        ignored; None keeps the default, except where None means "off" (`aa`, `color_jitter`)."""
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in options.items() if key in names
                  and (value is not None or key in ("aa", "color_jitter", "color_jitter_prob"))}
        return cls(**values)


class RandomResizedCropRandomInterpolation:
    """torchvision's RandomResizedCrop, with bilinear or bicubic drawn per image (the recipes' 'random')."""

    def __init__(self, size: tuple[int, int], scale: tuple[float, float], ratio: tuple[float, float]):
        from torchvision import transforms

        self.crops = [transforms.RandomResizedCrop(list(size), scale=scale, ratio=ratio,
                                                   interpolation=_interpolation_mode(mode))
                      for mode in ("bilinear", "bicubic")]

    def __call__(self, img):
        return self.crops[int(torch.randint(2, ()))](img)

    def __repr__(self) -> str:
        return f"RandomResizedCropRandomInterpolation({self.crops[0].size}, scale={self.crops[0].scale})"


def create_train_transform(img_size: tuple[int, int] | int, options: TrainAugmentation | dict | None = None,
                           mean: tuple[float, ...] = (0.485, 0.456, 0.406),
                           std: tuple[float, ...] = (0.229, 0.224, 0.225), normalize: bool = True):
    """The training transform for `options` at `img_size` (the train crop): PIL image -> (3, H, W) tensor.

    Args:
        options: a `TrainAugmentation` or a dict of its fields (e.g. a recipe's options); None: the basic
            random-resized crop and flip.
        normalize: float output normalised with mean/std, followed by random erasing; False: uint8 output,
            no erasing (apply `create_batch_erasing(options)` to the normalised batch instead).
    """
    from torchvision import transforms

    if options is None:
        options = TrainAugmentation()
    elif isinstance(options, dict):
        options = TrainAugmentation.from_options(options)
    size = size_pair(img_size)
    steps: list = [ToRGB()]
    if options.train_interpolation == "random":
        steps.append(RandomResizedCropRandomInterpolation(size, options.scale, options.ratio))
    else:
        steps.append(transforms.RandomResizedCrop(list(size), scale=options.scale, ratio=options.ratio,
                                                  interpolation=_interpolation_mode(options.train_interpolation)))
    if options.hflip > 0:
        steps.append(transforms.RandomHorizontalFlip(options.hflip))
    if options.vflip > 0:
        steps.append(transforms.RandomVerticalFlip(options.vflip))
    if options.aa:
        fill = tuple(min(255, round(255 * m)) for m in mean)
        steps.append(RandAugment(options.aa, fill=fill, interpolation=options.train_interpolation))
    elif options.color_jitter:
        jitter = transforms.ColorJitter(*(float(options.color_jitter),) * 3)
        steps.append(jitter if options.color_jitter_prob is None
                     else transforms.RandomApply([jitter], p=options.color_jitter_prob))
    if options.grayscale_prob:
        steps.append(transforms.RandomGrayscale(p=options.grayscale_prob))
    if options.gaussian_blur_prob:
        steps.append(transforms.RandomApply([transforms.GaussianBlur(kernel_size=23)],
                                            p=options.gaussian_blur_prob))
    if normalize:
        steps += [transforms.ToTensor(), transforms.Normalize(mean=torch.tensor(mean), std=torch.tensor(std))]
        erasing = create_batch_erasing(options)
        if erasing is not None:
            steps.append(erasing)
    else:
        steps.append(PILToUint8Tensor())
    return transforms.Compose(steps)


def create_batch_erasing(options: TrainAugmentation | dict) -> RandomErasing | None:
    """Random erasing for normalised images or batches as `options` set it; None when `reprob` is 0."""
    if isinstance(options, dict):
        options = TrainAugmentation.from_options(options)
    if not options.reprob:
        return None
    return RandomErasing(options.reprob, mode=options.remode, max_count=options.recount)
