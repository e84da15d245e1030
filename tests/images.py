"""Image files and labelled image sets that tests build in temp dirs (synthetic pixels, no network)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (64, 48), seed: int = 0, mode: str = "RGB",
                fmt: str | None = None) -> Path:
    """A noisy image of `size` (width, height) saved at `path` (format from the suffix unless `fmt`)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path, format=fmt)
    return path


def image_bytes(size: tuple[int, int] = (40, 30), seed: int = 0, fmt: str = "PNG") -> bytes:
    import io

    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_truncated_jpeg(path: Path, seed: int = 0) -> Path:
    """A JPEG cut off half way: its header reads, its pixels do not."""
    write_image(path, (120, 90), seed)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def synset_folder(root: Path, synsets: list[str], per_class: int, seed: int = 0) -> Path:
    """An ImageFolder tree: `per_class` images of assorted sizes and formats in each synset folder."""
    rng = np.random.default_rng(seed)
    formats = [".jpg", ".png", ".JPEG", ".webp"]
    for c, synset in enumerate(synsets):
        for i in range(per_class):
            size = (int(rng.integers(40, 200)), int(rng.integers(40, 200)))
            write_image(root / synset / f"img{i}{formats[(c + i) % len(formats)]}", size, seed=1000 * c + i)
    return root


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar of (name, bytes) members, written with the standard library (a shard as another tool writes
    one, or a broken one)."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
