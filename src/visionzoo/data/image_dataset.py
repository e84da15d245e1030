"""The base of the datasets: a labelled item, and the dataset that decodes images.

An image that cannot be read is not fatal here: the sample carries the error, and the loader skips and
reports it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .transforms import to_rgb

if TYPE_CHECKING:
    from PIL import Image


class EncodedImageTransform:
    """A transform that decodes the image itself: `read(source)` decodes the stored bytes (or a PIL image
    opened but not yet decoded, where the dataset has no bytes) as far as it needs them, e.g. at a reduced
    scale; `__call__` does the rest. Anything `read` raises is a property of the file, reported per sample;
    what `__call__` raises is not caught."""

    def read(self, source: bytes | Image.Image):
        raise NotImplementedError

    def __call__(self, image):
        raise NotImplementedError


@dataclass
class Sample:
    """One dataset item: the preprocessed image, or None and the reason it could not be read."""

    index: int
    image: torch.Tensor | None
    label: int
    error: str | None = None


class ImageDataset(torch.utils.data.Dataset):
    """Base of the datasets: labels by index, `_open(index)` gives the raw image, `transform` is applied.

    Subclasses implement `_open` and `name`; everything that can go wrong while decoding is caught here.
    `classes` are the names of the class indices the labels are (None: indices without names).
    """

    def __init__(self, labels: Sequence[int], transform: Callable | None = None,
                 classes: Sequence[str] | None = None):
        self.labels = list(labels)
        self.transform = transform
        self.classes = tuple(classes) if classes is not None else None

    def __len__(self) -> int:
        return len(self.labels)

    def _open(self, index: int) -> Image.Image:
        raise NotImplementedError

    def encoded(self, index: int) -> bytes | None:
        """The image's stored bytes, where the dataset has them without decoding (None: `_open` it)."""
        return None

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
        if isinstance(self.transform, EncodedImageTransform):
            return self._read_encoded(index, label, self.transform)
        try:
            image = self._open(index)
            image.load()  # decode now: truncated or corrupt data fails here, not later inside a transform
            image = to_rgb(image)
        except Exception as error:  # any decoder failure is a property of this file, reported per file
            return Sample(index, None, label, _error_text(error))
        return Sample(index, self.transform(image) if self.transform is not None else image, label)

    def _read_encoded(self, index: int, label: int, transform: EncodedImageTransform) -> Sample:
        try:
            data = self.encoded(index)
            image = transform.read(data if data is not None else self._open(index))
        except Exception as error:  # as in __getitem__: a property of this file, reported per file
            return Sample(index, None, label, _error_text(error))
        return Sample(index, transform(image), label)


def _error_text(error: Exception) -> str:
    message = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {message}".rstrip(": ")
