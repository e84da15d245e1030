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
