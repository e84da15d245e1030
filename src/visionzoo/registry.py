"""The registry: architectures by name, their pretrained tags, name parsing, wildcard listing, suggestions."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .pretrained_cfg import PretrainedCfg, all_pretrained_cfgs


class UnknownModelError(ValueError):
    """Raised for a model or tag name that is not registered; the message suggests close matches."""


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: the model class of its family and the config that makes it this variant."""

    name: str
    family: str
    model_cls: type
    config: Any

    @property
    def pretrained_cfgs(self) -> tuple[PretrainedCfg, ...]:
        """The published weights of this arch, default first."""
        return all_pretrained_cfgs().get(self.name, ())


_ARCHITECTURES: dict[str, Architecture] = {}


def register_family(family: str, model_cls: type, variants: Mapping[str, Any]) -> None:
    """Register every variant of one family: `variants` maps arch name to the family's config."""
    for name, config in variants.items():
        if name in _ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is registered twice")
        _ARCHITECTURES[name] = Architecture(name, family, model_cls, config)


def _architectures() -> dict[str, Architecture]:
    from . import models  # noqa: F401  (importing the families registers them)

    return _ARCHITECTURES


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
    archs = _architectures()
    if arch not in archs:
        raise UnknownModelError(
            f"unknown model {arch!r}{_suggest(arch, archs)} (visionzoo.list_models() lists them all)")
    return archs[arch]


def resolve_pretrained_cfg(name: str) -> PretrainedCfg | None:
    """The pretrained cfg of 'arch.tag', or of the arch's default tag for a bare 'arch' (None if it has none)."""
    architecture = get_architecture(name)
    _, tag = split_name(name)
    cfgs = architecture.pretrained_cfgs
    if tag is None:
        return cfgs[0] if cfgs else None
    for cfg in cfgs:
        if cfg.tag == tag:
            return cfg
    known = [cfg.tag for cfg in cfgs]
    raise UnknownModelError(
        f"{architecture.name!r} has no pretrained tag {tag!r}{_suggest(tag, known)} "
        f"(its tags: {', '.join(known) or 'none'})")


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
    archs = _architectures()
    if pretrained:
        names = [cfg.name for arch in archs.values() for cfg in arch.pretrained_cfgs]
    else:
        names = list(archs)
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
    return split_name(name)[0] in _architectures()
