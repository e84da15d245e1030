"""The interface every model family implements, with the one driver of its trunk: features, intermediates,
activation checkpointing and pruning."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .features import FeatureInfo, FeatureList, resolve_feature_indices

__all__ = ["ClassifierModel", "FeatureInfo", "FeatureList", "ModelConfig", "TrunkStep", "check_choice",
           "resolve_feature_indices"]

from ..errors import InputSizeError
from ..image_inputs import DEFAULT_IMG_SIZE, size_pair
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


# One step of a trunk: a submodule (stem, block, downsampling) or a bound method using the model's parameters.
TrunkStep = Callable[[torch.Tensor], torch.Tensor]


def check_choice(option: str, value: object, choices: Sequence[object]) -> None:
    """Raise a ValueError naming the option and its valid values if `value` is not one of `choices`."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {tuple(choices)}, got {value!r}")


class ClassifierModel(nn.Module):
    """Base of every visionzoo model: the shared classification and feature interface.

    A family sets `feature_info`, `num_features` and `num_classes` in its constructor and implements
    `trunk`, `forward_head` and `init_weights`. `num_features` is the channel width of `forward_features`; a
    head with a hidden layer also sets `head_hidden_size`. The class attributes declare what the family
    supports and how its trunk is laid out; the contract tests read them.

    The trunk is declared once, as an ordered list of steps (`trunk`), and `feature_info` names the module
    whose last step ends each feature level. From these two facts this class drives `forward_features`,
    `forward_intermediates`, activation checkpointing (`set_grad_checkpointing`) and
    `prune_intermediate_layers`: no family writes that loop.
    """

    supports_dynamic_img_size: ClassVar[bool] = False
    fixed_input_size: ClassVar[bool] = False  # True where the input size is part of the architecture (ViT)
    default_out_indices: ClassVar[int | tuple[int, ...]] = (0, 1, 2, 3, 4)
    # Depth levels for layer-wise lr decay: regexes over parameter names, input side first; the numbers a
    # pattern captures split it into one level per stage/block; unmatched parameters are the head.
    depth_groups: ClassVar[tuple[str, ...]] = ()

    # How the trunk is laid out; see `trunk`, `trunk_end` and `format_feature`.
    trunk_layout: ClassVar[str] = "NCHW"  # between steps: 'NCHW', 'NHWC' (channels-last) or 'NLC' (tokens)
    output_fmts: ClassVar[tuple[str, ...]] = ("NCHW",)  # the formats `forward_intermediates` offers
    # After the last step, `forward_features` runs these modules in order (a final norm, EfficientNet's
    # 1x1 conv); `prune_norm` removes them. A family may set them per instance where its config decides.
    norm_modules: tuple[str, ...] = ()
    # What `norm=True` normalises with them: 'all' levels (one width), the 'last' only, or '' (no effect).
    feature_norm: ClassVar[str] = ""
    head_modules: tuple[str, ...] = ("head",)  # used by `forward_head` alone; `prune_head` removes them
    num_prefix_tokens: int = 0  # class/register tokens in front of the spatial ones of an 'NLC' trunk

    num_classes: int
    num_features: int
    grad_checkpointing: bool = False
    head_pruned: bool = False  # prune_intermediate_layers removed the head: forward is forward_features

    @property
    def feature_info(self) -> FeatureList:
        """Every feature level of the model, in stride order (the reference's dicts, with its accessors)."""
        return self.__dict__["_feature_info"]

    @feature_info.setter
    def feature_info(self, levels: Sequence[FeatureInfo]) -> None:
        self.__dict__["_feature_info"] = FeatureList(levels)
        self.__dict__.pop("_level_end_cache", None)

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
    def output_fmt(self) -> str:
        """Layout of `forward_features` (the reference's attribute name): 'NHWC' for a channels-last trunk,
        else 'NCHW' (token models return (B, N, C) sequences whatever it says)."""
        return "NHWC" if self.trunk_layout == "NHWC" else "NCHW"

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
        x = self.forward_features(x)
        return x if self.head_pruned else self.forward_head(x)

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
        return nn.Identity() if self.head_pruned else self.get_submodule(self.classifier_module)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final linear layer with one for `num_classes` (0: none); optionally change the
        pooling. After a prune took the head away, the new head is the pooling and the linear layer alone
        (as in the reference), where the classifier's parent module survived the prune."""
        if self.head_pruned:
            self._restore_plain_head()
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
        """Fit a published checkpoint to this model: here, drop the keys of the modules pruned away.

        Families extend it to reshape tensors to their configuration (e.g. another img_size) and call it.
        """
        pruned = tuple(f"{name}." for name in self.__dict__.get("pruned_modules", ()))
        return {k: v for k, v in state_dict.items() if not k.startswith(pruned)} if pruned else state_dict

    # ---- Input size and architecture facts -----------------------------------------------------------------
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
        return size_pair(size)

    def feature_map_size(self, img_size: int | tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the last feature map for an input of `img_size` (partial windows count)."""
        stride = self.total_stride
        return tuple(-(-side // stride) for side in size_pair(img_size))

    def check_img_size(self, img_size: int | tuple[int, int], name: str | None = None) -> None:
        """Raise InputSizeError, saying which sizes would do, unless this model can take `img_size` inputs.

        `name` names the model in the message (default: its tag's arch, else its class).
        """
        height, width = size_pair(img_size)
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

    def fix_input_size(self, img_size: int | tuple[int, int]) -> None:
        """Compute once, in place, what `forward` would recompute on every call at `img_size`.

        For deployment at one input size (`visionzoo.optimize_for_inference`, export). Families whose
        forward does size-dependent work on the weights (a dynamic ViT's resampled position embedding,
        Hiera's abswin embedding) override this; the others only check that they can take the size.
        Raises InputSizeError for a size the model cannot take.
        """
        self.check_img_size(img_size)

    @property
    def first_conv(self) -> str:
        """Name of the convolution that reads the image (its weight is adapted to another in_chans on
        load)."""
        for name, module in self.named_modules():
            if isinstance(module, nn.Conv2d) and module.in_channels == self.config.in_chans:
                return name
        raise AttributeError(f"{type(self).__name__} has no convolution over its {self.config.in_chans} "
                             "input channels")

    def _restore_plain_head(self) -> None:
        parent_path = self.classifier_module.rpartition(".")[0]
        if parent_path and isinstance(self.get_submodule(parent_path), nn.Identity):
            self._check_head_kept()  # the whole head container went: no place for a classifier
        self.head_pruned = False
        # the pruned head's hidden layers are Identity now: its width is the pooled features'
        self.__dict__.pop("_head_hidden_size", None)

    def _check_head_kept(self) -> None:
        if self.head_pruned:
            raise ValueError(f"the head of this {type(self).__name__} was pruned (prune_intermediate_layers "
                             "or features_only); create the model again to give it a classifier")

    # ----- the trunk and its driver -----

    def trunk(self) -> list[TrunkStep]:
        """The trunk as ordered steps, each taking the previous step's output (the first takes the image).

        Steps are as fine as the blocks, so that checkpointing and pruning work per block; each feature level
        is the output of the last step inside its `feature_info` module. Containers a prune empties must
        stay iterable (an emptied `nn.Sequential` is kept), so write the list from the containers.
        """
        raise NotImplementedError(f"{type(self).__name__} does not declare its trunk")

    def trunk_end(self, x: torch.Tensor) -> torch.Tensor:
        """What `forward_features` applies after the last step: the `norm_modules`, in order."""
        for name in self.norm_modules:
            x = getattr(self, name)(x)
        return x

    def format_feature(self, x: torch.Tensor, level: int, image_size: torch.Size,
                       output_fmt: str) -> torch.Tensor:
        """A feature level's trunk tensor (prefix tokens removed) in `output_fmt`.

        The default covers the layouts: NCHW maps, channels-last maps, and token sequences that `token_grid`
        folds back into maps. A family whose tokens are ordered otherwise (Hiera) overrides it.
        """
        if self.trunk_layout == "NCHW":
            return x if output_fmt == "NCHW" else x.permute(0, 2, 3, 1)
        if self.trunk_layout == "NLC":
            if output_fmt == "NLC":
                return x
            height, width = self.token_grid(image_size)
            x = x.reshape(x.shape[0], height, width, x.shape[-1])
        return x.permute(0, 3, 1, 2).contiguous() if output_fmt == "NCHW" else x

    def token_grid(self, image_size: torch.Size) -> tuple[int, int]:
        """The (height, width) grid of an 'NLC' trunk's spatial tokens for an image of `image_size`."""
        raise NotImplementedError(f"{type(self).__name__} has no token grid")

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """In training, recompute each trunk step's activations in backward instead of storing them.

        Trades compute for memory (`torch.utils.checkpoint`, non-reentrant); outputs and gradients stay
        the same. Steps without parameters (activations, pooling) are run as they are.
        """
        self.grad_checkpointing = enable

    def _run_step(self, step: TrunkStep, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and self.training and isinstance(step, nn.Module) \
                and any(True for _ in step.parameters()):
            return checkpoint(step, x, use_reentrant=False)
        return step(x)

    def _step_names(self, steps: list[TrunkStep]) -> list[str | None]:
        """The module path of each step (None for a bound method)."""
        names = {id(module): name for name, module in self.named_modules()}
        return [names.get(id(step)) if isinstance(step, nn.Module) else None for step in steps]

    def _level_ends(self, steps: list[TrunkStep]) -> list[int | None]:
        """For each feature level, the index of the step that ends it (None once pruned away); cached."""
        ends = self.__dict__.get("_level_end_cache")
        if ends is None:
            # a pruned step left as an Identity makes no level
            pruned = set(self.__dict__.get("pruned_modules", ()))
            names = [None if name in pruned else name for name in self._step_names(steps)]
            ends = []
            for info in self.feature_info:
                inside = [i for i, name in enumerate(names)
                          if name is not None and (name == info.module or name.startswith(info.module + "."))]
                ends.append(inside[-1] if inside else None)
            if ends[0] is None:
                raise RuntimeError(f"{type(self).__name__}: no trunk step makes feature level 0 "
                                   f"({self.feature_info[0].module})")
            self.__dict__["_level_end_cache"] = ends
        return ends

    def check_output_fmt(self, output_fmt: str) -> None:
        """Raise a ValueError if `forward_intermediates` cannot give `output_fmt`."""
        check_choice("output_fmt", output_fmt, self.output_fmts)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> the trunk's final features (every step, then `trunk_end`), before the head's pooling."""
        for step in self.trunk():
            x = self._run_step(step, x)
        return self.trunk_end(x)

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None,
                              norm: bool = False, stop_early: bool = False, output_fmt: str = "NCHW",
                              intermediates_only: bool = False, return_prefix_tokens: bool = False):
        """The feature maps at `indices` of `feature_info`, and optionally the final features.

        Args:
            indices: None for every level, an int n for the last n, or a sequence of levels (negative from
                the end). After `prune_intermediate_layers`, the levels that are left.
            norm: apply the trunk's final norm to the maps where the model has one (`feature_norm`).
            stop_early: skip the steps after the last level requested.
            output_fmt: one of `output_fmts` ('NCHW'; 'NHWC' for channels-last trunks; 'NLC' for tokens).
            intermediates_only: return only the list of maps.
            return_prefix_tokens: pair each map with its class/register tokens (token models that have them).

        Returns:
            The list of maps if `intermediates_only`, else (final features, maps). The final features are
            those of `forward_features` when every step ran.
        """
        self.check_output_fmt(output_fmt)
        if return_prefix_tokens and self.trunk_layout != "NLC":
            raise ValueError(f"return_prefix_tokens applies to token models, not {type(self).__name__}")
        steps = self.trunk()
        ends = self._level_ends(steps)
        available = sum(end is not None for end in ends)
        take = resolve_feature_indices(available, indices)
        level_at = {ends[level]: level for level in take}
        stop = max(level_at) if stop_early else len(steps) - 1
        last_level = len(self.feature_info) - 1
        image_size = x.shape[-2:]
        taken, levels = [], []
        for index, step in enumerate(steps[: stop + 1]):
            x = self._run_step(step, x)
            if index in level_at:
                level = level_at[index]
                normed = norm and (self.feature_norm == "all"
                                   or (self.feature_norm == "last" and level == last_level))
                taken.append(self.trunk_end(x) if normed else x)
                levels.append(level)
        prefixes = None
        if self.num_prefix_tokens:
            prefixes = [t[:, : self.num_prefix_tokens] for t in taken]
            taken = [t[:, self.num_prefix_tokens:] for t in taken]
        intermediates = [self.format_feature(t, level, image_size, output_fmt)
                         for t, level in zip(taken, levels, strict=True)]
        if return_prefix_tokens and prefixes is not None:
            intermediates = list(zip(intermediates, prefixes, strict=True))
        if intermediates_only:
            return intermediates
        if stop == len(steps) - 1 or self.feature_norm == "all":
            x = self.trunk_end(x)
        return x, intermediates

    # ----- pruning -----

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        """Remove what the feature levels `indices` do not need; return those levels as absolute indices.

        The steps after the last level requested go; `prune_norm` removes the final norm (`norm_modules`),
        which also goes with those steps unless it fits every level; `prune_head` removes the head, as does
        pruning steps (the head was sized for the final features). Without a head, `forward` returns
        `forward_features`. `adapt_checkpoint` then drops the pruned modules' keys from a full checkpoint.
        """
        steps = self.trunk()
        ends = self._level_ends(steps)
        take = resolve_feature_indices(sum(end is not None for end in ends), indices)
        last = max(take)
        cut = ends[last]
        names = self._step_names(steps)
        pruned_end = cut < len(steps) - 1
        for index in reversed(range(cut + 1, len(steps))):
            if names[index] is None:
                raise RuntimeError(f"{type(self).__name__}: trunk step {index} is past a level but no module")
        self.remove_modules(names[index] for index in reversed(range(cut + 1, len(steps))))
        if prune_norm or (pruned_end and self.feature_norm != "all"):
            self.remove_modules(self.norm_modules)
        if pruned_end:
            self.num_features = self.feature_info[last].channels
        if prune_head or pruned_end:
            self.remove_head()
        return take

    def remove_head(self) -> None:
        """Remove the classifier (`head_modules`): `forward` then returns the pooled features."""
        self.remove_modules(self.head_modules)
        self.num_classes = 0
        self.head_pruned = True
        self.head_hidden_size = self.num_features

    def remove_modules(self, paths: Iterable[str]) -> None:
        """Remove the submodules at `paths`, in that order (see `_remove_module`), and forget what was
        cached about the trunk: the hook a family's own pruning (mobile's `extra_blocks`) calls."""
        for path in paths:
            self._remove_module(path)
        self.__dict__.pop("_level_end_cache", None)

    def _remove_module(self, path: str) -> None:
        """Remove the submodule at `path`: the last entry of a container is dropped, anything else becomes an
        Identity. Its checkpoint keys are remembered, for `adapt_checkpoint` to drop."""
        parent_path, _, name = path.rpartition(".")
        parent = self.get_submodule(parent_path) if parent_path else self
        if not isinstance(getattr(parent, name, None), nn.Module):
            return  # an optional module the model does not have (None)
        self.__dict__.setdefault("pruned_modules", []).append(path)
        if isinstance(parent, (nn.Sequential, nn.ModuleList)) and name == str(len(parent) - 1):
            del parent[-1]
        elif not isinstance(getattr(parent, name), nn.Identity):
            setattr(parent, name, nn.Identity())

