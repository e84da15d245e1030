"""The preprocessing a model's weights expect, resolved from its pretrained cfg and the caller's overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import OptionError, UserError
from ..image_inputs import DEFAULT_IMG_SIZE, IMAGENET_MEAN, IMAGENET_STD, size_pair

if TYPE_CHECKING:
    from ..models.base import ClassifierModel
    from ..pretrained_cfg import PretrainedCfg

CROP_MODES = ("center", "squash", "border")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")

# Used where neither the model nor the caller says otherwise (the classic ImageNet evaluation).
DEFAULT_CROP_PCT = 0.875
DEFAULT_INTERPOLATION = "bicubic"
DEFAULT_CROP_MODE = "center"


@dataclass(frozen=True)
class DataConfig:
    """How images are turned into model inputs.

    `crop_pct` is the fraction of the resized image that the crop keeps: the image is first resized so that
    `floor(img_size / crop_pct)` fits it (as `crop_mode` says), then cropped to `img_size`.
    """

    input_size: tuple[int, int, int] = (3, DEFAULT_IMG_SIZE, DEFAULT_IMG_SIZE)
    interpolation: str = DEFAULT_INTERPOLATION
    crop_pct: float = DEFAULT_CROP_PCT
    crop_mode: str = DEFAULT_CROP_MODE
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self):
        if len(self.input_size) != 3 or min(self.input_size) < 1:
            raise UserError("input_size must be (channels, height, width) of positive ints, "
                            f"got {self.input_size}")
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, "
                            f"got {self.interpolation!r}")
        if self.crop_mode not in CROP_MODES:
            raise UserError(f"crop_mode must be one of {', '.join(CROP_MODES)}, got {self.crop_mode!r}")
        if not 0 < self.crop_pct <= 4:
            raise UserError(f"crop_pct must be in (0, 4], got {self.crop_pct}")
        channels = self.input_size[0]
        if len(self.mean) != channels or len(self.std) != channels:
            raise UserError(f"mean and std need {channels} values (one per channel), "
                             f"got {self.mean} and {self.std}")
        if any(s <= 0 for s in self.std):
            raise UserError(f"std must be positive, got {self.std}")

    @property
    def img_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return self.input_size[1], self.input_size[2]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_OVERRIDES = ("img_size", "input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")


def _as_input_size(img_size: int | tuple[int, int], channels: int) -> tuple[int, int, int]:
    return channels, *size_pair(img_size)


def resolve_data_config(model: ClassifierModel | None = None, pretrained_cfg: PretrainedCfg | None = None,
                        use_test_size: bool = False, **overrides) -> DataConfig:
    """The preprocessing for `model` (its `pretrained_cfg`) or for `pretrained_cfg`, with `overrides` applied.

    Args:
        model: a visionzoo model; its `pretrained_cfg` is used unless `pretrained_cfg` is given. A model
            built with an `img_size` (every fixed-size model, or a conv net created with one) is fed that
            size.
        use_test_size: take the cfg's `test_input_size`/`test_crop_pct` (a larger evaluation size some
            weights were also measured at) where it has them.
        **overrides: any of img_size (int or (height, width)), input_size, interpolation, crop_pct,
            crop_mode, mean, std. None values are ignored.

    Raises:
        OptionError (a TypeError): an unknown override. UserError (a ValueError): a value out of range.
    """
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise OptionError(f"unknown data config option {', '.join(map(repr, unknown))}; "
                        f"the options are {', '.join(_OVERRIDES)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if pretrained_cfg is None and model is not None:
        pretrained_cfg = model.pretrained_cfg

    values: dict = {}
    if pretrained_cfg is not None:
        values = dict(input_size=tuple(pretrained_cfg.input_size), interpolation=pretrained_cfg.interpolation,
                      crop_pct=pretrained_cfg.crop_pct, crop_mode=pretrained_cfg.crop_mode,
                      mean=tuple(pretrained_cfg.mean), std=tuple(pretrained_cfg.std))
        if use_test_size and pretrained_cfg.test_input_size is not None:
            values["input_size"] = tuple(pretrained_cfg.test_input_size)
        if use_test_size and pretrained_cfg.test_crop_pct is not None:
            values["crop_pct"] = pretrained_cfg.test_crop_pct
    if model is not None and model.config.img_size is not None:
        # the size the model was built for: a fixed-size model's own, or the size a conv net was created with
        channels = values.get("input_size", DataConfig.input_size)[0]
        values["input_size"] = _as_input_size(model.default_img_size, channels)

    if "img_size" in overrides:
        channels = overrides.get("input_size", values.get("input_size", DataConfig.input_size))[0]
        overrides["input_size"] = _as_input_size(overrides.pop("img_size"), channels)
    for key in ("input_size", "mean", "std"):
        if key in overrides:
            overrides[key] = tuple(overrides[key])
    return DataConfig(**{**values, **overrides})
