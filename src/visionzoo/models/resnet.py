"""ResNet family: basic or bottleneck residual blocks, with the 'bag of tricks' stem and shortcut options.

Papers: He et al. 2015, "Deep Residual Learning for Image Recognition" (arXiv 1512.03385); He et al. 2018,
"Bag of Tricks for Image Classification with Convolutional Neural Networks" (arXiv 1812.01187), whose ResNet-D
has the deep 3x3 stem and average-pool shortcuts; Xie et al. 2016, "Aggregated Residual Transformations"
(ResNeXt, arXiv 1611.05431) for grouped bottlenecks. Module names (`conv1`, `layer1`, `fc`, ...) follow
torchvision's original implementation and the published `timm/` checkpoints. Weights: Apache-2.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..layers.activations import make_activation
from ..layers.conv_norm_act import make_conv2d
from ..layers.downsample import shortcut_avg_pool
from ..layers.drop import drop_path_or_identity, drop_path_rates
from ..layers.pool import check_pool_type, global_pool
from .base import ClassifierModel, FeatureInfo, ModelConfig, TrunkStep, check_choice

BLOCKS = ("basic", "bottleneck")
STEMS = ("conv7", "deep", "deep_tiered")


@dataclass(frozen=True)
class ResNetConfig(ModelConfig):
    """Every knob of the ResNet family."""

    block: str = "bottleneck"  # 'basic' (two 3x3 convs) or 'bottleneck' (1x1, 3x3, 1x1; 4x wider output)
    depths: tuple[int, ...] = (3, 4, 6, 3)
    channels: tuple[int, ...] = (64, 128, 256, 512)  # per stage, before a bottleneck's 4x expansion
    cardinality: int = 1  # groups of the bottleneck's 3x3 conv (ResNeXt)
    base_width: int = 64  # bottleneck width per group, relative to 64 (ResNeXt's 'd')
    block_reduce_first: int = 1  # divides the width of each block's first conv
    # 'conv7': one 7x7 stride-2 conv of stem_width; 'deep': 3x3 convs of (w, w, 2w) for w = stem_width;
    # 'deep_tiered': 3x3 convs of (3w/4, w, 2w). Each is followed by BN, activation and a stride-2 max pool.
    stem: str = "conv7"
    stem_width: int = 64
    replace_stem_pool: bool = False  # a strided 3x3 conv + BN + activation instead of the max pool
    avg_down: bool = False  # shortcuts that downsample by 2x2 average pooling, then a 1x1 conv (ResNet-D)
    down_kernel_size: int = 1  # kernel of strided shortcut convs (without avg_down)
    act: str = "relu"
    global_pool: str = "avg"
    zero_init_last: bool = True  # init_weights zeroes each block's last BN scale: blocks start as identities

    def __post_init__(self):
        check_choice("block", self.block, BLOCKS)
        if len(self.depths) != len(self.channels):
            raise ValueError(f"depths {self.depths} and channels {self.channels} must have one entry per "
                             "stage")
        if self.block == "basic" and (self.cardinality != 1 or self.base_width != 64):
            raise ValueError("basic blocks have no groups: cardinality must be 1 and base_width 64")
        check_choice("stem", self.stem, STEMS)
        check_pool_type(self.global_pool)

    @property
    def expansion(self) -> int:
        return 4 if self.block == "bottleneck" else 1

    @property
    def stem_out(self) -> int:
        return self.stem_width * 2 if self.stem != "conv7" else self.stem_width


class BasicBlock(nn.Module):
    """relu(x + bn(conv3x3(relu(bn(conv3x3(x)))))): ResNet-18/34's block."""

    def __init__(self, cfg: ResNetConfig, in_chs: int, planes: int, stride: int, downsample: nn.Module | None,
                 drop_path: float):
        super().__init__()
        first = planes // cfg.block_reduce_first
        self.conv1 = make_conv2d(in_chs, first, 3, stride)
        self.bn1 = nn.BatchNorm2d(first)
        self.act1 = make_activation(cfg.act, inplace=True)
        self.conv2 = make_conv2d(first, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.drop_path = drop_path_or_identity(drop_path)
        self.downsample = downsample
        self.act2 = make_activation(cfg.act, inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(self.drop_path(x) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, grouped for ResNeXt), 1x1 expand, each with BN; activation after the sum."""

    def __init__(self, cfg: ResNetConfig, in_chs: int, planes: int, stride: int, downsample: nn.Module | None,
                 drop_path: float):
        super().__init__()
        width = math.floor(planes * cfg.base_width / 64) * cfg.cardinality
        first = width // cfg.block_reduce_first
        out_chs = planes * cfg.expansion
        self.conv1 = make_conv2d(in_chs, first, 1)
        self.bn1 = nn.BatchNorm2d(first)
        self.act1 = make_activation(cfg.act, inplace=True)
        # The stride sits on the 3x3 conv (ResNet v1.5), not on the first 1x1 as in the 2015 paper.
        self.conv2 = make_conv2d(first, width, 3, stride, groups=cfg.cardinality)
        self.bn2 = nn.BatchNorm2d(width)
        self.act2 = make_activation(cfg.act, inplace=True)
        self.conv3 = make_conv2d(width, out_chs, 1)
        self.bn3 = nn.BatchNorm2d(out_chs)
        self.drop_path = drop_path_or_identity(drop_path)
        self.downsample = downsample
        self.act3 = make_activation(cfg.act, inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return self.act3(self.drop_path(x) + shortcut)


def make_shortcut(cfg: ResNetConfig, in_chs: int, out_chs: int, stride: int) -> nn.Sequential:
    """Projection shortcut for a block that changes width or resolution.

    Plain: a (strided) conv + BN, which with a 1x1 kernel skips 3 of 4 pixels. ResNet-D (`avg_down`): average
    2x2 pooling first, so that every input pixel reaches the shortcut, then a 1x1 conv + BN.
    """
    if cfg.avg_down:
        pool = shortcut_avg_pool(stride)
        return nn.Sequential(pool, make_conv2d(in_chs, out_chs, 1), nn.BatchNorm2d(out_chs))
    kernel = cfg.down_kernel_size if stride > 1 else 1
    return nn.Sequential(make_conv2d(in_chs, out_chs, kernel, stride), nn.BatchNorm2d(out_chs))


def make_stem_conv(cfg: ResNetConfig) -> nn.Module:
    """The stem's convs (the published checkpoints call this `conv1`); BN and activation follow as bn1,
    act1."""
    if cfg.stem == "conv7":
        return make_conv2d(cfg.in_chans, cfg.stem_width, 7, stride=2)
    width = cfg.stem_width
    first = 3 * (width // 4) if cfg.stem == "deep_tiered" else width
    return nn.Sequential(
        make_conv2d(cfg.in_chans, first, 3, stride=2), nn.BatchNorm2d(first),
        make_activation(cfg.act, inplace=True),
        make_conv2d(first, width, 3), nn.BatchNorm2d(width), make_activation(cfg.act, inplace=True),
        make_conv2d(width, cfg.stem_out, 3))


def make_stem_pool(cfg: ResNetConfig) -> nn.Module:
    """The stem's stride-2 reduction after bn1/act1 (named `maxpool` in the checkpoints, even as a conv)."""
    if cfg.replace_stem_pool:
        width = cfg.stem_out
        return nn.Sequential(make_conv2d(width, width, 3, stride=2), nn.BatchNorm2d(width),
                             make_activation(cfg.act, inplace=True))
    return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class ResNet(ClassifierModel):
    """ResNet / ResNeXt: stem (conv, BN, activation, pool), four stages `layer1..4`, global pool and `fc`."""

    default_out_indices = (0, 1, 2, 3, 4)
    classifier_module = "fc"
    depth_groups = (r"^(?:conv1|bn1)\.", r"^layer(\d+)\.(\d+)\.")
    head_modules = ("fc",)

    def __init__(self, cfg: ResNetConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.global_pool = cfg.global_pool
        self.conv1 = make_stem_conv(cfg)
        self.bn1 = nn.BatchNorm2d(cfg.stem_out)
        self.act1 = make_activation(cfg.act, inplace=True)
        self.maxpool = make_stem_pool(cfg)
        self.feature_info = [FeatureInfo(cfg.stem_out, 2, "act1")]

        block_cls = Bottleneck if cfg.block == "bottleneck" else BasicBlock
        rates = iter(drop_path_rates(cfg.drop_path_rate, sum(cfg.depths)))
        in_chs, reduction = cfg.stem_out, 4
        self.stage_names = []
        for i, (depth, planes) in enumerate(zip(cfg.depths, cfg.channels, strict=True)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            out_chs = planes * cfg.expansion
            blocks = []
            for j in range(depth):
                block_stride = stride if j == 0 else 1
                shortcut = (make_shortcut(cfg, in_chs, out_chs, block_stride)
                            if block_stride != 1 or in_chs != out_chs else None)
                blocks.append(block_cls(cfg, in_chs, planes, block_stride, shortcut, next(rates)))
                in_chs = out_chs
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.feature_info.append(FeatureInfo(out_chs, reduction, name))

        self.num_features = in_chs
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.fc = nn.Linear(self.head_hidden_size, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()

    @torch.no_grad()
    def init_weights(self) -> None:
        """He-normal (fan-out) convs, BN at identity, default linear init; optionally zero last BN scales."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, (nn.BatchNorm2d, nn.Linear)):
                module.reset_parameters()
            if self.config.zero_init_last and isinstance(module, (BasicBlock, Bottleneck)):
                nn.init.zeros_(module.last_bn.weight)

    def trunk(self) -> list[TrunkStep]:
        """The stem's conv, BN, activation (feature level 0) and pool, then the blocks of `layer1..4`."""
        blocks = [block for name in self.stage_names for block in getattr(self, name)]
        return [self.conv1, self.bn1, self.act1, self.maxpool, *blocks]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(global_pool(x, self.global_pool))
        return x if pre_logits else self.fc(x)


VARIANTS = {
    "resnet50d": ResNetConfig(depths=(3, 4, 6, 3), stem="deep", stem_width=32, avg_down=True),
}
