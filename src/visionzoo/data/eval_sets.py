"""Named evaluation sets: ImageNet-1k val and the re-labelled and shifted test sets built on its classes.

Each set is a record: the layout it is distributed in, its label rule, its class list where it covers only
some of the 1000 classes, where to download it and the file of the reference project's published results on
it. The label data (ReaL labels, the 200-class lists of ImageNet-A and -R) ship in `eval_sets/` with their
sources in `eval_sets/SOURCES.md`. Reading a folder as a set is in `eval_data.py`; this module is torch-free
so that the command line can list the sets.

Label rules:
- `single`: the image's one label, as ImageNet (top-k hit if the label is among the k best classes).
- `real`: the image's ReaL label set (Beyer et al. 2020): a top-k hit if any of the k best classes is in it;
  images whose set is empty are skipped (and counted).
- `class-subset`: single label, with the model's 1000 logits restricted to the set's classes before the
  softmax, the loss and the top-k, as the sets' authors evaluate (`class_subset=False` keeps all 1000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..errors import UserError
from ..pretrained_cfg import IMAGENET
from .imagenet import NUM_CLASSES, imagenet_synset_to_index
from .label_spaces import IMAGENET_1K

if TYPE_CHECKING:
    from ..pretrained_cfg import PretrainedCfg

# Layouts (how the images and their labels are laid out on disk), checked by `eval_data.py`:
ANY_LAYOUT = "any"  # every layout `create_dataset` reads (class folders, labels file, Hugging Face files)
INDEX_FOLDERS = "index-folders"  # one folder per class, named by class index 0..999
SYNSET_FOLDERS = "synset-folders"  # one folder per class, named by WordNet synset (n01440764)
VAL_FILENAMES = "val-filenames"  # ImageNet val images named ILSVRC2012_val_NNNNNNNN.JPEG, flat or in folders

SINGLE, REAL, CLASS_SUBSET = "single", "real", "class-subset"


@dataclass(frozen=True)
class EvalSet:
    """One named evaluation set.

    `classes_file`: the set's classes (synsets, one a line, in ImageNet-1k order) in `eval_sets/`, for a set
    of only some of the 1000 classes. `reference_results`: the reference project's results file for the
    set (its published figures are in `visionzoo/pretrained/eval_sets/<name>.csv`). `shifted`: a
    distribution shift (counted in the robustness mean), as opposed to ImageNet itself or a re-labelling.
    """

    name: str
    title: str
    layout: str
    label_rule: str
    download: str
    license: str
    classes_file: str | None = None
    reference_results: str | None = None
    shifted: bool = False
    folder_name: str | None = None  # the folder its archive unpacks to, where that tells variants apart


EVAL_SETS = {s.name: s for s in (
    EvalSet(IMAGENET, "ImageNet-1k val", ANY_LAYOUT, SINGLE,
            "https://image-net.org/challenges/LSVRC/2012/ (registration), or the Hugging Face dataset "
            "ILSVRC/imagenet-1k (validation split)", "ImageNet terms of access (non-commercial research)",
            reference_results="results-imagenet.csv"),
    EvalSet("imagenet-real", "ImageNet-ReaL", VAL_FILENAMES, REAL,
            "the ImageNet-1k val images (as for imagenet); the ReaL labels ship with visionzoo "
            "(github.com/google-research/reassessed-imagenet)",
            "images: ImageNet terms; labels: Apache-2.0", reference_results="results-imagenet-real.csv"),
    EvalSet("imagenet-v2", "ImageNet-V2 (matched frequency)", INDEX_FOLDERS, SINGLE,
            "https://huggingface.co/datasets/vaishaal/ImageNetV2 "
            "(imagenetv2-matched-frequency.tar.gz; github.com/modestyachts/ImageNetV2)", "MIT",
            reference_results="results-imagenetv2-matched-frequency.csv", shifted=True,
            folder_name="imagenetv2-matched-frequency-format-val"),
    EvalSet("imagenet-v2-threshold-0.7", "ImageNet-V2 (threshold 0.7)", INDEX_FOLDERS, SINGLE,
            "https://huggingface.co/datasets/vaishaal/ImageNetV2 (imagenetv2-threshold0.7.tar.gz)", "MIT",
            folder_name="imagenetv2-threshold0.7-format-val"),
    EvalSet("imagenet-v2-top-images", "ImageNet-V2 (top images)", INDEX_FOLDERS, SINGLE,
            "https://huggingface.co/datasets/vaishaal/ImageNetV2 (imagenetv2-top-images.tar.gz)", "MIT",
            folder_name="imagenetv2-top-images-format-val"),
    EvalSet("imagenet-sketch", "ImageNet-Sketch", SYNSET_FOLDERS, SINGLE,
            "https://github.com/HaohanWang/ImageNet-Sketch (ImageNet-Sketch.zip, unpacks to sketch/)", "MIT",
            reference_results="results-sketch.csv", shifted=True),
    EvalSet("imagenet-a", "ImageNet-A", SYNSET_FOLDERS, CLASS_SUBSET,
            "https://people.eecs.berkeley.edu/~hendrycks/imagenet-a.tar "
            "(github.com/hendrycks/natural-adv-examples)", "MIT", classes_file="imagenet-a.txt",
            reference_results="results-imagenet-a.csv", shifted=True),
    EvalSet("imagenet-r", "ImageNet-R", SYNSET_FOLDERS, CLASS_SUBSET,
            "https://people.eecs.berkeley.edu/~hendrycks/imagenet-r.tar (github.com/hendrycks/imagenet-r)",
            "MIT", classes_file="imagenet-r.txt", reference_results="results-imagenet-r.csv", shifted=True),
)}

REAL_IMAGE_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.jpe?g", re.IGNORECASE)
REAL_IMAGES = 50_000


def get_eval_set(name: str) -> EvalSet:
    """The evaluation set called `name`; UserError listing the known ones."""
    if name not in EVAL_SETS:
        raise UserError(f"unknown evaluation set {name!r}; known: {', '.join(EVAL_SETS)}")
    return EVAL_SETS[name]


def _read(filename: str) -> str:
    return resources.files("visionzoo.data").joinpath("eval_sets", filename).read_text(encoding="utf-8")


@cache
def set_classes(name: str) -> tuple[int, ...] | None:
    """The ImageNet-1k class indices a set covers, ascending; None for a set of all 1000 classes."""
    record = get_eval_set(name)
    if record.classes_file is None:
        return None
    index = imagenet_synset_to_index()
    synsets = [line for line in _read(record.classes_file).splitlines() if line]
    unknown = [s for s in synsets if s not in index]
    if unknown:
        raise ValueError(f"{record.classes_file}: {', '.join(unknown[:3])} are not ImageNet-1k classes")
    return tuple(sorted(index[s] for s in synsets))


@cache
def real_labels() -> tuple[tuple[int, ...], ...]:
    """The ReaL label sets of the 50,000 ImageNet val images, by image number - 1 (an empty set: no label
    the raters agreed on; such images are left out of ReaL accuracy)."""
    rows = _read("imagenet-real.txt").split("\n")
    if rows[-1] == "":
        rows.pop()
    if len(rows) != REAL_IMAGES:
        raise ValueError(f"imagenet-real.txt has {len(rows)} rows, not {REAL_IMAGES}")
    return tuple(tuple(int(label) for label in row.split()) for row in rows)


def check_label_space(eval_set: EvalSet, cfg: PretrainedCfg | None, num_classes: int, model: str) -> None:
    """Refuse a model whose outputs are not the 1000 ImageNet-1k classes that every named set scores."""
    space = cfg.label_space if cfg is not None else None
    if cfg is None or (not cfg.tag and space is None):
        space = IMAGENET_1K  # weights of no tag: a 1000-class head is taken to be ImageNet-1k's
    if cfg is not None and cfg.label_names is not None:
        space = None  # a model of the user's own classes, whatever tag it started from
    if space != IMAGENET_1K or num_classes != NUM_CLASSES:
        outputs = f"{space} classes" if space else "classes of its own"
        raise UserError(f"{model} outputs {num_classes} {outputs}, not the {NUM_CLASSES} ImageNet-1k classes "
                        f"{eval_set.name} is scored on; evaluate a tag fine-tuned on ImageNet-1k (*_in1k)")
