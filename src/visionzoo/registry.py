"""The registry: architectures by name, their pretrained tags, name parsing, wildcard listing, suggestions.

The architectures come from `visionzoo.models.FAMILIES`; the tags from the data in `visionzoo/pretrained/`.
A tag record's architecture facts (first conv, classifier, fixed input size, pool size) are not in the data:
they are read from the model class when the record is handed out, so there is one source for each.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from .errors import UnknownModelError, UserError
from .models import FAMILIES
from .models.base import ClassifierModel
from .pretrained_cfg import PretrainedCfg, all_pretrained_cfgs

__all__ = ["Architecture", "UnknownModelError", "get_architecture", "get_pretrained_cfg", "is_model",
           "list_models", "list_pretrained", "resolve_models", "resolve_pretrained_cfg", "split_name"]


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: the model class of its family and the config that makes it this variant."""

    name: str
    family: str
    model_cls: type[ClassifierModel]
    config: Any

    @property
    def pretrained_cfgs(self) -> tuple[PretrainedCfg, ...]:
        """The published weights of this arch, default first."""
        return _complete_cfgs(self.name)

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags of the published weights, default first (without building anything)."""
        return tuple(cfg.tag for cfg in all_pretrained_cfgs().get(self.name, ()))

    def build_meta(self) -> ClassifierModel:
        """The model on the meta device (no memory, no initialisation): its structure and facts only."""
        with torch.device("meta"):
            return self.model_cls(self.config)


def _build_table() -> dict[str, Architecture]:
    table: dict[str, Architecture] = {}
    for family, (model_cls, variants) in FAMILIES.items():
        for name, config in variants.items():
            if name in table:
                raise ValueError(f"architecture {name!r} is registered twice "
                                 f"({table[name].family}, {family})")
            table[name] = Architecture(name, family, model_cls, config)
    return table


_ARCHITECTURES: dict[str, Architecture] = _build_table()


@cache
def _complete_cfgs(arch: str) -> tuple[PretrainedCfg, ...]:
    """The arch's tag records with the architecture facts filled in from its model."""
    records = all_pretrained_cfgs().get(arch, ())
    if not records:
        return ()
    model = _ARCHITECTURES[arch].build_meta()
    return tuple(dataclasses.replace(
        cfg, first_conv=model.first_conv, classifier=model.classifier_module,
        fixed_input_size=model.fixed_input_size,
        # the size of the last feature map at the tag's size; a fixed-size model (tokens) has none
        pool_size=None if model.fixed_input_size else model.feature_map_size(cfg.input_size[1:]),
    ) for cfg in records)


def split_name(name: str) -> tuple[str, str | None]:
    """'arch.tag' -> ('arch', 'tag'); 'arch' -> ('arch', None)."""
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def get_architecture(name: str) -> Architecture:
    """The architecture of `name` ('arch' or 'arch.tag'); raises UnknownModelError with suggestions."""
    arch, _ = split_name(name)
    if arch not in _ARCHITECTURES:
        raise UnknownModelError(
            f"unknown model {arch!r}{_suggest(arch, _ARCHITECTURES)} "
            "(visionzoo.list_models() lists them all)")
    return _ARCHITECTURES[arch]


def resolve_pretrained_cfg(name: str) -> PretrainedCfg | None:
    """The pretrained cfg of 'arch.tag', or of the arch's default tag for a bare 'arch' (None: it has
    none)."""
    architecture = get_architecture(name)
    _, tag = split_name(name)
    known = architecture.tags
    if tag is None:
        return architecture.pretrained_cfgs[0] if known else None
    if tag not in known:
        raise UnknownModelError(
            f"{architecture.name!r} has no pretrained tag {tag!r}{_suggest(tag, known)} "
            f"(its tags: {', '.join(known) or 'none'})")
    return architecture.pretrained_cfgs[known.index(tag)]


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The pretrained cfg of 'arch.tag' (or of the default tag of 'arch'); raises if it has no weights."""
    cfg = resolve_pretrained_cfg(name)
    if cfg is None:
        raise UnknownModelError(f"{name!r} has no published weights")
    return cfg


def _as_patterns(filters: str | Iterable[str]) -> list[str]:
    if isinstance(filters, str):
        return [filters] if filters else []
    return list(filters)


def list_models(filter: str | Iterable[str] = "", pretrained: bool = False,
                exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Registered names matching shell-style wildcards, naturally sorted.

    With `pretrained=True` the names are 'arch.tag' of published weights, else bare arch names.
    """
    if pretrained:
        names = [f"{arch.name}.{tag}" for arch in _ARCHITECTURES.values() for tag in arch.tags]
    else:
        names = list(_ARCHITECTURES)
    include, exclude = _as_patterns(filter), _as_patterns(exclude_filters)
    if include:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in include)]
    if exclude:
        names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]
    return sorted(names, key=_natural_key)


def list_pretrained(filter: str | Iterable[str] = "") -> list[str]:
    """'arch.tag' names of every published weight matching `filter`."""
    return list_models(filter, pretrained=True)


def is_model(name: str) -> bool:
    """True if the arch of `name` ('arch' or 'arch.tag') is registered."""
    return split_name(name)[0] in _ARCHITECTURES


def resolve_models(patterns: Iterable[str]) -> list[str]:
    """Model names from exact names ('arch', 'arch.tag') or shell-style wildcards, without repeats.

    A wildcard matches architectures, or else 'arch.tag' names. Raises UnknownModelError (with suggestions)
    for an unknown exact name, UserError for a wildcard that matches nothing.
    """
    names: list[str] = []
    for pattern in patterns:
        if any(char in pattern for char in "*?["):
            matched = list_models(pattern) or list_models(pattern, pretrained=True)
            if not matched:
                raise UserError(f"no model matches {pattern!r}; run `visionzoo models` to see them all")
        else:
            resolve_pretrained_cfg(pattern)  # an unknown arch or tag fails here, with suggestions
            matched = [pattern]
        names += [name for name in matched if name not in names]
    return names

