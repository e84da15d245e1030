"""Labelled image datasets: class folders, a flat folder with a labels file, and (in `hf.py`) Hugging Face
`datasets` on disk or parquet shards.

Labels are the model's class indices, matched by name to the model's classes (`labels.py`): a folder named
by WordNet synset (`n01440764`) maps to that class of an ImageNet model, a folder `eight` to the class a
fine-tune named so, so a subset of the classes (ImageNet-V2/-R/-A style, or a handful of folders) evaluates
correctly. Training a new head takes its classes from the data instead. The base dataset is in
`image_dataset.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .hf import arrow_dataset, find_arrow_files
from .image_dataset import ImageDataset
from .imagenet import NUM_CLASSES
from .labels import ModelClasses, match_labels

if TYPE_CHECKING:
    from PIL import Image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm",
                              ".pgm", ".pbm"})
LABEL_FILE_NAMES = ("labels.csv", "labels.txt")


class FileListDataset(ImageDataset):
    """Image files with their labels; paths relative to `root`."""

    def __init__(self, root: str | os.PathLike, files: Sequence[str], labels: Sequence[int],
                 transform: Callable | None = None, classes: Sequence[str] | None = None):
        super().__init__(labels, transform, classes)
        self.root = Path(root)
        self.files = list(files)

    def _open(self, index: int) -> Image.Image:
        from PIL import Image

        return Image.open(self.root / self.files[index])

    def name(self, index: int) -> str:
        return str(self.root / self.files[index])


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _images_under(folder: Path) -> list[str]:
    """Image files anywhere under `folder`, as sorted paths relative to it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        rel = os.path.relpath(dirpath, folder)
        found += [name if rel == "." else os.path.join(rel, name)
                  for name in sorted(filenames) if _is_image(name)]
    return found


def image_folder(root: str | os.PathLike, classes: ModelClasses,
                 transform: Callable | None = None) -> FileListDataset:
    """An ImageFolder-style tree: one folder per class, images anywhere below it."""
    root = Path(root)
    folders = sorted(entry.name for entry in os.scandir(root)
                     if entry.is_dir() and not entry.name.startswith("."))
    files, names = [], []
    for folder in folders:
        for name in _images_under(root / folder):
            files.append(os.path.join(folder, name))
            names.append(folder)
    labels, class_names = match_labels(names, classes, lambda i: f"class folder {names[i]}", declared=folders,
                                       source=str(root))
    return FileListDataset(root, files, labels, transform, class_names)


def read_labels_file(path: str | os.PathLike,
                     classes: ModelClasses | int) -> tuple[list[str], list[int], tuple[str, ...] | None]:
    """`filename,label` lines (label as class name, class index or synset; '#' comments, blank lines and a
    `filename,label` header are ignored) -> (filenames, class indices, the class names they stand for)."""
    if isinstance(classes, int):
        classes = ModelClasses.default(classes)
    files, labels, lines = [], [], []
    text = Path(path).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        filename, sep, label = line.rpartition(",")
        if not sep or not filename.strip():
            raise DataError(f"{path}:{number}: expected 'filename,label', got {line!r}")
        if number == 1 and (filename.strip(), label.strip()) == ("filename", "label"):
            continue
        files.append(filename.strip())
        labels.append(label.strip())
        lines.append(number)
    indices, class_names = match_labels(labels, classes, lambda i: f"{path}:{lines[i]}", source=str(path))
    return files, indices, class_names


def labelled_files(root: str | os.PathLike, labels_file: str | os.PathLike, classes: ModelClasses,
                   transform: Callable | None = None) -> FileListDataset:
    """A flat folder of images whose labels are listed in `labels_file` (paths relative to `root`)."""
    files, labels, class_names = read_labels_file(labels_file, classes)
    return FileListDataset(root, files, labels, transform, class_names)


def create_dataset(path: str | os.PathLike, num_classes: int = NUM_CLASSES,
                   labels_file: str | os.PathLike | None = None,
                   transform: Callable | None = None, classes: ModelClasses | None = None) -> ImageDataset:
    """The labelled dataset at `path`, recognised by its layout, its labels matched to the model's classes:
    `classes` (see `visionzoo.data.labels`), by default `num_classes` classes, ImageNet-1k's for 1000.
    The dataset's `classes` are the class names its label indices stand for (None: unnamed indices).

    - a folder of class folders (ImageFolder);
    - a folder of images with `labels.csv`/`labels.txt` in it or `labels_file` given, or a labels file itself
      (filenames relative to its folder);
    - a Hugging Face `datasets` folder (`save_to_disk`), parquet shards (a folder of them, a file, or a
      glob such as `data/validation-*.parquet`): `image` and `label` columns; needs `pyarrow`.

    Raises DataError for a missing or empty path, or a label that is not one of the model's classes.
    """
    classes = classes if classes is not None else ModelClasses.default(num_classes)
    text = os.fspath(path)
    path = Path(text)
    if any(ch in text for ch in "*?[") and not path.exists():
        return arrow_dataset(text, classes, transform)
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if labels_file is not None and not Path(labels_file).is_file():
        raise DataError(f"labels file {labels_file} does not exist")
    if path.is_file():
        if path.suffix == ".parquet":
            return arrow_dataset(text, classes, transform)
        if labels_file is None:
            return _non_empty(labelled_files(path.parent, path, classes, transform), path)
        raise DataError(f"data path {path} is a file; pass the folder of images with --labels {labels_file}")
    if labels_file is not None:
        return _non_empty(labelled_files(path, labels_file, classes, transform), path)
    if find_arrow_files(path):
        return arrow_dataset(text, classes, transform)
    has_class_folders = any(entry.is_dir() and not entry.name.startswith(".") for entry in os.scandir(path))
    if has_class_folders:
        return _non_empty(image_folder(path, classes, transform), path)
    for name in LABEL_FILE_NAMES:
        if (path / name).is_file():
            return _non_empty(labelled_files(path, path / name, classes, transform), path)
    if any(_is_image(entry.name) for entry in os.scandir(path)):
        raise DataError(f"{path} holds images but no labels: add {LABEL_FILE_NAMES[0]} "
                        "('filename,label' lines) or put the images in one folder per class")
    return _non_empty(FileListDataset(path, [], []), path)


def _non_empty(dataset: ImageDataset, path: Path) -> ImageDataset:
    if len(dataset) == 0:
        raise DataError(f"no images found in {path}: expected one folder per class (named by synset, e.g. "
                        "n01440764), a folder with labels.csv, or Hugging Face dataset files")
    return dataset
