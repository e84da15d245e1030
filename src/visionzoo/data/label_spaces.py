"""Label spaces: the classes a classifier's outputs stand for, as data.

Every published weight names its label space in the tag data (`label_space = "imagenet-12k"`); a model
folder or fine-tuned run carries its own label names instead. The lists ship in `label_spaces/` (one synset id
per line, in class-index order) with `wordnet_names.tsv` for their names; `label_spaces/SOURCES.md` states
where each comes from. ImageNet-1k is read from `imagenet1k_classes.tsv` (see `visionzoo.data.imagenet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..errors import UserError
from .imagenet import imagenet_class_names, imagenet_synsets

if TYPE_CHECKING:
    from ..pretrained_cfg import PretrainedCfg


@dataclass(frozen=True)
class LabelSpace:
    """A named set of classes in index order: `synsets()` are their WordNet ids, `names()` their names."""

    name: str
    num_classes: int
    description: str

    def synsets(self) -> tuple[str, ...]:
        return _synsets(self.name)

    def names(self) -> tuple[str, ...]:
        return _names(self.name)

    @property
    def is_imagenet_1k(self) -> bool:
        return self.name == IMAGENET_1K


IMAGENET_1K = "imagenet-1k"
LABEL_SPACES = {space.name: space for space in (
    LabelSpace(IMAGENET_1K, 1000, "ImageNet-1k (ILSVRC 2012)"),
    LabelSpace("imagenet-12k", 11821, "ImageNet-12k, the 11,821-class subset of ImageNet-21k (fall 2011)"),
    LabelSpace("imagenet-22k", 21841, "ImageNet-22k, every class of ImageNet-21k (fall 2011)"),
    LabelSpace("imagenet-21k-miil", 11221, "ImageNet-21K-P (winter 2021, Alibaba-MIIL)"),
)}


def get_label_space(name: str) -> LabelSpace:
    """The label space called `name`; UserError listing the known ones."""
    if name not in LABEL_SPACES:
        raise UserError(f"unknown label space {name!r}; known: {', '.join(LABEL_SPACES)}")
    return LABEL_SPACES[name]


def _read(filename: str) -> str:
    return resources.files("visionzoo.data").joinpath("label_spaces", filename).read_text(encoding="utf-8")


@cache
def _synsets(name: str) -> tuple[str, ...]:
    if name == IMAGENET_1K:
        return imagenet_synsets()
    synsets = tuple(line for line in _read(f"{name}.txt").splitlines() if line)
    if len(synsets) != LABEL_SPACES[name].num_classes:
        raise ValueError(f"label space {name}: {len(synsets)} synsets listed, "
                         f"{LABEL_SPACES[name].num_classes} expected")
    return synsets


@cache
def _wordnet_names() -> dict[str, str]:
    return dict(line.split("\t", 1) for line in _read("wordnet_names.tsv").splitlines() if line)


@cache
def _names(name: str) -> tuple[str, ...]:
    if name == IMAGENET_1K:
        return imagenet_class_names()
    names = _wordnet_names()
    return tuple(names[synset] for synset in _synsets(name))


def _space_of_head(cfg: PretrainedCfg) -> LabelSpace | None:
    """The tag's label space, where the head still has that space's size."""
    if cfg.label_space is None:
        return None
    space = get_label_space(cfg.label_space)
    return space if cfg.num_classes == space.num_classes else None


def model_label_ids(cfg: PretrainedCfg) -> tuple[str, ...] | None:
    """The unique ids of a model's classes, in index order, as a dataset's labels are matched against them:
    its own `label_names` (a fine-tune's class folder names), or its label space's synsets. None when
    neither travels with it (a new head of unnamed classes, or no classifier)."""
    if cfg.label_names is not None:
        return cfg.label_names
    space = _space_of_head(cfg)
    return space.synsets() if space is not None else None


def model_label_names(cfg: PretrainedCfg) -> tuple[str, ...] | None:
    """The names of a model's classes, in index order, as they are shown to a person: its own
    `label_descriptions` or `label_names`, or its tag's label space's names when the head still has that
    space's size. None when nothing says (a new head of unnamed classes, or no classifier)."""
    if cfg.label_descriptions is not None:
        return cfg.label_descriptions
    if cfg.label_names is not None:
        return cfg.label_names
    space = _space_of_head(cfg)
    return space.names() if space is not None else None


def find_label_space(label_names: tuple[str, ...]) -> str | None:
    """The label space whose synsets are exactly `label_names` (in order), or None."""
    for space in LABEL_SPACES.values():
        if space.num_classes == len(label_names) and space.synsets() == tuple(label_names):
            return space.name
    return None
