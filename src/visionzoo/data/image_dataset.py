"""The base of the evaluation datasets: a labelled item, label parsing, and the dataset that decodes images.

An image that cannot be read is not fatal here: the sample carries the error, and the loader skips and
reports it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..errors import DataError
from .imagenet import NUM_CLASSES, imagenet_synset_to_index, is_synset
from .transforms import to_rgb

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class Sample:
    """One dataset item: the preprocessed image, or None and the reason it could not be read."""

    index: int
    image: torch.Tensor | None
    label: int
    error: str | None = None


def resolve_label(label: str | int, num_classes: int, where: str) -> int:
    """A label given as class index or ImageNet synset -> class index of a `num_classes` model."""
    if isinstance(label, str):
        text = label.strip()
        if is_synset(text):
            if num_classes != NUM_CLASSES:
                raise DataError(f"{where}: label {text} is an ImageNet synset, but the model has "
                                f"{num_classes} classes, not ImageNet-1k's {NUM_CLASSES}; "
                                "give class indices instead")
            index = imagenet_synset_to_index().get(text)
            if index is None:
                raise DataError(f"{where}: synset {text} is not one of the {NUM_CLASSES} ImageNet-1k classes")
            return index
        try:
            label = int(text)
        except ValueError:
            raise DataError(f"{where}: label {text!r} is neither a class index nor a synset id such as "
                            "n01440764") from None
    if not 0 <= label < num_classes:
        raise DataError(f"{where}: label {label} is outside the model's classes 0..{num_classes - 1}")
    return label


class ImageDataset(torch.utils.data.Dataset):
    """Base of the datasets: labels by index, `_open(index)` gives the raw image, `transform` is applied.

    Subclasses implement `_open` and `name`; everything that can go wrong while decoding is caught here.
    """

    def __init__(self, labels: Sequence[int], transform: Callable | None = None):
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def _open(self, index: int) -> Image.Image:
        raise NotImplementedError

    def name(self, index: int) -> str:
        """A human-readable name of the item (its path), for error lists."""
        raise NotImplementedError

    def with_transform(self, transform: Callable | None) -> ImageDataset:
        """A shallow copy that applies `transform` (the file list is shared, not rescanned)."""
        other = copy.copy(self)
        other.transform = transform
        return other

    def __getitem__(self, index: int) -> Sample:
        label = self.labels[index]
        try:
            image = self._open(index)
            image.load()  # decode now: truncated or corrupt data fails here, not later inside a transform
            image = to_rgb(image)
        except Exception as error:  # any decoder failure is a property of this file, reported per file
            message = str(error).splitlines()[0] if str(error) else ""
            return Sample(index, None, label, f"{type(error).__name__}: {message}".rstrip(": "))
        return Sample(index, self.transform(image) if self.transform is not None else image, label)
