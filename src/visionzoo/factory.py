"""`create_model`: an architecture by name, with its config overridden and its weights loaded."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

from .data.imagenet import IMAGENET_MEAN, IMAGENET_STD
from .errors import CheckpointError, OptionError, UserError
from .model_folder import CONFIG_FILE, LOCAL_DIR, ModelFolder, read_model_folder
from .models.features import FeatureExtractor, check_feature_cls
from .pretrained_cfg import PretrainedCfg
from .registry import Architecture, resolve_model, with_architecture_facts
from .weights import (
    checkpoint_classes,
    checkpoint_label_names,
    download_pretrained,
    load_into,
    read_checkpoint,
)

# create_model's own parameters that a model folder's model_args may set (the rest are config fields)
_FACTORY_ARGS = ("num_classes", "in_chans", "img_size", "drop_rate", "drop_path_rate")


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


def _json_to_config(value):
    """JSON lists as the tuples config fields hold."""
    return tuple(_json_to_config(v) for v in value) if isinstance(value, list) else value


def _folder_of_checkpoint(checkpoint_path, architecture: Architecture) -> ModelFolder | None:
    """The model folder a local checkpoint sits in (beside a config.json), which then describes it: its
    preprocessing, class names and options. Refused if it names another architecture."""
    path = Path(checkpoint_path)
    if not (path.parent / CONFIG_FILE).is_file():
        return None
    folder = read_model_folder(str(path.parent), LOCAL_DIR, str(path.parent))
    if folder.architecture != architecture.name:
        raise CheckpointError(f"{path}: its folder's {CONFIG_FILE} says it holds a {folder.architecture} "
                              f"model, not {architecture.name}; name that model, or the folder itself")
    return folder


def _named_by_metadata(checkpoint_path, cfg: PretrainedCfg | None) -> PretrainedCfg | None:
    """`cfg` with the class names a safetensors checkpoint records in its metadata, if it does."""
    names = checkpoint_label_names(checkpoint_path)
    if names is None or cfg is None:
        return cfg
    return dataclasses.replace(cfg, num_classes=len(names), label_space=None, label_names=names,
                               label_descriptions=None)


def _head_cfg(cfg: PretrainedCfg, num_classes: int) -> PretrainedCfg:
    """`cfg` for a model whose head has `num_classes` outputs: another head's class names are dropped."""
    if cfg.num_classes == num_classes:
        return cfg
    return dataclasses.replace(cfg, num_classes=num_classes, label_names=None, label_descriptions=None)


def _folder_defaults(folder: ModelFolder, cfg: PretrainedCfg) -> tuple[dict, dict]:
    """(create_model arguments, config fields) a model folder sets: its head, input channels, the input
    size of a fixed-size model, and its recorded model_args."""
    args = {key: _json_to_config(value) for key, value in folder.model_args.items()}
    factory = {key: args.pop(key) for key in _FACTORY_ARGS if key in args}
    factory.setdefault("num_classes", cfg.num_classes)
    factory.setdefault("in_chans", cfg.input_size[0])
    if cfg.fixed_input_size:
        factory.setdefault("img_size", tuple(cfg.input_size[1:]))
    return factory, args


@dataclass(frozen=True)
class _Plan:
    """What `create_model` builds: the architecture, its config, the record of its weights and the model
    folder named (if any)."""

    architecture: Architecture
    config: object
    pretrained_cfg: PretrainedCfg | None
    folder: ModelFolder | None


def _plan(name: str, pretrained: bool, checkpoint_path, given: dict, arch_kwargs: dict) -> _Plan:
    """Resolve the name, the weights' description and every option, without building anything."""
    resolved = resolve_model(name)
    architecture, pretrained_cfg, folder = resolved.architecture, resolved.pretrained_cfg, resolved.folder
    if pretrained and pretrained_cfg is None:
        raise UserError(f"{architecture.name} has no published weights; "
                        "pass checkpoint_path= or pretrained=False")
    described_by = folder
    if checkpoint_path is not None:
        beside = _folder_of_checkpoint(checkpoint_path, architecture)
        if beside is not None:
            described_by = beside
            pretrained_cfg = with_architecture_facts(beside.pretrained_cfg, architecture.build_meta())
        else:
            pretrained_cfg = _named_by_metadata(checkpoint_path, pretrained_cfg)
        if given["num_classes"] is None:
            # A local checkpoint (a fine-tuned model) loads with the classifier it was trained with.
            classifier = architecture.model_cls.classifier_module
            given["num_classes"] = checkpoint_classes(checkpoint_path, classifier)
    factory_defaults, folder_kwargs = (_folder_defaults(described_by, pretrained_cfg) if described_by
                                       else ({}, {}))
    overrides = {**folder_kwargs, **arch_kwargs}
    for key, value in given.items():
        value = factory_defaults.get(key) if value is None else value
        if key == "num_classes" and value is None and pretrained_cfg is not None:
            value = pretrained_cfg.num_classes
        if value is not None:
            overrides[key] = value
    overrides.setdefault("in_chans", 3)
    try:
        config = _build_config(architecture.name, architecture.config, overrides)
    except OptionError as error:
        if described_by is None or not set(folder_kwargs) - set(architecture.config.__dataclass_fields__):
            raise
        raise OptionError(f"model folder {described_by.name} records model_args visionzoo cannot apply: "
                          f"{error}") from None
    return _Plan(architecture, config, pretrained_cfg, folder)


