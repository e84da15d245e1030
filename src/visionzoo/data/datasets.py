"""Labelled image datasets: class folders, a flat folder with a labels file, and (in `hf.py`) Hugging Face
`datasets` on disk or parquet shards, and (in `shards/`) webdataset shards.

Labels are the model's class indices, matched by name to the model's classes (`labels.py`): a folder named
by WordNet synset (`n01440764`) maps to that class of an ImageNet model, a folder `eight` to the class a
fine-tune named so, so a subset of the classes (ImageNet-V2/-R/-A style, or a handful of folders) evaluates
correctly. Training a new head takes its classes from the data instead. The base dataset is in
`image_dataset.py`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .hf import arrow_dataset, find_arrow_files
from .image_dataset import ImageDataset
from .imagenet import NUM_CLASSES
from .labels import ModelClasses, is_index, match_labels
from .shards.dataset import shard_dataset
from .shards.spec import is_shard_spec

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

        return Image.open(self._regular_file(index))

    def encoded(self, index: int) -> bytes:
        return self._regular_file(index).read_bytes()

    def _regular_file(self, index: int) -> Path:
        path = self.root / self.files[index]
        if path.exists() and not path.is_file():  # a FIFO or device would block or never end
            raise DataError(f"{path} is not a regular file")
        return path

    def name(self, index: int) -> str:
        return str(self.root / self.files[index])


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


class _TreeWalk:
    """Lists the image files under a dataset's root, each once, counted where it really lives.

    Symbolic links are followed where they lead out of the tree (class folders kept on other disks); a link
    back into the tree is not followed, since what it points at is counted in its own place (and a link to a
    folder above it would loop). Only regular files are listed (a FIFO named `x.jpg` would block the reader
    forever); a broken link is listed, as an unreadable image that is reported as such.
    """

    def __init__(self, root: Path):
        self.root = os.path.realpath(root)
        self.seen_folders: set[tuple[int, int]] = set()
        self.seen_files: set[tuple[int, int]] = set()

    def _leads_back_in(self, path: str) -> bool:
        if not os.path.islink(path):
            return False
        target = os.path.realpath(path)
        return target == self.root or target.startswith(self.root + os.sep)

    def images_under(self, folder: Path) -> list[str]:
        """Image files anywhere under `folder`, as sorted paths relative to it."""
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            here = os.stat(dirpath)
            if (here.st_dev, here.st_ino) in self.seen_folders:
                dirnames[:] = []
                continue
            self.seen_folders.add((here.st_dev, here.st_ino))
            dirnames[:] = sorted(d for d in dirnames if not self._leads_back_in(os.path.join(dirpath, d)))
            rel = os.path.relpath(dirpath, folder)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if _is_image(name) and not self._leads_back_in(path) and self._new_regular_file(path):
                    found.append(name if rel == "." else os.path.join(rel, name))
        return found

    def _new_regular_file(self, path: str) -> bool:
        try:
            info = os.stat(path)
        except OSError:  # a broken link: listed, and reported unreadable when read
            return True
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) in self.seen_files:
            return False
        self.seen_files.add((info.st_dev, info.st_ino))
        return True


def images_under(folder: Path) -> list[str]:
    """Image files anywhere under `folder`, each once, as sorted paths relative to it (see `_TreeWalk`)."""
    return _TreeWalk(folder).images_under(folder)


def _as_classes(classes: ModelClasses | int) -> ModelClasses:
    return classes if isinstance(classes, ModelClasses) else ModelClasses.default(classes)


def image_folder(root: str | os.PathLike, classes: ModelClasses | int,
                 transform: Callable | None = None) -> FileListDataset:
    """An ImageFolder-style tree: one folder per class, images anywhere below it, the folders matched to
    `classes` (a model's classes, or its class count) by name."""
    root = Path(root)
    folders = sorted(entry.name for entry in os.scandir(root)
                     if entry.is_dir() and not entry.name.startswith("."))
    _check_distinct(root, folders)
    files, names = [], []
    walk = _TreeWalk(root)
    for folder in folders:
        for name in walk.images_under(root / folder):
            files.append(os.path.join(folder, name))
            names.append(folder)
    labels, class_names = match_labels(names, _as_classes(classes), lambda i: f"class folder {names[i]}",
                                       declared=folders, source=str(root))
    return FileListDataset(root, files, labels, transform, class_names)


def _check_distinct(root: Path, folders: Sequence[str]) -> None:
    """Two class folders that are one folder (a link) would put every image in both classes."""
    first: dict[tuple[int, int], str] = {}
    for folder in folders:
        info = os.stat(root / folder)
        other = first.setdefault((info.st_dev, info.st_ino), folder)
        if other != folder:
            raise DataError(f"class folders {other} and {folder} in {root} are the same folder (a link); "
                            "keep one")


def read_labels_file(path: str | os.PathLike, classes: ModelClasses | int) -> tuple[list[str], list[int]]:
    """`filename,label` lines (label as class name, class index or synset; '#' comments, blank lines and a
    `filename,label` header are ignored) -> (filenames, class indices of the model's `classes`, or of a
    model of that many classes).

    The file is UTF-8 (a byte-order mark, as Excel writes, is fine). A file listed twice with the same label
    counts once; with two labels it is a DataError naming both lines.
    """
    files, labels, _ = _read_labels_file(path, classes)
    return files, labels


def _read_labels_file(path: str | os.PathLike,
                      classes: ModelClasses | int) -> tuple[list[str], list[int], tuple[str, ...] | None]:
    """`read_labels_file`, and the class names the indices stand for."""
    files, labels, lines, first_line = [], [], [], {}
    for number, line in enumerate(_labels_text(Path(path)).splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        filename, sep, label = line.rpartition(",")
        filename = filename.strip()
        if not sep or not filename:
            raise DataError(f"{path}:{number}: expected 'filename,label', got {line!r}")
        if number == 1 and (filename, label.strip()) == ("filename", "label"):
            continue
        label = label.strip()
        if filename in first_line:
            earlier, earlier_label = first_line[filename]
            if _same_label(earlier_label) != _same_label(label):
                raise DataError(f"{path}:{number}: {filename} is labelled {label} here but "
                                f"{earlier_label} on line {earlier}; give each file one label")
            continue
        first_line[filename] = (number, label)
        files.append(filename)
        labels.append(label)
        lines.append(number)
    indices, class_names = match_labels(labels, _as_classes(classes), lambda i: f"{path}:{lines[i]}",
                                        source=str(path))
    return files, indices, class_names


def _labels_text(path: Path) -> str:
    if _is_image(path.name):
        raise DataError(f"labels file {path} is an image; the labels file lists 'filename,label' lines")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"labels file {path} is not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                        f"{error.start}); save it as UTF-8 (CSV UTF-8 in Excel)") from None


def _same_label(label: str) -> str:
    return str(int(label)) if is_index(label) else label  # '05' and '5' are one class index


def labelled_files(root: str | os.PathLike, labels_file: str | os.PathLike, classes: ModelClasses | int,
                   transform: Callable | None = None) -> FileListDataset:
    """A flat folder of images whose labels are listed in `labels_file` (paths relative to `root`)."""
    files, labels, class_names = _read_labels_file(labels_file, classes)
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
      glob such as `data/validation-*.parquet`): `image` and `label` columns; needs `pyarrow`;
    - webdataset shards (`{key}.jpg` + `{key}.cls`), local or URLs: a brace pattern such as
      `shards/train-{000000..000127}.tar`, a list file, a folder of `.tar` or a shard index (`shards/`).

    Raises DataError for a missing or empty path, or a label that is not one of the model's classes.
    """
    classes = classes if classes is not None else ModelClasses.default(num_classes)
    text = os.fspath(path)
    if is_shard_spec(text):
        if labels_file is not None:
            raise DataError(f"{text} holds webdataset shards, whose labels are in the shards; drop the "
                            "labels file")
        return shard_dataset(text, classes, transform)
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
        raise DataError(f"data path {path} is a file; give the folder of its images, with the labels file "
                        f"{labels_file}")
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
