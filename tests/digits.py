"""The UCI handwritten digits (shipped inside scikit-learn's wheel) as an image-folder dataset: the training
tests' data, small enough to train on in seconds and real enough to learn."""

from pathlib import Path

import numpy as np
from PIL import Image

DIGITS_SIZE = 32  # the 8x8 digits upsampled, so that the test models' stride-32 stems see something


DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def write_digits(root: Path, size: int = DIGITS_SIZE,
                 names: tuple[str, ...] | None = None) -> tuple[Path, Path]:
    """train/ and val/ class folders ('0'..'9', or `names`) of the 1,797 digits; every fifth image (by
    index) is val."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folders = names or tuple(str(label) for label in range(10))
    for split in ("train", "val"):
        for folder in folders:
            (root / split / folder).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        split = "val" if index % 5 == 0 else "train"
        pixels = np.round(image * (255 / 16)).astype(np.uint8)
        picture = Image.fromarray(pixels, mode="L").resize((size, size), Image.BILINEAR).convert("RGB")
        picture.save(root / split / folders[label] / f"{index:04d}.png")
    return root / "train", root / "val"
