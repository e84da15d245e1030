"""`create_model`: an architecture by name, with its config overridden and its weights loaded."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from functools import cache

import torch
from torch import nn

from .data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from .errors import OptionError, UserError
from .models.features import FeatureExtractor, check_feature_cls
from .pretrained_cfg import PretrainedCfg
from .registry import get_architecture, resolve_pretrained_cfg
from .weights import checkpoint_classes, download_pretrained, load_into, read_checkpoint


def _build_config(arch: str, config, overrides: dict):
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise OptionError(f"{arch} has no option {', '.join(map(repr, unknown))}; "
                          f"its options are {', '.join(sorted(fields))}")
    return dataclasses.replace(config, **overrides)


def _architecture_cfg(arch: str, model: nn.Module) -> PretrainedCfg:
    """The config of a model built without a weights tag: ImageNet preprocessing and the model's own facts."""
    height, width = model.default_img_size
    return PretrainedCfg(
        architecture=arch, tag="", hf_hub_id="", license="", num_classes=model.num_classes,
        input_size=(model.in_chans, height, width), interpolation="bicubic", crop_pct=0.875,
        crop_mode="center", mean=IMAGENET_MEAN, std=IMAGENET_STD, first_conv=model.first_conv,
        classifier=model.classifier_module, fixed_input_size=model.fixed_input_size,
        pool_size=None if model.fixed_input_size else model.feature_map_size((height, width)))


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
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    **arch_kwargs,
) -> nn.Module:
    """Create the model `name` ('arch' or 'arch.tag'; a bare arch means its default tag).

    Args:
        pretrained: load the tag's published weights (Hugging Face Hub `timm/<arch>.<tag>`, cached locally).
        checkpoint_path: load weights from a local .safetensors/.pth/.pt/.bin file instead.
        num_classes: classifier size; default the checkpoint's (checkpoint_path) or the tag's. 0 removes the
            classifier. A size other than the checkpoint's initialises the classifier afresh (with a warning).
        in_chans: input channels; pretrained first-conv weights are adapted to it.
        img_size: input size. A fixed-size model (ViT, Hiera) is built for it (the position embedding is
            resampled on load); for the others it sets the default size (`model.default_img_size`).
        features_only: return a backbone giving the feature maps at `out_indices` (levels of `feature_info`;
            an int n: the last n), in `output_fmt`. Nothing after the last level is built into it, and its
            state dict has the full model's keys. `feature_cls` is the reference's: 'list' or 'getter' (the
            same here), or 'dict' for an OrderedDict keyed by module name. `feature_cfg` takes the same
            options as a dict, plus `norm=True` (apply the model's final norm to the maps).
        drop_rate, drop_path_rate: head dropout and stochastic depth, for fine-tuning.
        device: build the model directly there (e.g. 'cuda', or 'meta' for its structure without memory).
        dtype: floating-point dtype of its parameters and buffers (initialised in float32, then cast).
        **arch_kwargs: any other field of the family's config dataclass.

    Raises:
        UnknownModelError: unknown arch or tag (with suggestions).
        OptionError (a TypeError): an option the architecture does not have; TypeError: a dtype that is not
            floating-point.
        CheckpointError: weights that cannot be found, read or fitted.
    """
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    _check_arguments(pretrained, checkpoint_path, num_classes, in_chans, img_size, drop_rate, drop_path_rate)
    architecture = get_architecture(name)
    pretrained_cfg = resolve_pretrained_cfg(name)
    if pretrained and pretrained_cfg is None:
        raise UserError(f"{architecture.name} has no published weights; "
                        "pass checkpoint_path= or pretrained=False")
    overrides = dict(arch_kwargs, in_chans=in_chans)
    if num_classes is None and checkpoint_path is not None:
        # A local checkpoint (a fine-tuned model) loads with the classifier it was trained with.
        num_classes = checkpoint_classes(checkpoint_path, architecture.model_cls.classifier_module)
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
        raise UserError("out_indices, feature_cls, output_fmt and feature_cfg need features_only=True")

    load_weights = pretrained or checkpoint_path is not None
    if load_weights:
        # Weights will replace every tensor: build without allocating or initialising them.
        with torch.device("meta"):
            model = architecture.model_cls(config)
    else:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = architecture.model_cls(config)
            model.init_weights()
    model.pretrained_cfg = pretrained_cfg or _architecture_cfg(architecture.name, model)
    if features is not None:
        # pruned before loading: the head and the unused trunk are never allocated
        model = FeatureExtractor(model, **features)

    if load_weights:
        path = checkpoint_path if checkpoint_path is not None else download_pretrained(pretrained_cfg)
        load_into(model, read_checkpoint(path), pretrained_cfg, source=str(path))
        if device is not None:
            model.to(device)
    if dtype is not None:
        model.to(dtype)
    return model


def _check_arguments(pretrained, checkpoint_path, num_classes, in_chans, img_size, drop_rate,
                     drop_path_rate) -> None:
    """Refuse values that would build a broken model or silently drop one of two requests."""
    if pretrained and checkpoint_path is not None:
        raise UserError("pretrained=True and checkpoint_path= both give the weights; pass one of them")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 0):
        raise UserError(f"num_classes must be 0 (no classifier) or more, got {num_classes!r}")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise UserError(f"in_chans must be 1 or more, got {in_chans!r}")
    sizes = (img_size,) if isinstance(img_size, int) else tuple(img_size or ())
    positive = all(isinstance(n, int) and n >= 1 for n in sizes)
    if img_size is not None and (len(sizes) not in (1, 2) or not positive):
        raise UserError(f"img_size must be a positive int or (height, width), got {img_size!r}")
    for name, rate in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
        if rate is not None and not 0 <= rate < 1:
            raise UserError(f"{name} must be in [0, 1), got {rate!r}")


def _feature_options(out_indices, feature_cls: str, output_fmt: str, feature_cfg: dict | None) -> dict:
    """FeatureExtractor's arguments from create_model's, with `feature_cfg` (the reference's way) merged."""
    options = dict(out_indices=out_indices, feature_cls=feature_cls, output_fmt=output_fmt, norm=False)
    if feature_cfg:
        unknown = sorted(set(feature_cfg) - set(options))
        if unknown:
            raise OptionError(f"feature_cfg has no option {', '.join(map(repr, unknown))}; "
                            f"its options are {', '.join(sorted(options))}")
        options.update(feature_cfg)
    options["return_dict"] = check_feature_cls(options.pop("feature_cls")) == "dict"
    return options


@cache
def parameter_count(name: str) -> int:
    """Parameters of `name` ('arch' with its default tag's head, or 'arch.tag'), counted without allocating
    them."""
    with torch.device("meta"):
        model = create_model(name)
    return sum(p.numel() for p in model.parameters())
