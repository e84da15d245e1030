"""Matching a dataset's labels to a model's classes, by name.

A dataset labels its images with class folder names, the labels of a labels file, or a Hugging Face
`ClassLabel`; a model's classes have ids in index order where it knows them (its folder's `label_names`, a
fine-tune's class folders, its tag's label space: synsets for ImageNet). A label is matched:

1. by name, to the model's class of that id (so any subset of the classes, in any order, evaluates right);
2. else, if it is an integer (`3`, a folder `003`), as that class index;
3. else, only for a model whose classes have no names (a bare checkpoint): class folders in sorted order
   (the ImageFolder convention), and only when there are as many as the model has classes, since a subset
   could not be placed.

Anything else is an error that names the label and the model's classes: a label is never silently read as
another class. When training a new head, the classes come from the data instead (`ModelClasses.from_data`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import DataError
from .imagenet import NUM_CLASSES, imagenet_synsets, is_synset

Label = str | int


def is_index(label: Label) -> bool:
    """True for a class index: an int, or a string of digits."""
    if isinstance(label, bool):
        return False
    return isinstance(label, int) or (isinstance(label, str) and label.strip().isdigit())


def _shown(names: Sequence[str], limit: int = 6) -> str:
    head = ", ".join(names[:limit])
    return head + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


@dataclass(frozen=True)
class ModelClasses:
    """The classes labels are matched against: the model's class count, their ids in index order where
    known, and, with `from_data`, the instruction to take the classes from the data (a new head). `hint`
    ends the message for a label the classes do not have."""

    num_classes: int
    names: tuple[str, ...] | None = None
    from_data: bool = False
    hint: str = "name classes as the model does, or by class index"

    @classmethod
    def default(cls, num_classes: int) -> ModelClasses:
        """A model known only by its class count: 1000 classes are taken as ImageNet-1k's synsets."""
        return cls(num_classes, imagenet_synsets() if num_classes == NUM_CLASSES else None)

    def __post_init__(self):
        if self.names is not None and len(self.names) != self.num_classes:
            raise ValueError(f"{len(self.names)} class names for {self.num_classes} classes")

    def _describe(self) -> str:
        if self.names is not None and self.num_classes == NUM_CLASSES and self.names == imagenet_synsets():
            return "the model's ImageNet-1k classes (named by synset id, e.g. n01440764)"
        return f"the model's {self.num_classes} classes ({_shown(self.names)})"


def discover_classes(labels: Sequence[Label], declared: Sequence[str] | None,
                     num_classes: int, where: str) -> tuple[str, ...] | None:
    """The class list a new head is trained on: the data's own names (`declared`, e.g. the sorted class
    folders or a ClassLabel's names; else the sorted distinct labels), or None when every label is a class
    index. DataError if the data names another number of classes than the head has."""
    if all(is_index(label) for label in (declared if declared is not None else labels)):
        return None
    names = tuple(declared) if declared is not None else tuple(sorted({str(lab).strip() for lab in labels}))
    if len(names) != num_classes:
        raise DataError(f"{where} has {len(names)} classes ({_shown(names)}), but the model's head has "
                        f"{num_classes}; give it {len(names)} classes (--num-classes {len(names)})")
    return names


def _positions(labels: Sequence[Label], declared: Sequence[str] | None) -> dict[str, int]:
    """Where a model's classes have no names: the data's named classes by position, in the order the data
    declares them (sorted class folders, an index's class list), else sorted."""
    named = declared if declared is not None else sorted({str(lab).strip() for lab in labels
                                                          if not is_index(lab)})
    return {name: i for i, name in enumerate(named)}


def label_indices(labels: Sequence[Label], classes: ModelClasses, where: Callable[[int], str],
                  declared: Sequence[str] | None = None) -> list[int]:
    """The model class index of each label (see the module docstring); DataError naming the first label
    that cannot be matched, with `where(i)` saying where label i comes from. `declared` is the data's own
    class list, where it has one."""
    positions = _positions(labels, declared) if classes.names is None else {}
    by_name = {name: i for i, name in enumerate(classes.names or ())}
    resolved: dict[Label, int] = {}
    indices = []
    for item, label in enumerate(labels):
        if label not in resolved:
            resolved[label] = _resolve(label, classes, by_name, positions, functools.partial(where, item))
        indices.append(resolved[label])
    return indices


def _resolve(label: Label, classes: ModelClasses, by_name: dict[str, int], positions: dict[str, int],
             where: Callable[[], str]) -> int:
    text = label.strip() if isinstance(label, str) else label
    if isinstance(text, str) and text in by_name:
        return by_name[text]
    if is_index(text):
        index = int(text)
        if not 0 <= index < classes.num_classes:
            raise DataError(f"{where()}: label {index} is outside the model's classes "
                            f"0..{classes.num_classes - 1}")
        return index
    if classes.names is not None:
        raise DataError(f"{where()}: label {text!r} is not one of {classes._describe()}; {classes.hint}")
    if is_synset(text):
        raise DataError(f"{where()}: label {text} is an ImageNet synset, but the model's "
                        f"{classes.num_classes} classes are not ImageNet's; give class indices instead")
    if text not in positions or len(positions) != classes.num_classes:
        raise DataError(
            f"{where()}: label {text!r} cannot be matched: the model's {classes.num_classes} classes have no "
            "names (a checkpoint without its model folder), so named classes are placed in sorted order only "
            f"when all {classes.num_classes} are present ({len(positions)} are); load the model folder or "
            "name the classes by index")
    return positions[text]


def match_labels(labels: Sequence[Label], classes: ModelClasses, where: Callable[[int], str],
                 declared: Sequence[str] | None = None,
                 source: str = "the data") -> tuple[list[int], tuple[str, ...] | None]:
    """(class index per label, the class names the indices stand for): against the model's classes, or,
    for `classes.from_data`, against the classes the data declares (`declared`) or holds."""
    if classes.from_data:
        classes = ModelClasses(classes.num_classes, discover_classes(labels, declared, classes.num_classes,
                                                                     source))
    indices = label_indices(labels, classes, where, declared)
    if classes.names is None and not all(is_index(label) for label in labels):
        return indices, tuple(_positions(labels, declared))  # the names the positions stand for
    return indices, classes.names
