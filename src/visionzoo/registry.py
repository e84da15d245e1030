"""The registry: architectures by name, their pretrained tags, name parsing, wildcard listing, suggestions.

The architectures come from `visionzoo.models.FAMILIES`; the tags from the data in `visionzoo/pretrained/`.
A tag record's architecture facts (first conv, classifier, fixed input size, pool size) are not in the data:
they are read from the model class when the record is handed out, so there is one source for each.

A model name is 'arch' or 'arch.tag', or a model folder (see `model_folder`): 'local-dir:PATH',
'hf-hub:org/name[@revision]', or the path of a folder. Every function here that takes a name takes all of
them, so every command and library call that names a model accepts a folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from .errors import UnknownModelError, UserError
from .model_folder import HF_HUB, LOCAL_DIR, SOURCES, ModelFolder, read_model_folder
from .models import FAMILIES
from .models.base import ClassifierModel
from .pretrained_cfg import PretrainedCfg, all_pretrained_cfgs

__all__ = ["Architecture", "UnknownModelError", "get_architecture", "get_pretrained_cfg", "is_model",
           "list_models", "list_pretrained", "model_folder", "parse_model_name", "resolve_model",
           "resolve_models", "resolve_pretrained_cfg", "split_name"]


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


def with_architecture_facts(cfg: PretrainedCfg, model: ClassifierModel) -> PretrainedCfg:
    return dataclasses.replace(
        cfg, first_conv=model.first_conv, classifier=model.classifier_module,
        fixed_input_size=model.fixed_input_size,
        # the size of the last feature map at the tag's size; a fixed-size model (tokens) has none
        pool_size=None if model.fixed_input_size else model.feature_map_size(cfg.input_size[1:]))


@cache
def _complete_cfgs(arch: str) -> tuple[PretrainedCfg, ...]:
    """The arch's tag records with the architecture facts filled in from its model."""
    records = all_pretrained_cfgs().get(arch, ())
    if not records:
        return ()
    model = _ARCHITECTURES[arch].build_meta()
    return tuple(with_architecture_facts(cfg, model) for cfg in records)


def parse_model_name(name: str) -> tuple[str | None, str]:
    """(source, id) of a model name: ('local-dir', PATH) for 'local-dir:PATH' or the path of a folder,
    ('hf-hub', 'org/name[@revision]') for 'hf-hub:...', (None, 'arch[.tag]') for a registered name.

    A registered name wins over a folder of the same name; a name with a path separator is a path.
    """
    source, sep, rest = name.partition(":")
    source = source.lower().replace("_", "-")  # the reference also accepts the older 'hf_hub:'
    if sep and source in SOURCES:
        if not rest:
            raise UserError(f"model name {name!r} names nothing after '{source}:'")
        return source, rest
    if "/" in name or os.sep in name:
        return LOCAL_DIR, name
    if name.partition(".")[0] not in _ARCHITECTURES and os.path.isdir(name):
        return LOCAL_DIR, name
    return None, name


def split_name(name: str) -> tuple[str, str | None]:
    """'arch.tag' -> ('arch', 'tag'); 'arch' -> ('arch', None); a model folder's name -> (name, None)."""
    if parse_model_name(name)[0] is not None:
        return name, None
    arch, _, tag = name.partition(".")
    return arch, (tag or None)


def model_folder(name: str) -> ModelFolder | None:
    """The model folder `name` names, read from its config.json; None for a registered name.

    Raises UserError/CheckpointError for a folder that cannot be read (see `model_folder.read_model_folder`).
    """
    source, location = parse_model_name(name)
    if source is None:
        return None
    try:
        return read_model_folder(name, source, location)
    except UserError:
        if source == LOCAL_DIR and not name.startswith(f"{LOCAL_DIR}:") and not os.path.exists(location):
            hint = (f"; for a Hugging Face Hub repository write {HF_HUB}:{name}" if name.count("/") == 1
                    else "")
            raise UnknownModelError(f"{name!r} is neither a registered model nor an existing model folder"
                                    f"{hint}") from None
        raise


def _folder_architecture(folder: ModelFolder) -> Architecture:
    if folder.architecture not in _ARCHITECTURES:
        raise UnknownModelError(
            f"model folder {folder.name} holds a {folder.architecture!r} model, an architecture visionzoo "
            f"does not have{_suggest(folder.architecture, _ARCHITECTURES)} (visionzoo.list_models() lists "
            "them all)")
    return _ARCHITECTURES[folder.architecture]


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


@dataclass(frozen=True)
class ResolvedModel:
    """What a model name stands for: its architecture, the record of its weights (None: an arch without
    published weights), and the model folder it was read from (None: a registered name)."""

    architecture: Architecture
    pretrained_cfg: PretrainedCfg | None
    folder: ModelFolder | None = None


def resolve_model(name: str) -> ResolvedModel:
    """Resolve any model name ('arch', 'arch.tag', a model folder) once; raises UnknownModelError (with
    suggestions) for an unknown arch, tag or folder architecture, CheckpointError for an unreadable
    folder."""
    folder = model_folder(name)
    if folder is not None:
        architecture = _folder_architecture(folder)
        cfg = with_architecture_facts(folder.pretrained_cfg, architecture.build_meta())
        return ResolvedModel(architecture, cfg, folder)
    return ResolvedModel(get_architecture(name), resolve_pretrained_cfg(name))


def get_architecture(name: str) -> Architecture:
    """The architecture of `name` ('arch', 'arch.tag' or a model folder); raises UnknownModelError with
    suggestions."""
    if parse_model_name(name)[0] is not None:
        return resolve_model(name).architecture
    arch, _ = split_name(name)
    if arch not in _ARCHITECTURES:
        raise UnknownModelError(
            f"unknown model {arch!r}{_suggest(arch, _ARCHITECTURES)} "
            "(visionzoo.list_models() lists them all)")
    return _ARCHITECTURES[arch]


def resolve_pretrained_cfg(name: str) -> PretrainedCfg | None:
    """The pretrained cfg of 'arch.tag', or of the arch's default tag for a bare 'arch' (None: it has
    none), or the one a model folder describes."""
    if parse_model_name(name)[0] is not None:
        return resolve_model(name).pretrained_cfg
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
    """True if the arch of `name` ('arch' or 'arch.tag') is registered (a folder name is not)."""
    return split_name(name)[0] in _ARCHITECTURES


def resolve_models(patterns: Iterable[str]) -> list[str]:
    """Model names from exact names ('arch', 'arch.tag', a model folder) or shell-style wildcards, without
    repeats.

    A wildcard matches architectures, or else 'arch.tag' names. Raises UnknownModelError (with suggestions)
    for an unknown exact name, UserError for a wildcard that matches nothing.
    """
    names: list[str] = []
    for pattern in patterns:
        if parse_model_name(pattern)[0] is None and any(char in pattern for char in "*?["):
            matched = list_models(pattern) or list_models(pattern, pretrained=True)
            if not matched:
                raise UserError(f"no model matches {pattern!r}; run `visionzoo models` to see them all")
        else:
            resolve_pretrained_cfg(pattern)  # an unknown arch or tag fails here, with suggestions
            matched = [pattern]
        names += [name for name in matched if name not in names]
    return names

