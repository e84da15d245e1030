"""`visionzoo shard`: write a dataset as webdataset shards and their index.

Each sample is `{key}.{jpg,png,webp}` + `{key}.cls`, keys numbering the samples in the source's order (the
order `create_dataset` reads it in, so shards and source give the same dataset). `.cls` is the position of
the sample's class in the index's `classes` (the class folders, the `ClassLabel` names, or the sorted
distinct labels of a labels file), or the class index itself where the source labels by index only.

Shards are written with webdataset's `TarWriter`, each under a temporary name and renamed when whole, and
the index last: a killed writer leaves whole shards and no index, never a torn file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError, OutputError, UserError
from ...files import FolderLock, atomic_write, check_writable, remove_stale_temporaries
from ..transforms import to_rgb
from .index import ShardEntry, write_index
from .sources import Label, Source, SourceImage, read_image, read_source
from .spec import INDEX_NAME, SHARD_SUFFIX
from .tar import IMAGE_EXTENSIONS, INSTALL_HINT

IMAGE_FORMATS = ("keep", "jpg")
JPEG_QUALITY = 95  # re-encoding for --image-format jpg: near-lossless, a third of PNG's size on photos
_CARRIED = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}  # PIL format -> the extension shards carry


@dataclass(frozen=True)
class ShardsWritten:
    """What `write_shards` wrote: the index, the shards, and the class names kept in the index."""

    index: Path
    shards: tuple[Path, ...]
    samples: int
    bytes: int
    classes: tuple[str, ...] | None


@dataclass(frozen=True)
class _ShardPlan:
    path: Path
    keys: tuple[str, ...]
    images: tuple[SourceImage, ...]
    labels: tuple[int, ...]


def _is_index(label: Label) -> bool:
    return isinstance(label, int) or label.strip().isdigit()


def encode_labels(source: Source) -> tuple[list[int], tuple[str, ...] | None]:
    """(the `.cls` of each sample, the index's class names): positions in the declared classes or the
    sorted distinct labels, or the labels themselves where all are class indices and none are declared."""
    classes = source.declared
    if classes is None and all(_is_index(label) for label in source.labels):
        return [int(label) for label in source.labels], None
    if classes is None:  # a labels file's labels, as `read_labels_file` reads them (spaces around dropped)
        classes = tuple(sorted({label.strip() for label in source.labels}))
        named = [label.strip() for label in source.labels]
    else:  # class folder names as they are, or a `ClassLabel`'s integers
        named = source.labels
    position = {name: i for i, name in enumerate(classes)}
    encoded = []
    for image, label in zip(source.images, named, strict=True):
        if isinstance(label, int) and not 0 <= label < len(classes):
            raise DataError(f"{image}: label {label} is outside its {len(classes)} named classes")
        encoded.append(label if isinstance(label, int) else position[label])
    return encoded, classes


def encoded_image(data: bytes, image: SourceImage, image_format: str) -> tuple[bytes, str]:
    """(the bytes a shard stores for this image, their extension).

    `keep` stores JPEG, PNG and WebP as they are and re-encodes other formats as PNG (lossless: the same
    pixels as reading the source); `jpg` stores JPEGs as they are and re-encodes the rest as JPEG. An image
    of a carried format that cannot be decoded is kept as it is (and reported when read, as from the
    source)."""
    from PIL import Image

    try:
        opened = Image.open(io.BytesIO(data))
        kind = opened.format
    except Exception:  # an unidentifiable file: PIL raises several types
        opened, kind = None, None
    if kind == "JPEG" or (image_format == "keep" and kind in _CARRIED):
        return data, _CARRIED[kind]
    if opened is None:
        if image.suffix in IMAGE_EXTENSIONS:
            return data, ".jpg" if image.suffix == ".jpeg" else image.suffix
        raise DataError(f"{image} is not an image PIL can read; remove it or convert it")
    try:
        rgb = to_rgb(opened)
        buffer = io.BytesIO()
        if image_format == "jpg":
            rgb.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        else:
            rgb.save(buffer, format="PNG")
    except DataError:
        raise
    except Exception as error:  # a decoder failure of this file
        raise DataError(f"{image} cannot be decoded to re-encode it ({type(error).__name__}: "
                        f"{error})") from None
    return buffer.getvalue(), ".jpg" if image_format == "jpg" else ".png"


def _write_shard(plan: _ShardPlan, image_format: str) -> ShardEntry:
    from webdataset import TarWriter

    def write(temporary: str) -> None:
        # A fixed member time and owner: the same source gives byte-identical shards.
        with open(temporary, "wb") as stream, \
                TarWriter(stream, encoder=False, mtime=0, user="visionzoo", group="visionzoo") as writer:
            for key, image, label in zip(plan.keys, plan.images, plan.labels, strict=True):
                data, extension = encoded_image(read_image(image), image, image_format)
                writer.write({"__key__": key, extension[1:]: data, "cls": str(label).encode()})

    atomic_write(plan.path, write)
    return ShardEntry(str(plan.path.absolute()), plan.path.stat().st_size, plan.keys, plan.labels)


def _plans(source: Source, labels: Sequence[int], output: Path, prefix: str,
           shard_size: int) -> list[_ShardPlan]:
    width = max(8, len(str(len(source.images) - 1)))
    keys = [f"{i:0{width}d}" for i in range(len(source.images))]
    plans = []
    for number, start in enumerate(range(0, len(keys), shard_size)):
        stop = start + shard_size
        plans.append(_ShardPlan(output / f"{prefix}-{number:06d}{SHARD_SUFFIX}", tuple(keys[start:stop]),
                                source.images[start:stop], tuple(labels[start:stop])))
    return plans


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} is a file; give a folder for the shards")
    check_writable(output / INDEX_NAME, "shard index")
    if output.is_dir():
        existing = sorted(p.name for p in output.iterdir()
                          if p.name.endswith(SHARD_SUFFIX) or p.name == INDEX_NAME)
        if existing:
            raise OutputError(f"output folder {output} already holds shards ({existing[0]}); give an empty "
                              "or new folder (a killed run leaves whole shards and no index: delete them)")


def write_shards(src: str | os.PathLike, output: str | os.PathLike, shard_size: int = 1000,
                 image_format: str = "keep", workers: int = 1, labels_file: str | os.PathLike | None = None,
                 prefix: str = "shard", progress: Callable[[int], None] | None = None) -> ShardsWritten:
    """Write the dataset at `src` (any layout `create_dataset` reads) as shards of `shard_size` samples in
    `output`, with the index `_index.json` holding the sample counts, keys, labels and class names.

    Args:
        image_format: `keep` (images as they are; other formats than JPEG/PNG/WebP as PNG) or `jpg`.
        workers: processes writing shards side by side.
        progress: called with the number of samples of each shard written.
    Raises DataError for the source, OutputError for an output folder that holds shards already or cannot
    be written.
    """
    if shard_size < 1:
        raise UserError(f"shard size must be at least 1 sample, got {shard_size}")
    if image_format not in IMAGE_FORMATS:
        raise UserError(f"image format {image_format!r} is not one of {', '.join(IMAGE_FORMATS)}")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    try:
        import webdataset  # noqa: F401
    except ImportError:
        raise DataError(f"writing webdataset shards needs webdataset: {INSTALL_HINT}") from None
    output = Path(output)
    _check_output(output)
    source = read_source(src, labels_file)
    labels, classes = encode_labels(source)
    with FolderLock(output, "shard output folder"):
        remove_stale_temporaries(output)
        plans = _plans(source, labels, output, prefix, shard_size)
        entries = []
        with contextlib.ExitStack() as stack:
            mapper = map
            if workers > 1 and len(plans) > 1:
                mapper = stack.enter_context(ProcessPoolExecutor(min(workers, len(plans)))).map
            for entry in mapper(_write_shard, plans, itertools.repeat(image_format)):
                entries.append(entry)
                if progress is not None:
                    progress(entry.nsamples)
        write_index(output / INDEX_NAME, entries, classes, output.absolute().name)
    return ShardsWritten(output / INDEX_NAME, tuple(plan.path for plan in plans), len(labels),
                         sum(entry.filesize for entry in entries), classes)
