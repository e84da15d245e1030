"""The options of the training input, as the option groups of `visionzoo.train.TrainConfig`: what
`create_train_transform` does to each image (`TrainAugmentation`) and what `BatchMixer` does to each batch
({MixupOptions}). Every default is the training default: the basic random-resized crop and flip, no mixing.

The field names are the options of `visionzoo train` and of the recipes. This module imports no torch, so that
the command line reads it while parsing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..options import NON_NEGATIVE, PROBABILITY, Options, Rule, at_least, one_of, option
from .rand_augment_spec import AugmentSpecError, parse_rand_augment

TRAIN_INTERPOLATIONS = ("random", "bilinear", "bicubic", "nearest")  # random: bilinear or bicubic per image
ERASE_MODES = ("const", "rand", "pixel")
_ALPHA = Rule("0 (off) or a positive Beta alpha", lambda value: value >= 0)


@dataclass(frozen=True)
class TrainAugmentation(Options):
    """What happens to each training image: crop, flips, RandAugment or colour jitter, grayscale, blur, and
    random erasing (applied to the normalised batch by the engine)."""

    scale: tuple[float, float] = option(
        (0.08, 1.0), "random-resized crop: min and max fraction of the image area",
        Rule("two fractions 0 < min <= max <= 1", lambda pair: 0 < pair[0] <= pair[1] <= 1), recipe=True)
    ratio: tuple[float, float] = option(
        (3 / 4, 4 / 3), "random-resized crop: min and max aspect ratio",
        Rule("two aspect ratios 0 < min <= max", lambda pair: 0 < pair[0] <= pair[1]), recipe=True)
    hflip: float = option(0.5, "horizontal flip probability", PROBABILITY, recipe=True)
    aa: str | None = option(None, "RandAugment string, e.g. rand-m9-mstd0.5-inc1 (magnitude, its noise std, "
                            "inc1, n ops, mmax, p)", recipe=True)
    vflip: float = option(0.0, "vertical flip probability", PROBABILITY, recipe=True)
    color_jitter: float | None = option(None, "brightness/contrast/saturation jitter strength (inactive with "
                                        "{aa})", NON_NEGATIVE, recipe=True)
    color_jitter_prob: float | None = option(None, "chance of colour jitter (default: always)", PROBABILITY,
                                             recipe=True)
    grayscale_prob: float = option(0.0, "chance of grayscale", PROBABILITY, recipe=True)
    gaussian_blur_prob: float = option(0.0, "chance of blur", PROBABILITY, recipe=True)
    train_interpolation: str | None = option(
        None, "crop interpolation; random: bilinear or bicubic per image (default: the model's)",
        one_of(*TRAIN_INTERPOLATIONS), recipe=True)
    reprob: float = option(0.0, "random erasing probability (on the normalised batch)", PROBABILITY,
                           recipe=True)
    remode: str = option("pixel", "random erasing fill: pixel noise, one random colour per box, or const "
                         "(the mean)", one_of(*ERASE_MODES), recipe=True)
    recount: int = option(1, "random erasing: up to this many boxes per image", at_least(1), recipe=True)

    def check(self) -> None:
        if self.aa:
            try:
                parse_rand_augment(self.aa)  # one clear error now rather than in a data-loader worker
            except AugmentSpecError as error:
                raise ConfigError(f"{{aa}}: {str(error).splitlines()[0]}") from None


@dataclass(frozen=True)
class MixupOptions(Options):
    """Mixup and CutMix of training batches. Mixing is on when either alpha is above 0."""

    mixup: float = option(0.0, "mixup Beta alpha (0: off); mixing switches to soft-target cross-entropy",
                          _ALPHA, recipe=True)
    cutmix: float = option(0.0, "cutmix Beta alpha (0: off)", _ALPHA, recipe=True)
    mixup_prob: float = option(1.0, "chance that a batch is mixed", PROBABILITY, recipe=True)
    mixup_switch_prob: float = option(0.5, "chance of cutmix rather than mixup when both are on", PROBABILITY,
                                      recipe=True)
    mixup_off_epoch: int = option(0, "no mixing from this epoch on (0: never switched off)",
                                  Rule("0 (never) or a positive epoch", lambda value: value >= 0),
                                  recipe=True)

    @property
    def active(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0
