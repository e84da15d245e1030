"""`create_model`: an architecture by name, with its config overridden and its weights loaded."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from functools import cache

import torch
from torch import nn

from .models.features import FeatureExtractor, check_feature_cls
from .registry import get_architecture, resolve_pretrained_cfg


def _build_config(arch: str, config, overrides: dict):
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        if unknown == ["img_size"]:
            raise TypeError(f"{arch} takes any input size, so it has no img_size option; just feed the size you want")
        raise TypeError(f"{arch} has no option {', '.join(map(repr, unknown))}; its options are {', '.join(sorted(fields))}")
    return dataclasses.replace(config, **overrides)


def create_model(
    name: str,
    pretrained: bool = False,
    checkpoint_path: str | os.PathLike | None = None,
    num_classes: int | None = None,
    in_chans: int = 3,
    img_size: int | tuple[int, int] | None = None,
    features_only: bool = False,
    out_indices: int | Sequence[int] | None = None,
    feature_cls: str = "list",
    output_fmt: str = "NCHW",
    feature_cfg: dict | None = None,
    drop_rate: float | None = None,
    drop_path_rate: float | None = None,
    **arch_kwargs,
) -> nn.Module:
    """Create the model `name` ('arch' or 'arch.tag'; a bare arch means its default tag).

    Args:
        pretrained: load the tag's published weights (Hugging Face Hub `timm/<arch>.<tag>`, cached locally).
        checkpoint_path: load weights from a local .safetensors/.pth/.pt/.bin file instead.
        num_classes: classifier size; default the tag's. 0 removes the classifier. A size other than the
            checkpoint's initialises the classifier afresh (with a warning).
        in_chans: input channels; pretrained first-conv weights are adapted to it.
        img_size: input size of fixed-size models (ViT); the position embedding is resampled on load.
        features_only: return a backbone giving the feature maps at `out_indices` (levels of `feature_info`;
            an int n: the last n), in `output_fmt`. Nothing after the last level is built into it, and its
            state dict has the full model's keys. `feature_cls` is the reference's: 'list' or 'getter' (the
            same here), or 'dict' for an OrderedDict keyed by module name. `feature_cfg` takes the same
            options as a dict, plus `norm=True` (apply the model's final norm to the maps).
        drop_rate, drop_path_rate: head dropout and stochastic depth, for fine-tuning.
        **arch_kwargs: any other field of the family's config dataclass.

    Raises:
        UnknownModelError: unknown arch or tag (with suggestions).
        TypeError: an option the architecture does not have.
        CheckpointError: weights that cannot be found, read or fitted.
    """
    architecture = get_architecture(name)
    pretrained_cfg = resolve_pretrained_cfg(name)
    if pretrained and pretrained_cfg is None:
        raise ValueError(f"{architecture.name} has no published weights; pass checkpoint_path= or pretrained=False")
    overrides = dict(arch_kwargs, in_chans=in_chans)
    if num_classes is None and pretrained_cfg is not None:
        num_classes = pretrained_cfg.num_classes
    for key, value in (("num_classes", num_classes), ("img_size", img_size), ("drop_rate", drop_rate),
                       ("drop_path_rate", drop_path_rate)):
        if value is not None:
            overrides[key] = value
    config = _build_config(architecture.name, architecture.config, overrides)
    features = _feature_options(out_indices, feature_cls, output_fmt, feature_cfg) if features_only else None
    feature_args = out_indices is not None or feature_cfg or feature_cls != "list" or output_fmt != "NCHW"
    if feature_args and not features_only:
        raise ValueError("out_indices, feature_cls, output_fmt and feature_cfg need features_only=True")

    load_weights = pretrained or checkpoint_path is not None
    if load_weights:
        # Weights will replace every tensor: build without allocating or initialising them.
        with torch.device("meta"):
            model = architecture.model_cls(config)
    else:
        model = architecture.model_cls(config)
        model.init_weights()
    model.pretrained_cfg = pretrained_cfg
    if features is not None:
        # pruned before loading: the head and the unused trunk are never allocated
        model = FeatureExtractor(model, **features)

    if load_weights:
        from .weights import download_pretrained, load_into, read_checkpoint

        path = checkpoint_path if checkpoint_path is not None else download_pretrained(pretrained_cfg)
        load_into(model, read_checkpoint(path), pretrained_cfg, source=str(path))
    return model


def _feature_options(out_indices, feature_cls: str, output_fmt: str, feature_cfg: dict | None) -> dict:
    """FeatureExtractor's arguments from create_model's, with `feature_cfg` (the reference's way) merged."""
    options = dict(out_indices=out_indices, feature_cls=feature_cls, output_fmt=output_fmt, norm=False)
    if feature_cfg:
        unknown = sorted(set(feature_cfg) - set(options))
        if unknown:
            raise TypeError(f"feature_cfg has no option {', '.join(map(repr, unknown))}; "
                            f"its options are {', '.join(sorted(options))}")
        options.update(feature_cfg)
    options["return_dict"] = check_feature_cls(options.pop("feature_cls")) == "dict"
    return options


@cache
def parameter_count(name: str) -> int:
    """Parameters of `name` ('arch' with its default tag's head, or 'arch.tag'), counted without allocating them."""
    with torch.device("meta"):
        model = create_model(name)
    return sum(p.numel() for p in model.parameters())
