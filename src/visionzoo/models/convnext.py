"""ConvNeXt family: a patchify stem, four stages of depthwise-conv blocks, pool -> norm -> linear head.

Paper: Liu et al. 2022, "A ConvNet for the 2020s" (arXiv 2201.03545); the global response norm option is from
Woo et al. 2023, "ConvNeXt V2" (arXiv 2301.00808). The original implementation is
github.com/facebookresearch/ConvNeXt; module names follow the published `timm/` checkpoints, whose small
variants ('zepto', the overlapping 'ols' stem, RMS-style norms) are timm's own. Weights: Apache-2.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers.activations import make_activation
from ..layers.channels import make_divisible
from ..layers.drop import drop_path_or_identity, drop_path_rates
from ..layers.norm import NORM_NAMES, make_norm
from ..layers.pool import SAME_WIDTH_POOL_TYPES, check_pool_type, global_pool
from ..layers.weight_init import init_trunc_normal
from .base import ClassifierModel, FeatureInfo, ModelConfig, TrunkStep, check_choice

STEMS = ("patch", "overlap", "overlap_tiered", "overlap_act")


@dataclass(frozen=True)
class ConvNextConfig(ModelConfig):
    """Every knob of the ConvNeXt family."""

    depths: tuple[int, ...] = (3, 3, 9, 3)
    dims: tuple[int, ...] = (96, 192, 384, 768)
    kernel_sizes: int | tuple[int, ...] = 7  # depthwise kernel, one for all stages or one per stage
    mlp_ratio: float = 4.0
    layer_scale_init: float | None = 1e-6  # None: no layer scale
    stem: str = "patch"  # 'patch': one strided conv; 'overlap*': two 3x3 stride-2 convs (see convnext_stem)
    patch_size: int = 4
    norm: str = "layernorm"  # 'layernorm', 'rmsnorm' or 'simplenorm' (see visionzoo.layers.norm)
    norm_eps: float = 1e-6
    conv_mlp: bool = False  # 1x1 convs and channels-first norms in the blocks instead of linears on NHWC
    conv_bias: bool = True
    use_grn: bool = False  # global response norm inside the MLP (ConvNeXt V2)
    act: str = "gelu"
    global_pool: str = "avg"
    head_norm_first: bool = False  # norm -> pool -> fc instead of ConvNeXt's pool -> norm -> fc
    head_hidden_size: int | None = None  # a pre-logits linear + GELU layer of this width in the head

    def __post_init__(self):
        if len(self.depths) != len(self.dims):
            raise ValueError(f"depths {self.depths} and dims {self.dims} must have one entry per stage")
        if not isinstance(self.kernel_sizes, int) and len(self.kernel_sizes) != len(self.dims):
            raise ValueError(f"kernel_sizes {self.kernel_sizes} must be an int or have one entry per stage")
        check_choice("stem", self.stem, STEMS)
        check_choice("norm", self.norm, NORM_NAMES)
        check_pool_type(self.global_pool, SAME_WIDTH_POOL_TYPES)
        if self.head_norm_first and self.head_hidden_size:
            raise ValueError("head_hidden_size needs the pool -> norm head (head_norm_first=False)")

    def stage_kernel(self, stage: int) -> int:
        return self.kernel_sizes if isinstance(self.kernel_sizes, int) else self.kernel_sizes[stage]

    def norm2d(self, channels: int) -> nn.Module:
        """The channels-first norm used by the stem, the downsamples and the head."""
        return make_norm(self.norm, channels, self.norm_eps, channels_first=True)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's global response normalisation: channels compete through their total response.

    From the paper (arXiv 2301.00808, Sec. 3.2, Eqs. 1-4), for channel i of a map X: aggregate
    G_i = ||X_i||_2 over all positions; normalise N_i = G_i / (mean_j G_j + eps) (Eq. 2 writes the sum over
    channels, Algorithm 1 and the published weights the mean); calibrate X_i <- gamma_i * (X_i * N_i) +
    beta_i + X_i. With gamma = beta = 0, their init, the layer starts as the identity. `weight` and `bias`
    are gamma and beta, named as the checkpoints name them.
    """

    def __init__(self, dim: int, channels_first: bool, eps: float = 1e-6):
        super().__init__()
        # NCHW: channels on dim 1, positions on (2, 3); NHWC: positions on (1, 2), channels last
        self.channel_dim, self.spatial_dims = (1, (2, 3)) if channels_first else (-1, (1, 2))
        self.param_shape = (-1, 1, 1) if channels_first else (-1,)
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        response = torch.linalg.vector_norm(x, ord=2, dim=self.spatial_dims, keepdim=True)  # G
        normalised = response / (response.mean(dim=self.channel_dim, keepdim=True) + self.eps)  # N
        gamma, beta = self.weight.view(self.param_shape), self.bias.view(self.param_shape)
        return gamma * (x * normalised) + beta + x


