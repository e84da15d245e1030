"""Labelled image datasets for evaluation: class folders, a flat folder with a labels file, and (in `hf.py`)
Hugging Face `datasets` on disk or parquet shards.

Labels are the model's class indices. Folders and labels named by WordNet synset (`n01440764`) map to the
ImageNet-1k index of that synset, so a subset of the classes (ImageNet-V2/-R/-A style, or a handful of
folders) evaluates correctly. The base dataset and label parsing are in `image_dataset.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .hf import arrow_dataset, find_arrow_files
from .image_dataset import ImageDataset, resolve_label
from .imagenet import NUM_CLASSES, is_synset

if TYPE_CHECKING:
    from PIL import Image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm",
                              ".pgm", ".pbm"})
LABEL_FILE_NAMES = ("labels.csv", "labels.txt")


class FileListDataset(ImageDataset):
    """Image files with their labels; paths relative to `root`."""

    def __init__(self, root: str | os.PathLike, files: Sequence[str], labels: Sequence[int],
                 transform: Callable | None = None):
        super().__init__(labels, transform)
        self.root = Path(root)
        self.files = list(files)

    def _open(self, index: int) -> Image.Image:
        from PIL import Image

        return Image.open(self.root / self.files[index])

    def name(self, index: int) -> str:
        return str(self.root / self.files[index])


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def images_under(folder: Path) -> list[str]:
    """Image files anywhere under `folder`, as sorted paths relative to it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        rel = os.path.relpath(dirpath, folder)
        found += [name if rel == "." else os.path.join(rel, name)
                  for name in sorted(filenames) if _is_image(name)]
    return found


def class_indices(folder_names: Sequence[str], num_classes: int) -> dict[str, int]:
    """Class folder name -> model class index.

    Synset-named folders take their ImageNet-1k index; folders named by integers take that index; other
    names take their sorted position (a plain ImageFolder for a model trained on those folders).
    """
    names = sorted(folder_names)
    if all(is_synset(name) for name in names):
        return {name: resolve_label(name, num_classes, f"class folder {name}") for name in names}
    if all(name.isdigit() for name in names):
        return {name: resolve_label(name, num_classes, f"class folder {name}") for name in names}
    if num_classes == NUM_CLASSES:
        odd = next(name for name in names if not is_synset(name) and not name.isdigit())
        raise DataError(f"class folder {odd!r} is not named by ImageNet synset id (e.g. n01440764) or "
                        "class index, so it cannot be matched to the model's ImageNet-1k classes; "
                        "rename the folders")
    if len(names) > num_classes:
        raise DataError(f"{len(names)} class folders, but the model has only {num_classes} classes")
    return {name: index for index, name in enumerate(names)}


def image_folder(root: str | os.PathLike, num_classes: int,
                 transform: Callable | None = None) -> FileListDataset:
    """An ImageFolder-style tree: one folder per class, images anywhere below it."""
    root = Path(root)
    folders = sorted(entry.name for entry in os.scandir(root)
                     if entry.is_dir() and not entry.name.startswith("."))
    mapping = class_indices(folders, num_classes)
    files, labels = [], []
    for folder in folders:
        for name in images_under(root / folder):
            files.append(os.path.join(folder, name))
            labels.append(mapping[folder])
    return FileListDataset(root, files, labels, transform)


def read_labels_file(path: str | os.PathLike, num_classes: int) -> tuple[list[str], list[int]]:
    """`filename,label` lines (label as class index or synset; '#' comments, blank lines and a
    `filename,label` header are ignored) -> (filenames, class indices)."""
    files, labels = [], []
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
        labels.append(resolve_label(label, num_classes, f"{path}:{number}"))
    return files, labels


def labelled_files(root: str | os.PathLike, labels_file: str | os.PathLike, num_classes: int,
                   transform: Callable | None = None) -> FileListDataset:
    """A flat folder of images whose labels are listed in `labels_file` (paths relative to `root`)."""
    files, labels = read_labels_file(labels_file, num_classes)
    return FileListDataset(root, files, labels, transform)


def create_dataset(path: str | os.PathLike, num_classes: int = NUM_CLASSES,
                   labels_file: str | os.PathLike | None = None,
                   transform: Callable | None = None) -> ImageDataset:
    """The labelled dataset at `path`, recognised by its layout.

    - a folder of class folders (ImageFolder);
    - a folder of images with `labels.csv`/`labels.txt` in it or `labels_file` given, or a labels file itself
      (filenames relative to its folder);
    - a Hugging Face `datasets` folder (`save_to_disk`), parquet shards (a folder of them, a file, or a
      glob such as `data/validation-*.parquet`): `image` and `label` columns; needs `pyarrow`.

    Raises DataError for a missing or empty path, or a label outside the model's `num_classes` classes.
    """
    text = os.fspath(path)
    path = Path(text)
    if any(ch in text for ch in "*?[") and not path.exists():
        return arrow_dataset(text, num_classes, transform)
    if not path.exists():
        raise DataError(f"data path {path} does not exist")
    if labels_file is not None and not Path(labels_file).is_file():
        raise DataError(f"labels file {labels_file} does not exist")
    if path.is_file():
        if path.suffix == ".parquet":
            return arrow_dataset(text, num_classes, transform)
        if labels_file is None:
            return _non_empty(labelled_files(path.parent, path, num_classes, transform), path)
        raise DataError(f"data path {path} is a file; pass the folder of images with --labels {labels_file}")
    if labels_file is not None:
        return _non_empty(labelled_files(path, labels_file, num_classes, transform), path)
    if find_arrow_files(path):
        return arrow_dataset(text, num_classes, transform)
    has_class_folders = any(entry.is_dir() and not entry.name.startswith(".") for entry in os.scandir(path))
    if has_class_folders:
        return _non_empty(image_folder(path, num_classes, transform), path)
    for name in LABEL_FILE_NAMES:
        if (path / name).is_file():
            return _non_empty(labelled_files(path, path / name, num_classes, transform), path)
    if any(_is_image(entry.name) for entry in os.scandir(path)):
        raise DataError(f"{path} holds images but no labels: add {LABEL_FILE_NAMES[0]} "
                        "('filename,label' lines) or put the images in one folder per class")
    return _non_empty(FileListDataset(path, [], []), path)


def _non_empty(dataset: ImageDataset, path: Path) -> ImageDataset:
    if len(dataset) == 0:
        raise DataError(f"no images found in {path}: expected one folder per class (named by synset, e.g. "
                        "n01440764), a folder with labels.csv, or Hugging Face dataset files")
    return dataset
