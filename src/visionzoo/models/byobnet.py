"""ByobNet ("bring your own blocks"): a conv net whose stages are rows of block specs, so a new net is a
config.

The design follows timm's ByobNet (Ross Wightman, 2021), which generalises the GPU-Efficient Networks of Lin
et al. 2020, "Neural Architecture Design for GPU-Efficient Networks" (arXiv 2006.14090): a 3x3 stem, then
stages of residual blocks chosen per stage (basic, bottleneck, dark, edge residual, depthwise-separable,
inverted residual), an optional final 1x1 conv and a pooled linear head. Module names follow the published
`timm/` checkpoints so that they load as they are. Weights: Apache-2.0.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..layers.activations import make_activation
from ..layers.channels import conv_groups, make_divisible
from ..layers.conv_norm_act import ConvNormAct
from ..layers.downsample import shortcut_avg_pool
from ..layers.drop import drop_path_or_identity, drop_path_rates
from ..layers.pool import check_pool_type, global_pool, pooled_width
from .base import ClassifierModel, FeatureInfo, ModelConfig, TrunkStep, check_choice

DOWNSAMPLES = ("avg", "conv1x1", "")
ATTENTIONS = ("se", "")


@dataclass(frozen=True)
class StageSpec:
    """One stage, as a row of an architecture table: `depth` blocks of `type`, the first with `stride`.

    type: 'basic' (kxk, kxk), 'bottle' (1x1, kxk, 1x1), 'dark' (1x1, kxk), 'edge' (kxk, 1x1),
        'ds' (depthwise kxk, 1x1) or 'ir' (1x1 expand, depthwise kxk, 1x1 project).
    group_size: channels per group of the block's grouped conv; 0 a dense conv, 1 depthwise.
    bottle_ratio: the block's middle width relative to its output ('ir': to its input, i.e. the expansion).
    attn: channel attention inside the blocks, 'se' or '' (none); None takes the net's `attn`.
    """

    type: str
    depth: int
    channels: int
    stride: int = 2
    group_size: int = 0
    bottle_ratio: float = 1.0
    kernel_size: int = 3
    attn: str | None = None

    def __post_init__(self):
        if self.type not in BLOCK_TYPES:
            raise ValueError(f"block type must be one of {sorted(BLOCK_TYPES)}, got {self.type!r}")
        if self.attn is not None and self.attn not in ATTENTIONS:
            raise ValueError(f"attn must be one of {ATTENTIONS} or None, got {self.attn!r}")


@dataclass(frozen=True)
class ByobNetConfig(ModelConfig):
    """Every knob of the ByobNet family."""

    stages: tuple[StageSpec, ...] = ()
    stem_chs: int = 32  # a single stride-2 3x3 conv
    # shortcut where a block changes shape: 'avg' (pool + 1x1), 'conv1x1', '' (none)
    downsample: str = "conv1x1"
    width_factor: float = 1.0  # scales every stage's channels (and the stem's)
    num_features: int = 0  # width of a final 1x1 conv; 0: none
    act: str = "relu"
    attn: str = ""  # the blocks' default channel attention: 'se' or ''
    se_ratio: float = 1 / 16
    global_pool: str = "avg"

    def __post_init__(self):
        check_choice("downsample", self.downsample, DOWNSAMPLES)
        check_choice("attn", self.attn, ATTENTIONS)
        check_pool_type(self.global_pool)
        if not self.stages:
            raise ValueError("a ByobNet needs at least one stage")


@dataclass(frozen=True)
class BlockArgs:
    """What one block is built from, once the stage row and the net's defaults are resolved."""

    in_chs: int
    out_chs: int
    stride: int
    kernel_size: int
    group_size: int
    bottle_ratio: float
    attn: str
    se_ratio: float
    act: str
    downsample: str
    drop_path: float

    def groups(self, channels: int) -> int:
        """Groups of the block's grouped conv over `channels` channels (group_size 0: one group)."""
        return conv_groups(channels, self.group_size)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2017): per-channel gates from the globally pooled input.

    The squeeze width is `channels * ratio` rounded to a multiple of 8, as the published checkpoints have it.
    """

    def __init__(self, channels: int, ratio: float, act: str = "relu"):
        super().__init__()
        squeezed = make_divisible(channels * ratio, 8, round_limit=0.0)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = make_activation(act, inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))).sigmoid()


class DownsampleAvg(nn.Module):
    """Shortcut of a block that changes shape, as in ResNet-D: 2x2 average pool (if strided), then 1x1 conv
    + BN."""

    def __init__(self, in_chs: int, out_chs: int, stride: int):
        super().__init__()
        self.pool = shortcut_avg_pool(stride)
        self.conv = ConvNormAct(in_chs, out_chs, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


def make_shortcut(args: BlockArgs) -> nn.Module | None:
    """Identity where the block keeps its shape, else the net's downsample; None: the block has no
    shortcut."""
    if args.in_chs == args.out_chs and args.stride == 1:
        return nn.Identity()
    if args.downsample == "avg":
        return DownsampleAvg(args.in_chs, args.out_chs, args.stride)
    if args.downsample == "conv1x1":
        return ConvNormAct(args.in_chs, args.out_chs, 1, args.stride, act=None)
    return None


class ResidualBlock(nn.Module, abc.ABC):
    """Base of every block: act(drop_path(body(x)) + shortcut(x)).

    The contract, checked when a subclass is defined and when a block is made:
    - `body` names the layers that forward runs, in order; `build` registers exactly these, in this order,
      under the checkpoints' names (`conv1_1x1`, `attn`, ...), hence no nested Sequential.
    - `last_conv` names the body's last ConvNormAct: `ByobNet.init_weights` zeroes its BN (`last_norm`) so
      that the block starts as its shortcut.
    - `linear_out` leaves out the final activation (the linear bottleneck of inverted residuals).
    The base class registers the shortcut before the body, drop path and activation after it, in the
    checkpoints' module order.
    """

    body: ClassVar[tuple[str, ...]]
    last_conv: ClassVar[str]
    linear_out: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        body, last_conv = getattr(cls, "body", ()), getattr(cls, "last_conv", None)
        if last_conv not in body:
            raise TypeError(f"{cls.__name__}: declare `body` (its layers, in order) and `last_conv` (one of "
                            f"them, the conv whose BN ends the branch); got body={body}, "
                            f"last_conv={last_conv!r}")

    def __init__(self, args: BlockArgs):
        super().__init__()
        self.shortcut = make_shortcut(args)
        self.build(args)
        built = [name for name in self._modules if name != "shortcut"]
        if built != list(self.body):
            raise TypeError(f"{type(self).__name__}.build registered {built}; its `body` declares "
                            f"{list(self.body)}: register exactly those layers, in that order")
        if not isinstance(getattr(self, self.last_conv), ConvNormAct):
            raise TypeError(f"{type(self).__name__}.last_conv {self.last_conv!r} must be a ConvNormAct")
        self.drop_path = drop_path_or_identity(args.drop_path)
        self.act = nn.Identity() if self.linear_out else make_activation(args.act, inplace=True)

    @abc.abstractmethod
    def build(self, args: BlockArgs) -> None:
        """Register the layers named in `body`, in order."""

    @property
    def last_norm(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch."""
        return getattr(self, self.last_conv).bn

    def attention(self, args: BlockArgs, channels: int) -> nn.Module:
        return SqueezeExcite(channels, args.se_ratio) if args.attn == "se" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for name in self.body:
            out = getattr(self, name)(out)
        out = self.drop_path(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class BasicBlock(ResidualBlock):
    """ResNet basic block: strided kxk, then grouped kxk, channel attention on the output."""

    body = ("conv1_kxk", "conv2_kxk", "attn_last")
    last_conv = "conv2_kxk"

    def build(self, args: BlockArgs) -> None:
        mid = make_divisible(args.out_chs * args.bottle_ratio)
        self.conv1_kxk = ConvNormAct(args.in_chs, mid, args.kernel_size, args.stride, act=args.act)
        self.conv2_kxk = ConvNormAct(mid, args.out_chs, args.kernel_size, groups=args.groups(mid), act=None)
        self.attn_last = self.attention(args, args.out_chs)


class BottleneckBlock(ResidualBlock):
    """ResNet bottleneck: 1x1 to the middle width, strided grouped kxk, attention, 1x1 out."""

    body = ("conv1_1x1", "conv2_kxk", "attn", "conv3_1x1")
    last_conv = "conv3_1x1"

    def build(self, args: BlockArgs) -> None:
        mid = make_divisible(args.out_chs * args.bottle_ratio)
        self.conv1_1x1 = ConvNormAct(args.in_chs, mid, 1, act=args.act)
        self.conv2_kxk = ConvNormAct(mid, mid, args.kernel_size, args.stride, groups=args.groups(mid),
                                     act=args.act)
        self.attn = self.attention(args, mid)
        self.conv3_1x1 = ConvNormAct(mid, args.out_chs, 1, act=None)


class DarkBlock(ResidualBlock):
    """DarkNet-style block: 1x1, then strided grouped kxk, attention on the output."""

    body = ("conv1_1x1", "conv2_kxk", "attn_last")
    last_conv = "conv2_kxk"

    def build(self, args: BlockArgs) -> None:
        mid = make_divisible(args.out_chs * args.bottle_ratio)
        self.conv1_1x1 = ConvNormAct(args.in_chs, mid, 1, act=args.act)
        self.conv2_kxk = ConvNormAct(mid, args.out_chs, args.kernel_size, args.stride,
                                     groups=args.groups(mid), act=None)
        self.attn_last = self.attention(args, args.out_chs)


class EdgeBlock(ResidualBlock):
    """Edge-residual-style block (the dark block's convs swapped): strided grouped kxk, attention, 1x1."""

    body = ("conv1_kxk", "attn", "conv2_1x1")
    last_conv = "conv2_1x1"

    def build(self, args: BlockArgs) -> None:
        mid = make_divisible(args.out_chs * args.bottle_ratio)
        self.conv1_kxk = ConvNormAct(args.in_chs, mid, args.kernel_size, args.stride, groups=args.groups(mid),
                                     act=args.act)
        self.attn = self.attention(args, mid)
        self.conv2_1x1 = ConvNormAct(mid, args.out_chs, 1, act=None)


class DepthwiseSeparableBlock(ResidualBlock):
    """Depthwise-separable conv (MobileNet v1, EfficientNet 'ds'): strided depthwise kxk, attention, linear
    1x1."""

    body = ("conv_dw", "attn", "conv_pw")
    last_conv = "conv_pw"
    linear_out = True

    def build(self, args: BlockArgs) -> None:
        self.conv_dw = ConvNormAct(args.in_chs, args.in_chs, args.kernel_size, args.stride,
                                   groups=args.in_chs, act=args.act)
        self.attn = self.attention(args, args.in_chs)
        self.conv_pw = ConvNormAct(args.in_chs, args.out_chs, 1, act=None)


class InvertedResidualBlock(ResidualBlock):
    """Inverted residual (MobileNet v2): 1x1 expand by `bottle_ratio`, strided depthwise kxk, attention,
    linear 1x1."""

    body = ("conv_pw", "conv_dw", "attn", "conv_pwl")
    last_conv = "conv_pwl"
    linear_out = True

    def build(self, args: BlockArgs) -> None:
        mid = make_divisible(args.in_chs * args.bottle_ratio)
        self.conv_pw = ConvNormAct(args.in_chs, mid, 1, act=args.act)
        self.conv_dw = ConvNormAct(mid, mid, args.kernel_size, args.stride, groups=mid, act=args.act)
        self.attn = self.attention(args, mid)
        self.conv_pwl = ConvNormAct(mid, args.out_chs, 1, act=None)


BLOCK_TYPES: dict[str, type[ResidualBlock]] = {
    "basic": BasicBlock,
    "bottle": BottleneckBlock,
    "dark": DarkBlock,
    "edge": EdgeBlock,
    "ds": DepthwiseSeparableBlock,
    "ir": InvertedResidualBlock,
}


class ClassifierHead(nn.Module):
    """Global pooling, dropout and a linear classifier."""

    def __init__(self, in_features: int, num_classes: int, pool: str, drop_rate: float):
        super().__init__()
        self.global_pool = pool
        self.drop = nn.Dropout(drop_rate)
        width = pooled_width(pool, in_features)
        self.fc = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(global_pool(x, self.global_pool))
        return x if pre_logits else self.fc(x)


class ByobNet(ClassifierModel):
    """Stem, stages of blocks as the config lists them, optional final 1x1 conv, pooled linear head.

    Feature levels are the output of the stem and of every stage that a strided stage follows, then the
    last stage's (through the final conv).
    """

    default_out_indices = (0, 1, 2, 3, 4)
    depth_groups = (r"^stem\.", r"^stages\.(\d+)\.(\d+)\.")

    def __init__(self, cfg: ByobNetConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        stem_chs = int(round(cfg.stem_chs * cfg.width_factor))
        self.stem = ConvNormAct(cfg.in_chans, stem_chs, 3, 2, act=cfg.act)

        rates = iter(drop_path_rates(cfg.drop_path_rate, sum(s.depth for s in cfg.stages)))
        # Feature levels: the output before each strided stage (the stem's included), then the last stage's.
        self.feature_info, chs, reduction, stages = [], stem_chs, 2, []
        for index, spec in enumerate(cfg.stages):
            if spec.stride > 1:
                module = f"stages.{index - 1}" if index else "stem"
                self.feature_info.append(FeatureInfo(chs, reduction, module))
            out_chs = make_divisible(spec.channels * cfg.width_factor)
            blocks = []
            for block_index in range(spec.depth):
                args = BlockArgs(
                    in_chs=chs, out_chs=out_chs, stride=spec.stride if block_index == 0 else 1,
                    kernel_size=spec.kernel_size, group_size=spec.group_size, bottle_ratio=spec.bottle_ratio,
                    attn=cfg.attn if spec.attn is None else spec.attn, se_ratio=cfg.se_ratio, act=cfg.act,
                    downsample=cfg.downsample, drop_path=next(rates))
                blocks.append(BLOCK_TYPES[spec.type](args))
                chs = out_chs
            reduction *= spec.stride
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

        if cfg.num_features:
            self.num_features = int(round(cfg.num_features * cfg.width_factor))
            self.final_conv = ConvNormAct(chs, self.num_features, 1, act=cfg.act)
        else:
            self.num_features = chs
            self.final_conv = nn.Identity()
        self.feature_info.append(FeatureInfo(self.num_features, reduction, "final_conv"))
        self.head = ClassifierHead(self.num_features, cfg.num_classes, cfg.global_pool, cfg.drop_rate)

    @torch.no_grad()
    def init_weights(self) -> None:
        """He (fan-out) convs, unit BN, small linear head; each block's last BN zeroed so it starts as
        identity."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, ResidualBlock) and module.shortcut is not None:
                nn.init.zeros_(module.last_norm.weight)

    def trunk(self) -> list[TrunkStep]:
        return [self.stem, *(block for stage in self.stages for block in stage), self.final_conv]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)


_SE_QUARTER = dict(attn="se", se_ratio=0.25)

VARIANTS = {
    "test_byobnet": ByobNetConfig(
        stages=(
            StageSpec("edge", depth=1, channels=32, bottle_ratio=0.5),
            StageSpec("dark", depth=1, channels=64, bottle_ratio=0.5),
            StageSpec("basic", depth=1, channels=128, group_size=32, bottle_ratio=0.25),
            StageSpec("bottle", depth=1, channels=256, group_size=64, bottle_ratio=0.25),
        ),
        stem_chs=24, downsample="avg", **_SE_QUARTER),
}
