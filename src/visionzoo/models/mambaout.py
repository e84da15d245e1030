"""MambaOut: a MetaFormer of Gated CNN blocks, i.e. Mamba without its state-space model.

Paper: Yu & Wang 2024, "MambaOut: Do We Really Need Mamba for Vision?" (arXiv 2405.07992); original code
github.com/yuweihaoNUS/MambaOut. Module names follow the published `timm/` checkpoints (which also hold the
'_rw' variants trained by Ross Wightman) so that they load as they are. Weights: Apache-2.0.

The trunk runs channels-last (B, H, W, C): norms and linears act on the last dimension. Only the convolutions
(stem, downsampling, the depthwise token mixer) see NCHW, through a permute pair around each; the permutes
are views, and PyTorch runs the convolution in channels-last memory format without copying.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers.activations import make_activation
from ..layers.drop import drop_path_or_identity, drop_path_rates
from ..layers.layer_scale import layer_scale_or_identity
from ..layers.pool import check_pool_type, global_pool
from ..layers.weight_init import init_trunc_normal
from .base import ClassifierModel, FeatureInfo, ModelConfig, TrunkStep, check_choice

GLOBAL_POOLS = ("", "avg")  # the head norm follows the pool; the reference takes no other kind
DOWNSAMPLES = ("conv", "conv_nf")
HEADS = ("mlp_norm", "mlp")


@dataclass(frozen=True)
class MambaOutConfig(ModelConfig):
    """Every knob of the MambaOut family."""

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 576)
    expansion_ratio: float = 8 / 3  # block hidden width, relative to its input
    conv_ratio: float = 1.0  # share of the input width that goes through the depthwise conv
    kernel_size: int = 7
    act: str = "gelu"  # in the blocks and the stem
    stem_mid_norm: bool = True  # a norm between the stem's two convs
    downsample: str = "conv"  # 'conv': conv then norm; 'conv_nf': norm then conv
    layer_scale_init: float | None = None  # None: no layer scale
    head: str = "mlp_norm"  # 'mlp_norm': fc-act-norm-fc as in the paper; 'mlp': fc-act-fc
    head_mlp_ratio: float = 4.0
    # Both published heads use GELU, also in the SiLU-trunk variants.
    head_act: str = "gelu"
    global_pool: str = "avg"  # 'avg' or '' (no pooling)
    norm_eps: float = 1e-6

    def __post_init__(self):
        if len(self.depths) != len(self.dims):
            raise ValueError(f"depths {self.depths} and dims {self.dims} must have one entry per stage")
        check_choice("downsample", self.downsample, DOWNSAMPLES)
        check_choice("head", self.head, HEADS)
        check_pool_type(self.global_pool, GLOBAL_POOLS)


def _conv_channels_last(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Apply an NCHW convolution to a channels-last tensor, returning channels-last."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class Stem(nn.Module):
    """Two stride-2 3x3 convs (to half the width, then the full width): NCHW image in, NHWC stride-4 map
    out."""

    def __init__(self, cfg: MambaOutConfig):
        super().__init__()
        dim = cfg.dims[0]
        self.conv1 = nn.Conv2d(cfg.in_chans, dim // 2, 3, stride=2, padding=1)
        self.norm1 = nn.LayerNorm(dim // 2, eps=cfg.norm_eps) if cfg.stem_mid_norm else None
        self.act = make_activation(cfg.act)
        self.conv2 = nn.Conv2d(dim // 2, dim, 3, stride=2, padding=1)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        if self.norm1 is not None:
            x = self.norm1(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = self.conv2(self.act(x))
        return self.norm2(x.permute(0, 2, 3, 1))


class Downsample(nn.Module):
    """Stride-2 3x3 conv between stages, with a norm after it ('conv') or before it ('conv_nf')."""

    def __init__(self, in_dim: int, out_dim: int, norm_first: bool, eps: float):
        super().__init__()
        self.norm_first = norm_first
        self.norm = nn.LayerNorm(in_dim if norm_first else out_dim, eps=eps)
        self.conv = nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            return _conv_channels_last(self.conv, self.norm(x))
        return self.norm(_conv_channels_last(self.conv, x))


class GatedConvBlock(nn.Module):
    """Gated CNN block (the paper's Fig. 2): norm, one linear into gate / identity / conv branches, depthwise
    conv on the conv branch, gate * (identity, conv), linear back, layer scale, residual.

    Convolving only `conv_ratio * dim` channels is the paper's partial-channel trick for speed.
    """

    def __init__(self, cfg: MambaOutConfig, dim: int, drop_path: float):
        super().__init__()
        hidden = int(cfg.expansion_ratio * dim)
        conv_channels = int(cfg.conv_ratio * dim)
        # fc1's output, in order: gate (hidden), identity (hidden - conv), conv (conv) channels
        self.split_sizes = (hidden, hidden - conv_channels, conv_channels)
        self.norm = nn.LayerNorm(dim, eps=cfg.norm_eps)
        self.fc1 = nn.Linear(dim, 2 * hidden)
        self.act = make_activation(cfg.act)
        self.conv = nn.Conv2d(conv_channels, conv_channels, cfg.kernel_size, padding=cfg.kernel_size // 2,
                              groups=conv_channels)
        self.fc2 = nn.Linear(hidden, dim)
        self.ls = layer_scale_or_identity(dim, cfg.layer_scale_init)
        self.drop_path = drop_path_or_identity(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, identity, conv = self.fc1(self.norm(x)).split(self.split_sizes, dim=-1)
        conv = _conv_channels_last(self.conv, conv)
        y = self.fc2(self.act(gate) * torch.cat((identity, conv), dim=-1))
        return x + self.drop_path(self.ls(y))


class MambaOutStage(nn.Module):
    """An optional downsampling followed by a sequence of gated conv blocks."""

    def __init__(self, cfg: MambaOutConfig, index: int, drop_paths: Sequence[float]):
        super().__init__()
        dim = cfg.dims[index]
        if index == 0:
            self.downsample = nn.Identity()  # the stem already reduced by 4
        else:
            self.downsample = Downsample(cfg.dims[index - 1], dim, cfg.downsample == "conv_nf", cfg.norm_eps)
        self.blocks = nn.Sequential(*(GatedConvBlock(cfg, dim, rate) for rate in drop_paths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class MlpHead(nn.Module):
    """Pool, norm, fc-act(-norm) pre-logits, dropout, classifier; channels-last input."""

    def __init__(self, cfg: MambaOutConfig, in_dim: int):
        super().__init__()
        hidden = int(cfg.head_mlp_ratio * in_dim)
        self.global_pool = cfg.global_pool
        self.norm = nn.LayerNorm(in_dim, eps=cfg.norm_eps)
        layers: OrderedDict[str, nn.Module] = OrderedDict(fc=nn.Linear(in_dim, hidden),
                                                          act=make_activation(cfg.head_act))
        if cfg.head == "mlp_norm":
            layers["norm"] = nn.LayerNorm(hidden, eps=cfg.norm_eps)
        self.pre_logits = nn.Sequential(layers)
        self.num_features = hidden
        self.drop = nn.Dropout(cfg.drop_rate)
        self.fc = nn.Linear(hidden, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = global_pool(x, self.global_pool, dim=(1, 2))
        x = self.drop(self.pre_logits(self.norm(x)))
        return x if pre_logits else self.fc(x)


class MambaOut(ClassifierModel):
    """MambaOut: stem, four stages of gated CNN blocks with conv downsampling, and an MLP head."""

    default_out_indices = (0, 1, 2, 3)
    global_pools = GLOBAL_POOLS
    depth_groups = (r"^stem\.", r"^stages\.(\d+)\.(?:downsample|blocks\.(\d+))\.")
    trunk_layout = "NHWC"  # the blocks work channels-last
    output_fmts = ("NCHW", "NHWC")

    def __init__(self, cfg: MambaOutConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.stem = Stem(cfg)
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, start, self.feature_info = [], 0, []
        for i, depth in enumerate(cfg.depths):
            stages.append(MambaOutStage(cfg, i, rates[start:start + depth]))
            start += depth
            self.feature_info.append(FeatureInfo(cfg.dims[i], 4 * 2 ** i, f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.head = MlpHead(cfg, cfg.dims[-1])
        self.num_features = cfg.dims[-1]
        self.head_hidden_size = self.head.num_features

    @torch.no_grad()
    def init_weights(self) -> None:
        """Truncated-normal conv and linear weights with zero biases, as the paper trains from scratch."""
        init_trunc_normal(self)

    def trunk(self) -> list[TrunkStep]:
        """Stem, then each stage's downsampling and blocks; channels-last (B, H, W, C) after the stem."""
        return [self.stem, *(step for stage in self.stages for step in (stage.downsample, *stage.blocks))]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)


