"""Reading a folder as a named evaluation set: its layout checked, its label rule's inputs prepared.

A folder that does not have the layout the set is distributed in is refused in one line that names what was
expected and, where the folder looks like another set, which `--eval-set` it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .datasets import LABEL_FILE_NAMES, FileListDataset, create_dataset, image_folder, images_under
from .eval_sets import (
    ANY_LAYOUT,
    EVAL_SETS,
    INDEX_FOLDERS,
    REAL,
    REAL_IMAGE_NAME,
    SYNSET_FOLDERS,
    VAL_FILENAMES,
    EvalSet,
    real_labels,
    set_classes,
)
from .hf import find_arrow_files
from .image_dataset import ImageDataset
from .imagenet import NUM_CLASSES, imagenet_synsets, is_synset
from .labels import ModelClasses

UNKNOWN_LABEL = -1  # a ReaL image whose original ImageNet class the layout does not give


@dataclass(frozen=True)
class EvalData:
    """A named set read from disk: the images, and what its label rule needs.

    `class_subset`: the model classes the logits are restricted to (ImageNet-A/-R), else None.
    `label_sets`: per dataset item, the classes that count as a hit (ReaL), else None (the item's label).
    `skipped`: images left out by the label rule (ReaL: an empty label set).
    """

    dataset: ImageDataset
    class_subset: tuple[int, ...] | None = None
    label_sets: tuple[tuple[int, ...], ...] | None = None
    skipped: int = 0


def _class_folders(path: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(path)
                  if entry.is_dir() and not entry.name.startswith("."))


def _describe(path: Path) -> str:
    """What a data path looks like, for a refusal."""
    if not path.is_dir():
        return "a file"
    if find_arrow_files(path):
        return "Hugging Face dataset files"
    folders = _class_folders(path)
    if not folders:
        return "no class folders"
    if all(is_synset(name) for name in folders):
        return "synset folders"
    if all(name.isdigit() for name in folders):
        return "folders named by class index"
    odd = next(name for name in folders if not is_synset(name) and not name.isdigit())
    return f"a folder named {odd!r}"


def _check_folder_variant(record: EvalSet, path: Path) -> None:
    """Refuse another variant's folder, where the archives' folder names tell variants apart (ImageNet-V2)."""
    other = next((s for s in EVAL_SETS.values() if s.folder_name == path.name and s is not record), None)
    if other is not None and record.folder_name is not None:
        raise DataError(f"{path} is the folder of {other.title}, not {record.title}: "
                        f"use --eval-set {other.name}")


# A class-folder layout: what `_describe` says of it, how a refusal names it, and the set to suggest for a
# folder of the other kind.
_FOLDER_LAYOUTS = {
    INDEX_FOLDERS: ("folders named by class index", f"class folders named 0..{NUM_CLASSES - 1}",
                    {"synset folders": "imagenet"}),
    SYNSET_FOLDERS: ("synset folders", "class folders named by synset (n01440764, ...)",
                     {"folders named by class index": "imagenet-v2"}),
}


def _class_folders_set(record: EvalSet, path: Path, num_classes: int, labels_file) -> EvalData:
    if labels_file is not None:
        raise DataError(f"{record.name} is labelled by its class folders; drop the labels file {labels_file}")
    wanted, expected, suggestions = _FOLDER_LAYOUTS[record.layout]
    found = _describe(path)
    if found != wanted:
        hint = f": use --eval-set {suggestions[found]}" if found in suggestions else ""
        raise DataError(f"{record.name} expects {expected}; found {found} in {path}{hint}")
    _check_folder_variant(record, path)
    classes = set_classes(record.name)
    if classes is not None:
        allowed = {imagenet_synsets()[index] for index in classes}
        outside = [name for name in _class_folders(path) if name not in allowed]
        if outside:
            raise DataError(f"{record.name} expects only its {len(classes)} classes; class folder "
                            f"{outside[0]} is not one of them ({len(outside)} such): "
                            "use --eval-set imagenet or imagenet-sketch")
    return EvalData(_non_empty(image_folder(path, num_classes), record, path))


def _val_filenames(record: EvalSet, path: Path, num_classes: int, labels_file) -> EvalData:
    if (path.is_dir() and find_arrow_files(path)) or path.suffix == ".parquet" or _is_glob(path):
        raise DataError(f"{record.name} expects the ImageNet val image files (ILSVRC2012_val_00000001.JPEG, "
                        f"...); found Hugging Face dataset files at {path}: unpack the images, or use "
                        "--eval-set imagenet")
    unlabelled = (path.is_dir() and labels_file is None and not _class_folders(path)
                  and not any((path / name).is_file() for name in LABEL_FILE_NAMES))
    if unlabelled:  # the val archive as it unpacks: a flat folder, the ImageNet classes not needed
        files = images_under(path)
        dataset = FileListDataset(path, files, [UNKNOWN_LABEL] * len(files))
    else:
        dataset = create_dataset(path, num_classes, labels_file)
    _non_empty(dataset, record, path)
    labels = real_labels()
    files, targets, sets, skipped = [], [], [], 0
    for file, label in zip(dataset.files, dataset.labels, strict=True):
        match = REAL_IMAGE_NAME.fullmatch(Path(file).name)
        number = int(match.group(1)) if match else 0
        if not 1 <= number <= len(labels):
            raise DataError(f"{record.name} expects the ImageNet val images, named "
                            f"ILSVRC2012_val_NNNNNNNN.JPEG (00000001..{len(labels):08d}); found "
                            f"{Path(file).name} in {path}: use --eval-set imagenet")
        accepted = labels[number - 1]
        if not accepted:
            skipped += 1
            continue
        files.append(file)
        targets.append(label)
        sets.append(accepted)
    if not files:
        raise DataError(f"none of the {skipped} images in {path} has a ReaL label")
    return EvalData(FileListDataset(dataset.root, files, targets), label_sets=tuple(sets), skipped=skipped)


def _is_glob(path: Path) -> bool:
    return any(ch in str(path) for ch in "*?[")


def _non_empty(dataset: ImageDataset, record: EvalSet, path: Path) -> ImageDataset:
    if len(dataset) == 0:
        raise DataError(f"no images found in {path} ({record.title} expected)")
    return dataset


_LAYOUTS: dict[str, Callable[..., EvalData]] = {
    INDEX_FOLDERS: _class_folders_set,
    SYNSET_FOLDERS: _class_folders_set,
    VAL_FILENAMES: _val_filenames,
}


def load_eval_data(record: EvalSet | None, path: str | os.PathLike, classes: ModelClasses | int,
                   labels_file: str | os.PathLike | None = None, class_subset: bool = True) -> EvalData:
    """The images at `path` read as the set `record` (None: any labelled images, as `create_dataset` reads
    them), with the inputs of its label rule, labelled for the model's `classes` (or class count).
    `class_subset=False` keeps all 1000 classes of a subset set.

    Raises DataError for a missing path or a layout that is not the set's."""
    if not isinstance(classes, ModelClasses):
        classes = ModelClasses.default(classes)
    num_classes = classes.num_classes
    if record is None or record.layout == ANY_LAYOUT:
        return EvalData(create_dataset(path, labels_file=labels_file, classes=classes))
    path = Path(path)
    if not path.exists() and not _is_glob(path):
        raise DataError(f"data path {path} does not exist")
    data = _LAYOUTS[record.layout](record, path, num_classes, labels_file)
    if record.label_rule != REAL and class_subset and set_classes(record.name) is not None:
        data = EvalData(data.dataset, class_subset=set_classes(record.name))
    return data
