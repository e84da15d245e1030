"""The interface every model family implements, and the feature-extractor wrapper built on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from ..errors import InputSizeError
from ..layers.pool import POOL_TYPES, check_pool_type, pooled_width

if TYPE_CHECKING:
    from ..pretrained_cfg import PretrainedCfg


@dataclass(frozen=True)
class ModelConfig:
    """Knobs every family has; each family's config extends it."""

    num_classes: int = 1000
    in_chans: int = 3
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    # The input size the model is built for. Fixed-size families (ViT, Hiera) override it with their size;
    # for the others None means "the size of the weights' tag" and any value just sets the default size.
    img_size: int | tuple[int, int] | None = None


@dataclass(frozen=True)
class FeatureInfo:
    """One feature level: its channels, its stride relative to the input, and the module that makes it."""

    channels: int
    reduction: int
    module: str


def check_choice(option: str, value: object, choices: Sequence[object]) -> None:
    """Raise a ValueError naming the option and its valid values if `value` is not one of `choices`."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {tuple(choices)}, got {value!r}")


def resolve_feature_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """Absolute feature indices: None -> all, int n -> the last n, a sequence -> as given (negative from the end)."""
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


class ClassifierModel(nn.Module):
    """Base of every visionzoo model: the shared classification and feature interface.

    A family sets `feature_info`, `num_features` and `num_classes` in its constructor and implements
    `forward_features`, `forward_head`, `forward_intermediates`, `reset_classifier`, `get_classifier` and
    `init_weights`. `num_features` is the channel width of `forward_features`; a head with a hidden layer
    also sets `head_hidden_size`. The class attributes declare what the family supports; the contract tests read them.
    """

    supports_dynamic_img_size: ClassVar[bool] = False
    fixed_input_size: ClassVar[bool] = False  # True where the input size is part of the architecture (ViT)
    default_out_indices: ClassVar[int | tuple[int, ...]] = (0, 1, 2, 3, 4)
    # Depth levels for layer-wise lr decay: regexes over parameter names, input side first; the numbers a
    # pattern captures split it into one level per stage/block; unmatched parameters are the head.
    depth_groups: ClassVar[tuple[str, ...]] = ()
    # Layout of `forward_features` (the reference's attribute name): 'NCHW', or 'NHWC' for channels-last
    # families; token models return (B, N, C) sequences whatever it says.
    output_fmt: ClassVar[str] = "NCHW"

    feature_info: list[FeatureInfo]
    num_classes: int
    num_features: int

    @property
    def in_chans(self) -> int:
        """Channels of the input image."""
        return self.config.in_chans

    @property
    def pretrained_cfg(self) -> PretrainedCfg | None:
        """The record of the weights' tag, set by `create_model` (for an arch without published weights, a
        record derived from the architecture, with an empty tag); None for a model built from its class.

        The record is frozen and typed, and also reads as a mapping (`cfg['input_size']`, `cfg.get('mean')`),
        as code written for the reference expects of `model.pretrained_cfg` and `model.default_cfg`.
        """
        return self.__dict__.get("_pretrained_cfg")

    @pretrained_cfg.setter
    def pretrained_cfg(self, cfg: PretrainedCfg | None) -> None:
        self.__dict__["_pretrained_cfg"] = cfg

    @property
    def default_cfg(self) -> PretrainedCfg | None:
        """The reference's older name of `pretrained_cfg`: the same object, not a copy."""
        return self.pretrained_cfg

    @property
    def head_hidden_size(self) -> int:
        """Width of `forward_head(x, pre_logits=True)`: `num_features` unless the head has a hidden layer,
        doubled by 'catavgmax' pooling where the pooled features feed the classifier directly."""
        if "_head_hidden_size" in self.__dict__:
            return self.__dict__["_head_hidden_size"]
        return pooled_width(getattr(self._classifier_parent()[0], "global_pool", "avg"), self.num_features)

    @head_hidden_size.setter
    def head_hidden_size(self, width: int) -> None:
        self.__dict__["_head_hidden_size"] = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    # Where the final linear layer lives; the string `global_pool` sits on the same parent module. Families
    # whose classifier is laid out otherwise (ViT's attention pooling) override the two methods below.
    classifier_module: ClassVar[str] = "head.fc"
    # The pooling types (layers/pool.py) the head can take. A head whose pooled features go through a norm or
    # a conv before the classifier cannot take 'catavgmax' (it doubles the width): those families narrow this.
    global_pools: ClassVar[tuple[str, ...]] = POOL_TYPES

    def _classifier_parent(self) -> tuple[nn.Module, str]:
        parent, _, name = self.classifier_module.rpartition(".")
        return (self.get_submodule(parent) if parent else self), name

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_module)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final linear layer with one for `num_classes` (0: none); optionally change the pooling."""
        parent, name = self._classifier_parent()
        if global_pool is not None:
            check_pool_type(global_pool, self.global_pools)
            parent.global_pool = global_pool
        self.num_classes = num_classes
        setattr(parent, name, self.new_classifier(self.head_hidden_size, num_classes))

    def new_classifier(self, in_features: int, num_classes: int) -> nn.Module:
        """A linear classifier (Identity for 0 classes) on the model's device and dtype, in its mode."""
        if num_classes <= 0:
            return nn.Identity()
        reference = next(self.parameters())
        classifier = nn.Linear(in_features, num_classes, device=reference.device, dtype=reference.dtype)
        return classifier.train(self.training)

    def adapt_checkpoint(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Family hook: reshape a published checkpoint to this model's configuration (e.g. another img_size)."""
        return state_dict

    # ---- Input size and architecture facts ------------------------------------------------------------------
    # One answer per model to "which input size do you expect, which can you take, where are your first conv
    # and your classifier": the data config, the validate and benchmark tools, weight loading and the
    # registry's tag records all read these instead of probing attributes.

    @property
    def total_stride(self) -> int:
        """Pixels per position of the last feature map (the product of every downsampling)."""
        return self.feature_info[-1].reduction

    @property
    def dynamic_img_size(self) -> bool:
        """True where a fixed-size model was built to take other sizes too (its config's dynamic_img_size)."""
        return self.fixed_input_size and self.supports_dynamic_img_size and bool(self.config.dynamic_img_size)

    @property
    def default_img_size(self) -> tuple[int, int]:
        """(height, width) the model expects: its config's img_size, else its weights' tag's, else 224."""
        size = self.config.img_size
        if size is None:
            size = self.pretrained_cfg.input_size[1:] if self.pretrained_cfg is not None else DEFAULT_IMG_SIZE
        return _pair(size)

    def feature_map_size(self, img_size: int | tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the last feature map for an input of `img_size` (partial windows count)."""
        stride = self.total_stride
        return tuple(-(-side // stride) for side in _pair(img_size))

    def check_img_size(self, img_size: int | tuple[int, int], name: str | None = None) -> None:
        """Raise InputSizeError, saying which sizes would do, unless this model can take `img_size` inputs.

        `name` names the model in the message (default: its tag's arch, else its class).
        """
        height, width = _pair(img_size)
        if name is None:
            cfg = self.pretrained_cfg
            name = cfg.architecture if cfg is not None else type(self).__name__
        shown = f"{height}" if height == width else f"{height}x{width}"
        stride = self.total_stride
        if min(height, width) < stride:  # the last feature map would be under one pixel: padding only
            raise InputSizeError(f"{name} needs inputs of at least {stride} pixels (its total stride), "
                                 f"not {shown}")
        if not self.fixed_input_size:
            return
        if height % stride or width % stride:
            lower, upper = height // stride * stride, (height // stride + 1) * stride
            raise InputSizeError(f"{name} takes input sizes that are multiples of {stride}, not {shown}; "
                                 f"try {upper}" + (f" or {lower}" if lower else ""))
        built = self.default_img_size
        if (height, width) != built and not self.dynamic_img_size:
            size = height if height == width else (height, width)
            raise InputSizeError(f"{name} was built for {built[0]}x{built[1]} inputs, not {shown}; "
                                 f"create it with img_size={size} (or dynamic_img_size=True)")

    @property
    def first_conv(self) -> str:
        """Name of the convolution that reads the image (its weight is adapted to another in_chans on
        load)."""
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d) and module.in_channels == self.config.in_chans:
                return name
        raise AttributeError(f"{type(self).__name__} has no convolution over its {self.config.in_chans} "
                             "input channels")


DEFAULT_IMG_SIZE = 224  # the classic ImageNet evaluation size, for a model built without a tag


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


class FeatureExtractor(nn.Module):
    """`features_only=True`: a model whose forward returns the feature maps at `out_indices`, as NCHW tensors."""

    def __init__(self, model: ClassifierModel, out_indices: int | Sequence[int] | None = None):
        super().__init__()
        if out_indices is None:
            out_indices = model.default_out_indices
        self.out_indices = resolve_feature_indices(len(model.feature_info), out_indices)
        self.feature_info = [model.feature_info[i] for i in self.out_indices]
        model.reset_classifier(0)
        self.model = model
        self.pretrained_cfg = model.pretrained_cfg

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_intermediates(x, self.out_indices, intermediates_only=True, stop_early=True)