def _model_cfg(plan: _Plan, model: nn.Module) -> PretrainedCfg:
    if plan.pretrained_cfg is None:
        return _architecture_cfg(plan.architecture.name, model)
    return _head_cfg(plan.pretrained_cfg, model.num_classes)


def model_blueprint(name: str, pretrained: bool = False, checkpoint_path: str | os.PathLike | None = None,
                    num_classes: int | None = None, img_size: int | tuple[int, int] | None = None,
                    **arch_kwargs) -> nn.Module:
    """The model `create_model` makes with these arguments, on the meta device and without reading its
    weights: its structure, class count and `pretrained_cfg` (preprocessing and class names, from its
    folder or the checkpoint's), to plan an evaluation before loading anything."""
    plan = _plan(name, pretrained, checkpoint_path, dict(num_classes=num_classes, in_chans=None,
                 img_size=img_size, drop_rate=None, drop_path_rate=None), arch_kwargs)
    with torch.device("meta"):
        model = plan.architecture.model_cls(plan.config)
    model.pretrained_cfg = _model_cfg(plan, model)
    return model


def create_model(
    name: str,
    pretrained: bool = False,
    checkpoint_path: str | os.PathLike | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
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
    """Create the model `name`: 'arch' or 'arch.tag' (a bare arch means its default tag), or a model folder:
    'local-dir:PATH', 'hf-hub:org/name[@revision]' or the path of a folder holding config.json.

    A model folder supplies the architecture, the head (class count and names), the preprocessing
    (`model.pretrained_cfg`) and the options it records; explicit arguments override them, as in the
    reference, and as there `pretrained=True` loads the folder's weights.

    Args:
        pretrained: load the tag's published weights (Hugging Face Hub `timm/<arch>.<tag>`, cached locally),
            or the model folder's.
        checkpoint_path: load weights from a local .safetensors/.pth/.pt/.bin file instead. If the file sits
            in a model folder (beside a config.json), that folder's preprocessing and class names come too.
        num_classes: classifier size; default the checkpoint's (checkpoint_path), the folder's or the tag's.
            0 removes the classifier. A size other than the checkpoint's initialises the classifier afresh
            (with a warning), and the class names of the old head are dropped.
        in_chans: input channels (default the folder's, else 3); pretrained first-conv weights are adapted.
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
        UnknownModelError: unknown arch or tag (with suggestions), or a folder of an architecture visionzoo
            does not have.
        OptionError (a TypeError): an option the architecture does not have; TypeError: a dtype that is not
            floating-point.
        CheckpointError: weights that cannot be found, read or fitted; a model folder whose config.json is
            missing or malformed.
    """
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    _check_arguments(pretrained, checkpoint_path, num_classes, in_chans, img_size, drop_rate, drop_path_rate)
    plan = _plan(name, pretrained, checkpoint_path, dict(num_classes=num_classes, in_chans=in_chans,
                 img_size=img_size, drop_rate=drop_rate, drop_path_rate=drop_path_rate), arch_kwargs)
    architecture, config, pretrained_cfg = plan.architecture, plan.config, plan.pretrained_cfg
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
    model.pretrained_cfg = _model_cfg(plan, model)
    if features is not None:
        # pruned before loading: the head and the unused trunk are never allocated
        model = FeatureExtractor(model, **features)

    if load_weights:
        if checkpoint_path is not None:
            path = checkpoint_path
        elif plan.folder is not None:
            path = plan.folder.weights_file()
        else:
            path = download_pretrained(pretrained_cfg)
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
    if in_chans is not None and (not isinstance(in_chans, int) or in_chans < 1):
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