class ConvNextMlp(nn.Module):
    """fc1 -> activation -> (GRN) -> fc2, by 1x1 convs on NCHW or by linears on NHWC."""

    def __init__(self, dim: int, hidden_dim: int, act: str, conv: bool, bias: bool, grn: bool):
        super().__init__()

        def project(i: int, o: int) -> nn.Module:
            return nn.Conv2d(i, o, 1, bias=bias) if conv else nn.Linear(i, o, bias=bias)

        self.fc1 = project(dim, hidden_dim)
        self.act = make_activation(act)
        self.grn = GlobalResponseNorm(hidden_dim, channels_first=conv) if grn else nn.Identity()
        self.fc2 = project(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.grn(self.act(self.fc1(x))))


class ConvNextBlock(nn.Module):
    """x + gamma * mlp(norm(dwconv(x))): the inverted bottleneck with a large depthwise kernel in front."""

    def __init__(self, cfg: ConvNextConfig, dim: int, kernel_size: int, drop_path: float):
        super().__init__()
        self.conv_mlp = cfg.conv_mlp
        self.conv_dw = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim,
                                 bias=cfg.conv_bias)
        self.norm = make_norm(cfg.norm, dim, cfg.norm_eps, channels_first=cfg.conv_mlp)
        self.mlp = ConvNextMlp(dim, int(cfg.mlp_ratio * dim), cfg.act, cfg.conv_mlp, cfg.conv_bias,
                               cfg.use_grn)
        # A bare parameter, not a LayerScale module: the checkpoints name it `blocks.N.gamma`.
        init = cfg.layer_scale_init
        self.gamma = nn.Parameter(torch.full((dim,), init)) if init is not None else None
        self.drop_path = drop_path_or_identity(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv_dw(x)
        if self.conv_mlp:
            x = self.mlp(self.norm(x))
        else:
            x = self.mlp(self.norm(x.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        if self.gamma is not None:
            x = x * self.gamma.view(1, -1, 1, 1)
        return shortcut + self.drop_path(x)


class ConvNextStage(nn.Module):
    """Optional downsample (norm, then a 2x2 stride-2 conv that changes the width), then the blocks."""

    def __init__(self, cfg: ConvNextConfig, in_dim: int, out_dim: int, stride: int, kernel_size: int,
                 drop_paths: Sequence[float]):
        super().__init__()
        if in_dim != out_dim or stride > 1:
            self.downsample = nn.Sequential(
                cfg.norm2d(in_dim),
                nn.Conv2d(in_dim, out_dim, kernel_size=stride, stride=stride, bias=cfg.conv_bias))
        else:
            self.downsample = nn.Identity()
        self.blocks = nn.Sequential(*(ConvNextBlock(cfg, out_dim, kernel_size, rate) for rate in drop_paths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


def convnext_stem(cfg: ConvNextConfig) -> tuple[nn.Sequential, int]:
    """The stem and its stride.

    'patch' is ConvNeXt's non-overlapping `patch_size` conv; the 'overlap' stems are two 3x3 stride-2 convs
    (stride 4), with a half-width first conv for 'overlap_tiered' and an activation between for 'overlap_act'.
    Both end in the channels-first norm.
    """
    dim = cfg.dims[0]
    if cfg.stem == "patch":
        conv = nn.Conv2d(cfg.in_chans, dim, cfg.patch_size, stride=cfg.patch_size, bias=cfg.conv_bias)
        return nn.Sequential(conv, cfg.norm2d(dim)), cfg.patch_size
    mid = make_divisible(dim // 2) if cfg.stem == "overlap_tiered" else dim
    layers = [nn.Conv2d(cfg.in_chans, mid, 3, stride=2, padding=1, bias=cfg.conv_bias)]
    if cfg.stem == "overlap_act":
        layers.append(make_activation(cfg.act))
    layers += [nn.Conv2d(mid, dim, 3, stride=2, padding=1, bias=cfg.conv_bias), cfg.norm2d(dim)]
    return nn.Sequential(*layers), 4


class ConvNextHead(nn.Module):
    """Global pool -> norm -> (hidden linear + GELU) -> dropout -> fc; the norm is left out for norm-first
    heads."""

    def __init__(self, cfg: ConvNextConfig, dim: int):
        super().__init__()
        self.global_pool = cfg.global_pool
        self.norm = cfg.norm2d(dim) if not cfg.head_norm_first else nn.Identity()
        if cfg.head_hidden_size:
            self.pre_logits = nn.Sequential()
            self.pre_logits.add_module("fc", nn.Linear(dim, cfg.head_hidden_size))
            self.pre_logits.add_module("act", make_activation("gelu"))
            self.num_features = cfg.head_hidden_size
        else:
            self.pre_logits = nn.Identity()
            self.num_features = dim
        self.drop = nn.Dropout(cfg.drop_rate)
        self.fc = nn.Linear(self.num_features, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # The norm is channels-first, so it runs on the (B, C, 1, 1) pooled map before flattening
        # (or on the whole map, unpooled, with global_pool '').
        x = self.norm(global_pool(x, self.global_pool, keepdim=True))
        x = self.drop(self.pre_logits(x.flatten(1) if self.global_pool else x))
        return x if pre_logits else self.fc(x)


class ConvNext(ClassifierModel):
    """ConvNeXt: stem, stages of ConvNextBlocks (stride 2 between stages), optional norm, head."""

    default_out_indices = (0, 1, 2, 3)
    depth_groups = (r"^stem\.", r"^stages\.(\d+)\.(?:downsample|blocks\.(\d+))\.")
    global_pools = SAME_WIDTH_POOL_TYPES  # the head's norm follows the pool
    norm_modules = ("norm_pre",)  # of norm-first heads; sized for the last stage
    feature_norm = "last"

    def __init__(self, cfg: ConvNextConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.stem, stride = convnext_stem(cfg)
        rates = drop_path_rates(cfg.drop_path_rate, sum(cfg.depths))
        stages, self.feature_info = [], []
        in_dim, start = cfg.dims[0], 0
        for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.dims, strict=True)):
            stage_stride = 1 if i == 0 else 2
            stride *= stage_stride
            stages.append(ConvNextStage(cfg, in_dim, dim, stage_stride, cfg.stage_kernel(i),
                                        rates[start:start + depth]))
            self.feature_info.append(FeatureInfo(dim, stride, f"stages.{i}"))
            in_dim, start = dim, start + depth
        self.stages = nn.Sequential(*stages)
        self.norm_pre = cfg.norm2d(in_dim) if cfg.head_norm_first else nn.Identity()
        self.head = ConvNextHead(cfg, in_dim)
        self.num_features = self.head.num_features

    @torch.no_grad()
    def init_weights(self) -> None:
        """Truncated-normal convs and linears, zero biases; norms and GRN at identity; layer scale at init."""
        init_trunc_normal(self)
        for module in self.modules():
            if isinstance(module, ConvNextBlock) and module.gamma is not None:
                nn.init.constant_(module.gamma, self.config.layer_scale_init)

    def trunk(self) -> list[TrunkStep]:
        return [self.stem, *(step for stage in self.stages for step in (stage.downsample, *stage.blocks))]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)


_ZEPTO = dict(depths=(2, 2, 4, 2), dims=(32, 64, 128, 256), conv_mlp=True, norm="simplenorm")

VARIANTS = {
    # 'rms' in timm's names: the blocks use SimpleNorm (scale by the unbiased std, no centring), not RMSNorm.
    "convnext_zepto_rms": ConvNextConfig(**_ZEPTO),
    "convnext_zepto_rms_ols": ConvNextConfig(**_ZEPTO, stem="overlap_act"),
}
