"""RandAugment's ops and the flips on (H, W, 3) uint8 arrays with OpenCV (the `augment` extra), for the fast
training input (`train_decode.py`): the same ops, arguments and formulas as `auto_augment.apply_op`'s Pillow
calls, without a PIL image in between, and the geometric ones several times faster (Pillow's affine
transform has no vectorised path: bicubic about 3 ms a 224x224 image, OpenCV's about 1 ms).

Each op follows Pillow's definition: the look-up tables of ImageOps (autocontrast, equalize, posterize,
solarize), ImageEnhance's blends against a degenerate image (grayscale for Color, its mean for Contrast,
black for Brightness, Pillow's SMOOTH filter for Sharpness) truncated as Pillow truncates, and the
geometric ops' output-to-input matrices with Pillow's pixel centres. What differs: OpenCV's bicubic kernel
(a = -0.75; Pillow's -0.5), its image edges, and a level of rounding here and there, so the distribution of
the output is the reference's, not every pixel.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from .auto_augment import affine_matrix, enhance_factor

GEOMETRIC_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13  # Pillow's ImageFilter.SMOOTH


@cache
def opencv():
    """OpenCV, set to one thread (a loader worker has one core), or None where it is not installed."""
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)
    return cv2


def _lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a (256,) or per-channel (256, 3) look-up table."""
    table = table.astype(np.uint8)
    return opencv().LUT(np.ascontiguousarray(image), table.reshape(256, 1, -1) if table.ndim == 2 else table)


def _blend(degenerate: np.ndarray | float, image: np.ndarray, factor: float) -> np.ndarray:
    """Pillow's Image.blend(degenerate, image, factor): degenerate + factor * (image - degenerate), clipped
    and truncated to uint8 (OpenCV rounds: 0.499 less makes it truncate)."""
    image = np.ascontiguousarray(image)
    if isinstance(degenerate, np.ndarray):
        return opencv().addWeighted(image, factor, np.ascontiguousarray(degenerate), 1 - factor, -0.499)
    return opencv().addWeighted(image, factor, image, 0, degenerate * (1 - factor) - 0.499)


def _gray(image: np.ndarray) -> np.ndarray:
    # Pillow's convert("L") is ITU-R 601-2 luma, as OpenCV's (their fixed-point roundings differ by a level
    # at most)
    return opencv().cvtColor(np.ascontiguousarray(image), opencv().COLOR_RGB2GRAY)


def _autocontrast(image: np.ndarray) -> np.ndarray:
    cv2 = opencv()
    low, high = np.array([cv2.minMaxLoc(plane)[:2] for plane in cv2.split(np.ascontiguousarray(image))],
                         dtype=np.float64).T
    levels = np.arange(256, dtype=np.float64)[:, None]
    scale = np.where(high > low, 255.0 / np.maximum(high - low, 1), 1.0)
    offset = np.where(high > low, -low * scale, 0.0)
    return _lut(image, np.clip((levels * scale + offset).astype(np.int64), 0, 255))


def _equalize(image: np.ndarray) -> np.ndarray:
    tables = []
    for plane in opencv().split(np.ascontiguousarray(image)):
        histogram = np.bincount(plane.ravel(), minlength=256)
        used = histogram[histogram > 0]
        step = (used.sum() - used[-1]) // 255 if len(used) > 1 else 0
        if not step:
            tables.append(np.arange(256))
            continue
        tables.append((step // 2 + np.concatenate([[0], np.cumsum(histogram)[:-1]])) // step)
    return _lut(image, np.clip(np.stack(tables, axis=1), 0, 255))


def _geometric(image: np.ndarray, name: str, argument: float, interpolation: str,
               fill: tuple[int, ...]) -> np.ndarray:
    cv2 = opencv()
    height, width = image.shape[:2]
    a, b, c, d, e, f = affine_matrix(name, argument, width, height)
    # OpenCV puts pixel centres at whole coordinates: shift Pillow's +0.5 centres on both sides
    matrix = np.array([[a, b, c + (a + b - 1) / 2], [d, e, f + (d + e - 1) / 2]], dtype=np.float64)
    resample = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (width, height),
                          flags=resample[interpolation] | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(v) for v in fill[:3]))


def apply_op_array(image: np.ndarray, name: str, argument, interpolation: str = "bicubic",
                   fill: tuple[int, ...] = (128, 128, 128)) -> np.ndarray:
    """`auto_augment.apply_op` on an (H, W, 3) uint8 array (needs OpenCV)."""
    levels = np.arange(256)
    if name in GEOMETRIC_OPS:
        return _geometric(image, name, argument, interpolation, fill)
    if name == "AutoContrast":
        return _autocontrast(image)
    if name == "Equalize":
        return _equalize(image)
    if name == "Invert":
        return _lut(image, 255 - levels)
    if name.startswith("Posterize"):
        if argument >= 8:
            return image
        return _lut(image, levels & (~(2 ** (8 - argument) - 1) & 0xFF)) if argument > 0 else \
            np.zeros_like(image)
    if name.startswith("Solarize") and name != "SolarizeAdd":
        return _lut(image, np.where(levels < argument, levels, 255 - levels))
    if name == "SolarizeAdd":
        return _lut(image, np.where(levels < 128, np.minimum(255, levels + argument), levels))
    factor = enhance_factor(name, argument)
    if name.startswith("Color"):
        return _blend(opencv().cvtColor(_gray(image), opencv().COLOR_GRAY2RGB), image, factor)
    if name.startswith("Contrast"):
        return _blend(float(int(_gray(image).mean() + 0.5)), image, factor)
    if name.startswith("Brightness"):
        return _blend(0.0, image, factor)
    if name.startswith("Sharpness"):
        smooth = opencv().filter2D(np.ascontiguousarray(image), -1, _SMOOTH)
        smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1] = image[0], image[-1], image[:, 0], image[:, -1]
        return _blend(smooth, image, factor)
    raise ValueError(f"unknown augmentation op {name!r}")


class ArrayFlip:
    """A horizontal (axis 1) or vertical (axis 0) flip of an (H, W, C) array with probability `p`, drawn
    from torch's generator as torchvision's flips draw."""

    def __init__(self, p: float, axis: int):
        self.p, self.axis = p, axis

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.flip(image, self.axis) if torch.rand(1) < self.p else image

    def __repr__(self) -> str:
        return f"ArrayFlip(p={self.p}, axis={self.axis})"
