"""Pretrained tags as typed records, read lazily from the TOML data in `visionzoo/pretrained/`.

One record per published weight (`arch.tag`): where it lives on the Hugging Face Hub, how its inputs were
preprocessed, and the ImageNet-1k results measured with it. The published results on the other evaluation
sets (ImageNet-ReaL, -V2, -Sketch, -A, -R) are in `visionzoo/pretrained/eval_sets/<set>.csv`, one file per
set with its source stated in its header. The registry, `get_pretrained_cfg`, the validate tool and the
metrics page all read this one source.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from .image_inputs import NORMALIZATIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# The evaluation set of a tag's `results`: ImageNet-1k val (`visionzoo.data.eval_sets` names the others).
IMAGENET = "imagenet"


@dataclass(frozen=True)
class ReportedResult:
    """A published result of a weight on an evaluation set (ImageNet-1k val unless `eval_set` says another of
    `visionzoo.data.eval_sets`), measured at `img_size` with that crop and interpolation (authoritative)."""

    img_size: int
    top1: float
    top5: float
    crop_pct: float
    interpolation: str
    eval_set: str = IMAGENET


@dataclass(frozen=True)
class PretrainedCfg(Mapping[str, Any]):
    """Everything known about one published weight: location, preprocessing, head and reported results.

    The data files hold only what is about the weights. `first_conv`, `classifier`, `fixed_input_size` and
    `pool_size` are facts of the architecture: the registry fills them in from the model class when it hands
    out the record (they are None in the raw records of `all_pretrained_cfgs`).

    Typed and frozen, it also reads as a read-only mapping of the `to_dict` fields (`cfg['input_size']`,
    `cfg.get('min_input_size')`, `dict(cfg)`), the dict view code written for the reference uses; the
    record stays the one source, the mapping is a view of it.
    """

    architecture: str
    tag: str
    hf_hub_id: str
    num_classes: int
    input_size: tuple[int, int, int]
    interpolation: str
    crop_pct: float
    crop_mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    license: str
    test_input_size: tuple[int, int, int] | None = None
    test_crop_pct: float | None = None
    results: tuple[ReportedResult, ...] = field(default=(), compare=False)
    # the published results on the other evaluation sets (from pretrained/eval_sets/*.csv)
    eval_set_results: tuple[ReportedResult, ...] = field(default=(), compare=False)
    # what the classifier's outputs are: a label space of `visionzoo.data.label_spaces` (None: no classifier,
    # or classes of the user's own), and, for a model of the user's own classes, their names in index order.
    # `label_names` are the reference's unique ids (synsets for ImageNet, the class folder names of a
    # fine-tune); `label_descriptions`, where known, their human-readable names in the same order.
    label_space: str | None = None
    label_names: tuple[str, ...] | None = None
    label_descriptions: tuple[str, ...] | None = None
    # architecture facts, from the model (see above)
    first_conv: str | None = None
    classifier: str | None = None
    fixed_input_size: bool | None = None
    pool_size: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        """'arch.tag', or 'arch' for weights without a tag (a model of the user's own)."""
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture

    def results_on(self, eval_set: str = IMAGENET) -> tuple[ReportedResult, ...]:
        """The published results on `eval_set` (a name of `visionzoo.data.eval_sets`), by image size."""
        return self.results if eval_set == IMAGENET else tuple(
            r for r in self.eval_set_results if r.eval_set == eval_set)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def to_dict(self) -> dict:
        """The preprocessing and head fields as a plain dict, as the reference's config has them (the results
        and the label space, visionzoo's own, left out; `label_descriptions` as the reference's
        {label name: description} dict)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in _OWN_FIELDS}
        if self.label_descriptions is not None and self.label_names is not None:
            values["label_descriptions"] = dict(zip(self.label_names, self.label_descriptions, strict=True))
        return values


_OWN_FIELDS = ("results", "eval_set_results", "label_space")


_TUPLE_FIELDS = ("input_size", "test_input_size", "label_names", "label_descriptions")


def _parse_tag(entry: dict, defaults: dict) -> PretrainedCfg:
    values = {**defaults, **entry}
    name = values.pop("name")
    arch, tag = name.split(".", 1)
    values.setdefault("hf_hub_id", f"timm/{name}")
    for key in _TUPLE_FIELDS:
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    normalization = values.pop("normalization")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"tag {name}: normalization must be one of {', '.join(NORMALIZATIONS)}, "
                         f"got {normalization!r}")
    values["mean"], values["std"] = NORMALIZATIONS[normalization]
    values["results"] = tuple(ReportedResult(**r) for r in values.get("results", ()))
    if values.get("label_space") == "none":  # TOML has no null: a tag without a classifier says "none"
        values["label_space"] = None
    return PretrainedCfg(architecture=arch, tag=tag, **values)


def _data_files() -> list:
    return sorted((p for p in resources.files("visionzoo.pretrained").iterdir() if p.name.endswith(".toml")),
                  key=lambda p: p.name)


def _eval_set_results() -> dict[str, list[ReportedResult]]:
    """The published results on the other evaluation sets, by `arch.tag` (files named by set, '#' lines
    state their source)."""
    by_tag: dict[str, list[ReportedResult]] = {}
    folder = resources.files("visionzoo.pretrained").joinpath("eval_sets")
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".csv"):
            continue
        eval_set = path.name.removesuffix(".csv")  # a set of visionzoo.data.eval_sets (a test checks)
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
        for row in csv.DictReader(lines):
            by_tag.setdefault(row["model"], []).append(ReportedResult(
                int(row["img_size"]), float(row["top1"]), float(row["top5"]), float(row["crop_pct"]),
                row["interpolation"], eval_set))
    return by_tag


@cache
def all_pretrained_cfgs() -> dict[str, tuple[PretrainedCfg, ...]]:
    """Every tag of every arch in the data files, by arch, in default-first order."""
    by_arch: dict[str, list[PretrainedCfg]] = {}
    published = _eval_set_results()
    for path in _data_files():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        defaults = data.get("defaults", {})
        for entry in data.get("tag", []):
            cfg = _parse_tag(entry, defaults)
            cfg = dataclasses.replace(cfg, eval_set_results=tuple(published.pop(cfg.name, ())))
            by_arch.setdefault(cfg.architecture, []).append(cfg)
    if published:
        raise ValueError(f"pretrained/eval_sets/ has results of tags the tag data lacks: "
                         f"{', '.join(sorted(published))}")
    return {arch: tuple(cfgs) for arch, cfgs in by_arch.items()}