# Ross Wightman's '_rw' variants: no mid-stem norm, norm-first downsampling, layer scale, plain MLP head.
_RW = dict(stem_mid_norm=False, downsample="conv_nf", layer_scale_init=1e-6, head="mlp")
_BASE = (128, 256, 512, 768)

VARIANTS = {
    "mambaout_femto": MambaOutConfig(depths=(3, 3, 9, 3), dims=(48, 96, 192, 288)),
    # 'Kobe memorial' version: 24 blocks
    "mambaout_kobe": MambaOutConfig(depths=(3, 3, 15, 3), dims=(48, 96, 192, 288)),
    "mambaout_tiny": MambaOutConfig(depths=(3, 3, 9, 3), dims=(96, 192, 384, 576)),
    "mambaout_small": MambaOutConfig(depths=(3, 4, 27, 3), dims=(96, 192, 384, 576)),
    "mambaout_base": MambaOutConfig(depths=(3, 4, 27, 3), dims=_BASE),
    "mambaout_small_rw": MambaOutConfig(depths=(3, 4, 27, 3), dims=(96, 192, 384, 576), **_RW),
    "mambaout_base_short_rw": MambaOutConfig(
        depths=(3, 3, 25, 3), dims=_BASE, expansion_ratio=3.0, conv_ratio=1.25, **_RW),
    "mambaout_base_tall_rw": MambaOutConfig(
        depths=(3, 4, 30, 3), dims=_BASE, expansion_ratio=2.5, conv_ratio=1.25, **_RW),
    "mambaout_base_wide_rw": MambaOutConfig(
        depths=(3, 4, 27, 3), dims=_BASE, expansion_ratio=3.0, conv_ratio=1.5, act="silu", **_RW),
    "mambaout_base_plus_rw": MambaOutConfig(
        depths=(3, 4, 30, 3), dims=_BASE, expansion_ratio=3.0, conv_ratio=1.5, act="silu", **_RW),
}
