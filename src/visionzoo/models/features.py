"""Feature levels and the `features_only` model: what a backbone gives a detection or segmentation head."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .base import ClassifierModel

FEATURE_CLASSES = ("list", "getter", "dict")  # the reference's feature_cls values we honour
REFUSED_FEATURE_CLASSES = ("hook", "fx")


class FeatureInfo(dict):
    """One feature level: its channels, its stride relative to the input, and the module that makes it.

    A dict with the reference's keys (`info['num_chs']`, `info['reduction']`, `info['module']`), so code
    written for the reference's backbones reads it unchanged, and with the attributes `channels`,
    `reduction` and `module`.
    """

    def __init__(self, channels: int, reduction: int, module: str):
        super().__init__(num_chs=channels, reduction=reduction, module=module)

    @property
    def channels(self) -> int:
        return self["num_chs"]

    @property
    def reduction(self) -> int:
        return self["reduction"]

    @property
    def module(self) -> str:
        return self["module"]


class FeatureList(list):
    """The feature levels of a model (all of them) or of a feature model (those it returns), in stride order.

    Besides being a list of `FeatureInfo`, it answers the reference's accessors: `channels()`, `reduction()`,
    `module_name()`, `get(key)` and `get_dicts()`. Each takes an optional `idx`: None for every level of
    the list, an int for one level, a sequence for several.
    """

    def get(self, key: str, idx: int | Sequence[int] | None = None):
        """The value of `key` ('num_chs', 'reduction', 'module') for the levels `idx` (see the class)."""
        if idx is None:
            return [info[key] for info in self]
        if isinstance(idx, int):
            return self[idx][key]
        return [self[i][key] for i in idx]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None):
        """The levels `idx` as dicts, restricted to `keys` if given."""
        def pick(info: FeatureInfo) -> dict:
            return dict(info) if keys is None else {k: info[k] for k in keys}

        if isinstance(idx, int):
            return pick(self[idx])
        return [pick(self[i]) for i in (range(len(self)) if idx is None else idx)]

    def channels(self, idx: int | Sequence[int] | None = None):
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None):
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None):
        return self.get("module", idx)


def resolve_feature_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """Absolute feature indices: None -> all, int n -> the last n, a sequence -> as given (negative: from
    the end)."""
    if indices is None:
        return list(range(count))
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f"cannot take the last {indices} of {count} feature levels")
        return list(range(count - indices, count))
    resolved = []
    for index in indices:
        absolute = index + count if index < 0 else index
        if not 0 <= absolute < count:
            raise ValueError(f"feature index {index} is out of range for {count} feature levels")
        resolved.append(absolute)
    return resolved


class UnsupportedFeatureClass(ValueError, AssertionError):
    """A `feature_cls` we do not build: a ValueError, and the AssertionError the reference's users catch."""


def check_feature_cls(feature_cls: str) -> str:
    """The reference's `feature_cls` name, lower-cased, if we honour it; else the reference's error type."""
    name = feature_cls.lower() if isinstance(feature_cls, str) else feature_cls
    if name in FEATURE_CLASSES:
        return name
    if name in REFUSED_FEATURE_CLASSES:
        # AssertionError as well: it is what the reference raises for a feature class it cannot build.
        raise UnsupportedFeatureClass(
            f"feature_cls={feature_cls!r} is not supported: visionzoo models give their features through "
            f"forward_intermediates; use one of {FEATURE_CLASSES}")
    raise UnsupportedFeatureClass(f"unknown feature_cls {feature_cls!r}; use one of {FEATURE_CLASSES}")


class FeatureExtractor(nn.Module):
    """`features_only=True`: a backbone whose forward returns the feature maps at `out_indices`.

    The model is pruned first (`prune_intermediate_layers`): nothing after the last level requested is kept,
    and the head goes. The extractor then shares the pruned model's registries of modules, parameters and
    buffers instead of holding it as a submodule, so that its state dict has the model's own keys: a full
    model's checkpoint loads into it (apart from the pruned keys, which `weights.load_into` drops), and its
    state dict loads into the full model with `strict=False`, missing only what was pruned. `model` is still
    reachable as an attribute, and the extractor answers for it what it does not define itself (config,
    input size, `set_grad_checkpointing`, `pretrained_cfg`, ...).

    `output_fmt` is 'NCHW' or another format the model offers (`model.output_fmts`); `norm` applies the
    model's final norm to the features where it has one; `return_dict` returns an OrderedDict keyed by the
    levels' module names (the reference's feature_cls='dict').
    """

    def __init__(self, model: ClassifierModel, out_indices: int | Sequence[int] | None = None,
                 output_fmt: str = "NCHW", norm: bool = False, return_dict: bool = False):
        super().__init__()
        model.check_output_fmt(output_fmt)
        if out_indices is None:
            out_indices = model.default_out_indices
        self.out_indices = model.prune_intermediate_layers(out_indices, prune_norm=not norm, prune_head=True)
        for registry in ("_parameters", "_buffers", "_non_persistent_buffers_set", "_modules"):
            setattr(self, registry, getattr(model, registry))
        self.__dict__["model"] = model  # not a submodule: its children are ours already
        self.feature_info = FeatureList(model.feature_info[i] for i in self.out_indices)
        self.output_fmt = output_fmt
        self.norm_features = norm  # not `norm`: the attributes share a namespace with the model's modules
        self.return_dict = return_dict

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | OrderedDict[str, torch.Tensor]:
        features = self.model.forward_intermediates(x, self.out_indices, norm=self.norm_features,
                                                    stop_early=True, output_fmt=self.output_fmt,
                                                    intermediates_only=True)
        if self.return_dict:
            return OrderedDict(zip(self.feature_info.module_name(), features, strict=True))
        return features

    def train(self, mode: bool = True) -> FeatureExtractor:
        super().train(mode)
        self.model.training = mode  # the model's own flag: its children are ours and already switched
        return self

    def __getattr__(self, name: str):
        # Everything else is the pruned model's: its config, input size, first conv, grad checkpointing, ...
        try:
            return super().__getattr__(name)
        except AttributeError:
            model = self.__dict__.get("model")
            if model is None or not hasattr(model, name):
                raise
            return getattr(model, name)
