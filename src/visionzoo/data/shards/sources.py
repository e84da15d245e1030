"""The images of a dataset in any layout `create_dataset` reads, with their labels as the layout gives them.

`visionzoo shard` writes shards independent of any model, so it takes the labels before they are matched to
a model's classes: class folder names, the labels of a labels file, a Hugging Face `label` column with its
`ClassLabel` names. The layouts are recognised in the order `create_dataset` recognises them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..datasets import LABEL_FILE_NAMES, _check_distinct, _is_image, _labels_text, _TreeWalk
from ..hf import IMAGE_COLUMN, LABEL_COLUMN, ArrowShard, _stored_label_names, arrow_files, find_arrow_files
from .spec import is_shard_spec

Label = int | str


@dataclass(frozen=True)
class SourceImage:
    """Where one image's encoded bytes are: the file `path`, or row `row` of the Arrow/parquet file `path`."""

    path: str
    row: int | None = None

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.path)[1].lower() if self.row is None else ""

    def __str__(self) -> str:
        return self.path if self.row is None else f"{self.path}#{self.row}"


@dataclass(frozen=True)
class Source:
    """A dataset's images in order, their labels as given, and the class names the layout declares
    (class folders, a `ClassLabel`), if it declares any."""

    images: tuple[SourceImage, ...]
    labels: tuple[Label, ...]
    declared: tuple[str, ...] | None = None


@functools.lru_cache(maxsize=4)
def _arrow_shard(path: str) -> ArrowShard:
    return ArrowShard(Path(path))  # one per process: kept open while its rows are read in order


def read_image(image: SourceImage) -> bytes:
    """The encoded bytes of one source image."""
    if image.row is None:
        return Path(image.path).read_bytes()
    cell = _arrow_shard(image.path).image_cell(image.row)
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return cell["bytes"]
        if cell.get("path"):
            return (Path(image.path).parent / cell["path"]).read_bytes()
    if isinstance(cell, bytes):
        return cell
    raise DataError(f"{image}: the image cell holds no encoded image")


def _class_folders(root: Path, folders: list[str]) -> Source:
    _check_distinct(root, folders)
    walk, images, labels = _TreeWalk(root), [], []
    for folder in folders:
        for name in walk.images_under(root / folder):
            images.append(SourceImage(str(root / folder / name)))
            labels.append(folder)
    return Source(tuple(images), tuple(labels), tuple(folders))


def _labels_file(root: Path, path: Path) -> Source:
    """`filename,label` lines as `read_labels_file` reads them, the labels kept as written."""
    rows: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(_labels_text(path).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        filename, sep, label = line.rpartition(",")
        filename, label = filename.strip(), label.strip()
        if not sep or not filename or not label:
            raise DataError(f"{path}:{number}: expected 'filename,label', got {line!r}")
        if number == 1 and (filename, label) == ("filename", "label"):
            continue
        earlier = rows.setdefault(filename, (number, label))
        if earlier[1] != label:
            raise DataError(f"{path}:{number}: {filename} is labelled {label} here but {earlier[1]} on line "
                            f"{earlier[0]}; give each file one label")
    images = tuple(SourceImage(str(root / name)) for name in rows)
    return Source(images, tuple(label for _, label in rows.values()))


def _arrow(path: str) -> Source:
    images, labels, declared = [], [], None
    for file in arrow_files(path):
        shard = ArrowShard(file)
        names = shard.schema().names
        for column in (IMAGE_COLUMN, LABEL_COLUMN):
            if column not in names:
                raise DataError(f"{file} has no {column!r} column (its columns: {', '.join(names)})")
        stored = _stored_label_names(shard.schema())
        if declared is not None and stored is not None and tuple(stored) != declared:
            raise DataError(f"{file} names its classes differently from the files before it; write one "
                            "dataset at a time")
        declared = tuple(stored) if stored is not None else declared
        for row, value in enumerate(shard.column(LABEL_COLUMN)):
            if value is None or (isinstance(value, int) and value < 0):
                raise DataError(f"{file} row {row}: no label ({value}); an unlabelled split cannot be "
                                "written as labelled shards")
            images.append(SourceImage(str(file), row))
            labels.append(value)
        shard.close()
    return Source(tuple(images), tuple(labels), declared)


def read_source(src: str | os.PathLike, labels_file: str | os.PathLike | None = None) -> Source:
    """The images and labels of the dataset at `src` (every layout `create_dataset` reads but shards).

    Raises DataError for a missing path, a layout without labels, or no images."""
    text = os.fspath(src)
    path = Path(text)
    if is_shard_spec(text):
        raise DataError(f"{text} is webdataset shards already; give the images (class folders, labels.csv, "
                        "a Hugging Face dataset or parquet)")
    if any(ch in text for ch in "*?[") and not path.exists():
        source = _arrow(text)
    elif not path.exists():
        raise DataError(f"data path {path} does not exist")
    elif labels_file is not None and not Path(labels_file).is_file():
        raise DataError(f"labels file {labels_file} does not exist")
    elif path.is_file():
        if path.suffix == ".parquet":
            source = _arrow(text)
        elif labels_file is None:
            source = _labels_file(path.parent, path)
        else:
            raise DataError(f"data path {path} is a file; pass the folder of images with --labels "
                            f"{labels_file}")
    elif labels_file is not None:
        source = _labels_file(path, Path(labels_file))
    elif find_arrow_files(path):
        source = _arrow(text)
    else:
        folders = sorted(entry.name for entry in os.scandir(path)
                         if entry.is_dir() and not entry.name.startswith("."))
        label_files = [path / name for name in LABEL_FILE_NAMES if (path / name).is_file()]
        if folders:
            source = _class_folders(path, folders)
        elif label_files:
            source = _labels_file(path, label_files[0])
        elif any(_is_image(entry.name) for entry in os.scandir(path)):
            raise DataError(f"{path} holds images but no labels: add {LABEL_FILE_NAMES[0]} "
                            "('filename,label' lines) or put the images in one folder per class")
        else:
            source = Source((), ())
    if not source.images:
        raise DataError(f"no images found in {text}: expected one folder per class, a folder with "
                        "labels.csv, or Hugging Face dataset files")
    return source
