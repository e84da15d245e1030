"""Fixtures of the training tests: the UCI handwritten digits (shipped inside scikit-learn's wheel) as an
image-folder dataset, and the training command run in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """(train folder, val folder) of the digits as 32x32 RGB PNGs, in folders '0'..'9'."""
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def named_digits(tmp_path_factory):
    """(train folder, val folder) of the digits as 32x32 RGB PNGs, in folders named 'zero'..'nine'."""
    return write_digits(tmp_path_factory.mktemp("named_digits"), names=DIGIT_NAMES)


def run_cli(args: list[str], env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`python -m visionzoo ARGS` in a fresh process, with this checkout's sources first on the path."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    full_env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "visionzoo", *args], env=full_env, capture_output=True,
                          text=True, **kwargs)
