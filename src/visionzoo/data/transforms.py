"""Image preprocessing: PIL image -> normalised tensor, exactly as the published weights were evaluated.

Evaluation: convert to RGB, resize on the PIL image (`crop_mode` says how), crop `img_size` from the centre,
to a float tensor in [0, 1], normalise with the cfg's mean/std. The loader runs the same steps but keeps
uint8 tensors until they reach the model's device (`normalize=False` here, `normalize_batch` there): a
quarter of the bytes to move between processes and to the GPU, and the same floats in the end.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..errors import DataError
from .config import DataConfig

if TYPE_CHECKING:
    from PIL import Image


def _interpolation_mode(name: str):
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(name)


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (grayscale, palette, RGBA, CMYK, 16-bit ...) to 3-channel 8-bit RGB.

    Alpha is dropped rather than composited: that is how the reference evaluations read RGBA images.
    16-bit samples keep their high byte (scaled to 8 bits); PIL's own conversion would clip every value
    above 255, turning a normally exposed 16-bit PNG white. Images of 32-bit integer or float samples have no
    known range and raise DataError.
    """
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and img.format == "PNG"):  # PNG: at most 16 bits
        import numpy as np
        from PIL import Image

        high_bytes = (np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8)
        return Image.fromarray(high_bytes, mode="L").convert("RGB")
    if img.mode in ("I", "F"):
        kind = "float" if img.mode == "F" else "32-bit integer"
        raise DataError(f"{kind} samples ({img.format or 'image'} mode {img.mode}) have no known range; "
                        "convert the image to 8 or 16 bits per channel")
    return img.convert("RGB")


class ToRGB:
    """`to_rgb` as a transform step."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return to_rgb(img)

    def __repr__(self) -> str:
        return "ToRGB()"


class ResizeKeepRatio:
    """Resize keeping the aspect ratio so that the image covers (`fit='shorter'`) or fits in (`fit='longer'`)
    the box `size` = (height, width).

    For a square box with `fit='shorter'` the shorter side becomes exactly the box side and the longer side
    is scaled and truncated, as torchvision's `Resize(int)` does; otherwise each side is scaled by the
    limiting ratio and rounded. Both rules are the ones the published figures were measured with.
    """

    def __init__(self, size: tuple[int, int], interpolation: str, fit: str = "shorter"):
        if fit not in ("shorter", "longer"):
            raise ValueError(f"fit must be 'shorter' or 'longer', got {fit!r}")
        self.size = size
        self.interpolation = interpolation
        self.fit = fit

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        box_h, box_w = self.size
        if self.fit == "shorter" and box_h == box_w:
            if height <= width:
                return box_h, int(box_h * width / height)
            return int(box_w * height / width), box_w
        ratio_h, ratio_w = height / box_h, width / box_w
        ratio = min(ratio_h, ratio_w) if self.fit == "shorter" else max(ratio_h, ratio_w)
        return round(height / ratio), round(width / ratio)

    def __call__(self, img: Image.Image) -> Image.Image:
        from torchvision.transforms import functional as F

        size = self.output_size(img.height, img.width)
        if size == (img.height, img.width):
            return img
        return F.resize(img, list(size), _interpolation_mode(self.interpolation))

    def __repr__(self) -> str:
        return f"ResizeKeepRatio(size={self.size}, interpolation={self.interpolation}, fit={self.fit})"


class CenterCropOrPad:
    """Crop `size` = (height, width) from the centre, first padding with `fill` where the image is smaller."""

    def __init__(self, size: tuple[int, int], fill: tuple[int, ...]):
        self.size = size
        self.fill = fill

    def __call__(self, img: Image.Image) -> Image.Image:
        from torchvision.transforms import functional as F

        crop_h, crop_w = self.size
        pad_w, pad_h = max(crop_w - img.width, 0), max(crop_h - img.height, 0)
        if pad_w or pad_h:
            # The odd pixel goes to the right/bottom, as in torchvision's own crop padding.
            img = F.pad(img, [pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2], fill=self.fill)
        return F.center_crop(img, list(self.size))

    def __repr__(self) -> str:
        return f"CenterCropOrPad(size={self.size}, fill={self.fill})"


class PILToUint8Tensor:
    """PIL RGB image -> (3, H, W) uint8 tensor, without scaling."""

    def __call__(self, img: Image.Image) -> torch.Tensor:
        from torchvision.transforms import functional as F

        return F.pil_to_tensor(img)

    def __repr__(self) -> str:
        return "PILToUint8Tensor()"


def scale_size(config: DataConfig) -> tuple[int, int]:
    """(height, width) the image is resized to before the crop: floor(img_size / crop_pct) per side."""
    return tuple(math.floor(side / config.crop_pct) for side in config.img_size)


def _eval_resize_crop(config: DataConfig) -> list:
    from torchvision import transforms

    img_size = config.img_size
    resize_to = scale_size(config)
    if config.crop_mode == "squash":
        return [transforms.Resize(list(resize_to), interpolation=_interpolation_mode(config.interpolation)),
                transforms.CenterCrop(list(img_size))]
    if config.crop_mode == "border":
        fill = tuple(round(255 * m) for m in config.mean)
        return [ResizeKeepRatio(resize_to, config.interpolation, fit="longer"),
                CenterCropOrPad(img_size, fill)]
    return [ResizeKeepRatio(resize_to, config.interpolation, fit="shorter"),
            transforms.CenterCrop(list(img_size))]


def create_transform(config: DataConfig, training: bool = False, normalize: bool = True):
    """The preprocessing for `config`: a callable from a PIL image (any mode) to a (3, H, W) tensor.

    Args:
        training: random-resized crop and horizontal flip (the basic ImageNet training recipe) instead of
            the deterministic evaluation resize and centre crop.
        normalize: float output normalised with the config's mean/std; False gives the uint8 tensor before
            that step (see `normalize_batch`).
    """
    from torchvision import transforms

    steps: list = [ToRGB()]
    if training:
        steps += [transforms.RandomResizedCrop(list(config.img_size),
                                               interpolation=_interpolation_mode(config.interpolation)),
                  transforms.RandomHorizontalFlip()]
    else:
        steps += _eval_resize_crop(config)
    if normalize:
        steps += [transforms.ToTensor(), transforms.Normalize(mean=torch.tensor(config.mean),
                                                              std=torch.tensor(config.std))]
    else:
        steps.append(PILToUint8Tensor())
    return transforms.Compose(steps)


def normalize_batch(images: torch.Tensor, config: DataConfig,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A (B, C, H, W) uint8 batch -> normalised floats, computed as `create_transform` computes them.

    The float32 operations and their order are those of torchvision's ToTensor and Normalize, so the result
    is bit-identical to normalising each image with `create_transform(config)`; `dtype` is applied last.
    """
    mean = torch.tensor(config.mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(config.std, device=images.device).view(1, -1, 1, 1)
    return images.to(torch.float32).div_(255).sub_(mean).div_(std).to(dtype)
