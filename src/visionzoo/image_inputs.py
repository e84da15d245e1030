"""Facts about a model's input image that the tag records, the models, the data pipeline and deployment all
read: the size a model gets when nothing says otherwise, sizes given as one side or a pair, and the
normalisations published weights were trained with.

This module imports nothing, so that every layer of the package can use it without an upward import.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_IMG_SIZE = 224  # the classic ImageNet evaluation size, for a model built without a tag

# The ImageNet training set's RGB statistics on a 0-1 scale, as used by most torchvision-style weights.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The input normalisations published weights were trained with, by the name the tag data uses:
# ImageNet statistics; Inception-style (-1..1); none (0..1 kept as it is).
NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


def size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) of a size given as one side or as a pair (an image, a grid, a stride)."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)
