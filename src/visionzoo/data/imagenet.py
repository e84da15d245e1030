"""ImageNet-1k constants: the 1000 classes (WordNet synsets and names), and the normalisation statistics.

The classes ship as data (`imagenet1k_classes.tsv`: one `synset<TAB>names` line per class, in the index
order every ImageNet-1k classifier uses, i.e. sorted synset ids). The mean/std live in
`visionzoo.image_inputs`, where the tag records read them too.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from ..image_inputs import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "NUM_CLASSES", "imagenet_class_names", "imagenet_synset_to_index",
           "imagenet_synsets", "is_synset"]

NUM_CLASSES = 1000

_SYNSET = re.compile(r"n\d{8}")


@cache
def _classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    text = resources.files("visionzoo.data").joinpath("imagenet1k_classes.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t", 1) for line in text.splitlines() if line]
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 WordNet synset ids (`n01440764`, ...), by class index."""
    return _classes()[0]


def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 class names (`tench, Tinca tinca`, ...), by class index."""
    return _classes()[1]


@cache
def imagenet_synset_to_index() -> dict[str, int]:
    """Synset id -> ImageNet-1k class index."""
    return {synset: index for index, synset in enumerate(imagenet_synsets())}


def is_synset(name: str) -> bool:
    """True for a WordNet noun synset id such as `n01440764` (any synset, not only ImageNet-1k's)."""
    return _SYNSET.fullmatch(name) is not None
