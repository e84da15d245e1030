"""RandAugment's geometric ops (Rotate, ShearX/Y, TranslateX/YRel) through OpenCV's `warpAffine` where
OpenCV is installed (the `augment` extra), for the fast training input (`train_decode.py`): the same op,
argument and output-to-input matrix as `auto_augment.apply_op`, several times cheaper than Pillow's affine
transform, which has no vectorised path (bicubic: about 1 ms against 3 for a 224x224 image, one thread).

What differs from Pillow's pixels: OpenCV's bicubic kernel (a = -0.75; Pillow's a = -0.5) and its edge,
which blends the fill colour where Pillow cuts. Without OpenCV, for nearest-neighbour resampling (as fast
in Pillow) and for every other op, Pillow's own.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from .auto_augment import apply_op

if TYPE_CHECKING:
    from PIL import Image

GEOMETRIC_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")


def affine_matrix(name: str, argument: float, width: int, height: int) -> tuple[float, ...]:
    """Pillow's output-to-input matrix (a, b, c, d, e, f) of geometric op `name`, pixel centres at +0.5:
    input (x, y) = (a x + b y + c, d x + e y + f) for output (x, y), as `apply_op` has Pillow build it
    (Rotate: about the centre, as `Image.rotate` does)."""
    if name == "Rotate":
        angle = -math.radians(argument)
        a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
        centre_x, centre_y = width / 2, height / 2
        return (a, b, centre_x - a * centre_x - b * centre_y, d, e, centre_y - d * centre_x - e * centre_y)
    return {"ShearX": (1, argument, 0, 0, 1, 0), "ShearY": (1, 0, 0, argument, 1, 0),
            "TranslateXRel": (1, 0, argument * width, 0, 1, 0),
            "TranslateYRel": (1, 0, 0, 0, 1, argument * height)}[name]


@cache
def _opencv():
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # one loader worker, one core: OpenCV's own threads would oversubscribe them
    return cv2


def apply_op_fast(img: Image.Image, name: str, argument, interpolation: str = "bicubic",
                  fill: tuple[int, ...] = (128, 128, 128)) -> Image.Image:
    """`auto_augment.apply_op`, with the geometric ops through OpenCV where it is installed."""
    cv2 = _opencv()
    if cv2 is None or name not in GEOMETRIC_OPS or img.mode != "RGB" or interpolation == "nearest":
        return apply_op(img, name, argument, interpolation, fill)
    from PIL import Image as PILImage

    a, b, c, d, e, f = affine_matrix(name, argument, img.width, img.height)
    # OpenCV puts pixel centres at whole coordinates: shift Pillow's +0.5 centres on both sides
    matrix = np.array([[a, b, c + (a + b - 1) / 2], [d, e, f + (d + e - 1) / 2]], dtype=np.float64)
    resample = cv2.INTER_CUBIC if interpolation == "bicubic" else cv2.INTER_LINEAR
    warped = cv2.warpAffine(np.asarray(img), matrix, img.size, flags=resample | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(int(v) for v in fill[:3]))
    return PILImage.fromarray(warped)
