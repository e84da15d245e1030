"""The model API of the reference's `tests/test_models.py`, answered by visionzoo.

The suite's `create_model` is ours. Its listing functions only choose which architectures a test is
parametrised over: they ask the reference which of its names a test wants (so its `module=`, `filter=`,
`name_matches_cfg=` and `include_tags=` keep the reference's meaning) and keep the ones visionzoo registers
under `MAX_PARAMS` parameters.
"""

from __future__ import annotations

from functools import cache

import timm  # test-only dependency: this module exists to run the reference's tests

import visionzoo
from visionzoo import create_model
from visionzoo.factory import parameter_count

__all__ = ["create_model", "get_pretrained_cfg_value", "is_our_model", "list_models", "list_pretrained",
           "our_archs"]

MAX_PARAMS = 100e6  # the scope; larger models would not fit the suite's time budget


@cache
def our_archs() -> frozenset[str]:
    """visionzoo's registered architectures under MAX_PARAMS parameters."""
    return frozenset(a for a in visionzoo.list_models() if parameter_count(a) < MAX_PARAMS)


def _ours(names: list[str]) -> list[str]:
    archs = our_archs()
    tagged = set(visionzoo.list_pretrained())
    return [n for n in names if (n in tagged if "." in n else n in archs) and n.split(".")[0] in archs]


def list_models(filter="", module="", pretrained=False, exclude_filters="", name_matches_cfg=False,
                include_tags=None) -> list[str]:
    """The reference's `list_models` with the same arguments, limited to our architectures."""
    names = timm.list_models(filter=filter, module=module, pretrained=pretrained,
                             exclude_filters=exclude_filters, name_matches_cfg=name_matches_cfg,
                             include_tags=include_tags)
    return _ours(names)


def list_pretrained(filter="", exclude_filters="") -> list[str]:
    """The reference's `list_pretrained`, limited to our tags."""
    return _ours(timm.list_pretrained(filter=filter, exclude_filters=exclude_filters))


def get_pretrained_cfg_value(model_name: str, cfg_key: str):
    """One field of our pretrained config of `model_name` (None where we do not have the field)."""
    return getattr(visionzoo.get_pretrained_cfg(model_name), cfg_key, None)


def is_our_model(name: str) -> bool:
    """True for an arch (or arch.tag) of ours the suite runs on."""
    return name.split(".")[0] in our_archs()
