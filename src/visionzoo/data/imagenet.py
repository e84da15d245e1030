"""ImageNet-1k constants: normalisation statistics and the 1000 classes (WordNet synsets and names).

The classes ship as data (`imagenet1k_classes.tsv`: one `synset<TAB>names` line per class, in the index
order every ImageNet-1k classifier uses, i.e. sorted synset ids). The mean/std are the ImageNet training
set's RGB statistics on a 0-1 scale, as used by most torchvision-style weights.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The input normalisations published weights were trained with, by the name the tag data uses:
# ImageNet statistics; Inception-style (-1..1); none (0..1 kept as it is).
NORMALIZATIONS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
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
