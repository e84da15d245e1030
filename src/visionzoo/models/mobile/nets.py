"""The mobile-net model: stem, the built stages, and an EfficientNet or MobileNetV3 head; and the variants.

Every variant is data: a `MobileNetConfig` whose `stages` is the table of its paper, one row per line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ...layers.activations import make_activation
from ...layers.conv_norm_act import BatchNormAct2d, make_conv2d
from ...layers.layer_scale import LayerScale
from ...layers.multi_query_attention import MultiQueryAttention2d
from ...layers.pool import global_pool
from ..base import ClassifierModel, TrunkStep, resolve_feature_indices
from .builder import STEM_STRIDE, build_stages
from .config import MobileNetConfig


class MobileNet(ClassifierModel):
    """MobileNetV1/V3/V4, EfficientNet and MobileNet-EdgeTPU-v2: conv stem, stages of blocks, head,
    classifier.

    Feature levels are the stem (where the first stage downsamples) and every stage output before the
    resolution halves, plus the last stage: strides 2, 4, 8, 16, 32.
    """

    classifier_module = "classifier"
    depth_groups = (r"^(?:conv_stem|bn1)\.", r"^blocks\.(\d+)\.(\d+)\.")

    def __init__(self, cfg: MobileNetConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.global_pool = cfg.global_pool
        self.global_pools = cfg.global_pools
        stem_chs = cfg.stem_width
        self.conv_stem = make_conv2d(cfg.in_chans, stem_chs, cfg.stem_kernel, STEM_STRIDE)
        self.bn1 = BatchNormAct2d(stem_chs, cfg.act)
        self.blocks, self.feature_info, final_chs = build_stages(cfg, stem_chs)

        self.pool_first = cfg.head_type == "mobilenetv3"
        if self.pool_first:
            # pooled first, so the wide 1x1 conv costs next to nothing; V4 normalises it, V3 has a bias
            self.conv_head = make_conv2d(final_chs, cfg.head_chs, 1, bias=not cfg.head_norm)
            self.norm_head = BatchNormAct2d(cfg.head_chs, cfg.act) if cfg.head_norm else nn.Identity()
            self.act2 = nn.Identity() if cfg.head_norm else make_activation(cfg.act, inplace=True)
            self.num_features = final_chs  # forward_features' width; the 1x1 conv is part of the head
            self.head_hidden_size = cfg.head_chs
        elif cfg.head_chs:
            self.conv_head = make_conv2d(final_chs, cfg.head_chs, 1)
            self.bn2 = BatchNormAct2d(cfg.head_chs, cfg.act)
            self.num_features = cfg.head_chs
        else:
            self.conv_head = nn.Identity()
            self.bn2 = nn.Identity()
            self.num_features = final_chs
        # EfficientNet's 1x1 conv and BN run before pooling, as the trunk's end; they prune with the head.
        self.norm_modules = () if self.pool_first else ("conv_head", "bn2")
        self.head_modules = (("conv_head", "norm_head", "act2", "classifier") if self.pool_first
                             else ("conv_head", "bn2", "classifier"))
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.classifier = (nn.Linear(self.head_hidden_size, cfg.num_classes) if cfg.num_classes > 0
                           else nn.Identity())

    @torch.no_grad()
    def init_weights(self) -> None:
        """TF-style init of the papers: conv weights normal with fan-out variance, BN at identity."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, (MultiQueryAttention2d, LayerScale)):
                module.reset_parameters()

    def trunk(self) -> list[TrunkStep]:
        return [self.conv_stem, self.bn1, *(block for stage in self.blocks for block in stage)]

    def prune_intermediate_layers(self, indices: int | Sequence[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True, extra_blocks: bool = False) -> list[int]:
        """As the base class; with `extra_blocks`, `indices` count the stem (0) and each stage of blocks
        (1..len(blocks)) instead of the feature levels, as the reference's option of that name."""
        if not extra_blocks:
            return super().prune_intermediate_layers(indices, prune_norm, prune_head)
        take = resolve_feature_indices(len(self.blocks) + 1, indices)
        last = max(take)
        self.remove_modules([*(f"blocks.{stage}" for stage in reversed(range(last, len(self.blocks)))),
                             *self.norm_modules])
        self.num_features = self.conv_stem.out_channels if last == 0 else self._stage_channels(last - 1)
        self.remove_head()
        return take

    def _stage_channels(self, stage: int) -> int:
        """Output channels of a stage of blocks: those of its last conv."""
        convs = [m for m in self.blocks[stage].modules() if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return global_pool(x, self.global_pool, keepdim=True)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self._pool(x)
        if self.pool_first:
            x = self.act2(self.norm_head(self.conv_head(x)))
        x = self.head_drop(x.flatten(1) if self.global_pool else x)
        return x if pre_logits else self.classifier(x)


# Settings shared within a generation; the stage tables below are each paper's, row for row.
_V1 = dict(stem_chs=32, act="relu6", head_chs=0)
_V3 = dict(stem_chs=16, act="hard_swish", se_gate="hard_sigmoid", se_act="relu", se_from_expanded=True,
           se_divisor=8, head_type="mobilenetv3", head_chs=1280)
_V4 = dict(head_type="mobilenetv3", head_chs=1280, head_norm=True)
_HYBRID = dict(_V4, layer_scale_init=1e-5)

# MobileNetV1 (Howard et al. 2017, Table 1), as separable-conv stages.
MOBILENETV1 = (
    ("dsa_r1_k3_s1_c64",),
    ("dsa_r2_k3_s2_c128",),
    ("dsa_r2_k3_s2_c256",),
    ("dsa_r6_k3_s2_c512",),
    ("dsa_r2_k3_s2_c1024",),
)

# MobileNetV3-Large (Howard et al. 2019, Table 1); the early stages keep relu.
MOBILENETV3_LARGE = (
    ("ds_r1_k3_s1_c16_nre",),
    ("ir_r1_k3_s2_e4_c24_nre", "ir_r1_k3_s1_e3_c24_nre"),
    ("ir_r3_k5_s2_e3_c40_se0.25_nre",),
    ("ir_r1_k3_s2_e6_c80", "ir_r1_k3_s1_e2.5_c80", "ir_r2_k3_s1_e2.3_c80"),
    ("ir_r2_k3_s1_e6_c112_se0.25",),
    ("ir_r3_k5_s2_e6_c160_se0.25",),
    ("cn_r1_k1_s1_c960",),
)

# EfficientNet-B0 (Tan & Le 2019, Table 1); the Lite versions drop squeeze-excite.
EFFICIENTNET_B0 = (
    ("ds_r1_k3_s1_c16_se0.25",),
    ("ir_r2_k3_s2_e6_c24_se0.25",),
    ("ir_r2_k5_s2_e6_c40_se0.25",),
    ("ir_r3_k3_s2_e6_c80_se0.25",),
    ("ir_r3_k5_s1_e6_c112_se0.25",),
    ("ir_r4_k5_s2_e6_c192_se0.25",),
    ("ir_r1_k3_s1_e6_c320_se0.25",),
)
EFFICIENTNET_LITE0 = tuple(tuple(row.replace("_se0.25", "") for row in stage) for stage in EFFICIENTNET_B0)

# MobileNet-EdgeTPU-v2-M (Akin et al. 2022): fused (er) blocks early, group convs of 64 channels.
MOBILENET_EDGETPU_V2_M = (
    ("cn_r1_k1_s1_c32",),
    ("er_r1_k3_s2_e8_c64", "er_r1_k3_s1_e4_g64_c64"),
    ("er_r1_k3_s2_e8_c80", "er_r1_k3_s1_e4_g64_c80", "er_r1_k3_s1_e4_c80", "er_r1_k3_s1_e4_g64_c80"),
    ("er_r1_k3_s2_e8_c160", "ir_r3_k3_s1_e4_c160"),
    ("ir_r1_k3_s1_e8_c192", "ir_r3_k3_s1_e4_c192"),
    ("ir_r1_k3_s2_e8_c240", "ir_r3_k3_s1_e4_c240"),
    ("ir_r1_k3_s1_e8_c320",),
)

# MobileNetV4 (Qin et al. 2024, appendix tables). uib rows: a = dw before the expansion, k = dw after it
# (ExtraDW: both; IB: k only; ConvNeXt-like: a only; FFN: neither).
MOBILENETV4_CONV_SMALL = (
    ("cn_r1_k3_s2_c32", "cn_r1_k1_s1_c32"),
    ("cn_r1_k3_s2_c96", "cn_r1_k1_s1_c64"),
    ("uib_r1_a5_k5_s2_e3_c96", "uib_r4_k3_s1_e2_c96", "uib_r1_a3_k0_s1_e4_c96"),
    ("uib_r1_a3_k3_s2_e6_c128", "uib_r1_a5_k5_s1_e4_c128", "uib_r1_k5_s1_e4_c128", "uib_r1_k5_s1_e3_c128",
     "uib_r2_k3_s1_e4_c128"),
    ("cn_r1_k1_s1_c960",),
)
MOBILENETV4_CONV_MEDIUM = (
    ("er_r1_k3_s2_e4_c48",),
    ("uib_r1_a3_k5_s2_e4_c80", "uib_r1_a3_k3_s1_e2_c80"),
    ("uib_r1_a3_k5_s2_e6_c160", "uib_r2_a3_k3_s1_e4_c160", "uib_r1_a3_k5_s1_e4_c160",
     "uib_r1_a3_k3_s1_e4_c160", "uib_r1_a3_k0_s1_e4_c160", "uib_r1_k0_s1_e2_c160", "uib_r1_a3_k0_s1_e4_c160"),
    ("uib_r1_a5_k5_s2_e6_c256", "uib_r1_a5_k5_s1_e4_c256", "uib_r2_a3_k5_s1_e4_c256", "uib_r1_k0_s1_e4_c256",
     "uib_r1_a3_k0_s1_e4_c256", "uib_r1_a3_k5_s1_e2_c256", "uib_r1_a5_k5_s1_e4_c256", "uib_r2_k0_s1_e4_c256",
     "uib_r1_a5_k0_s1_e2_c256"),
    ("cn_r1_k1_s1_c960",),
)
MOBILENETV4_CONV_LARGE = (
    ("er_r1_k3_s2_e4_c48",),
    ("uib_r1_a3_k5_s2_e4_c96", "uib_r1_a3_k3_s1_e4_c96"),
    ("uib_r1_a3_k5_s2_e4_c192", "uib_r3_a3_k3_s1_e4_c192", "uib_r1_a3_k5_s1_e4_c192",
     "uib_r5_a5_k3_s1_e4_c192", "uib_r1_a3_k0_s1_e4_c192"),
    ("uib_r4_a5_k5_s2_e4_c512", "uib_r1_a5_k0_s1_e4_c512", "uib_r1_a5_k3_s1_e4_c512",
     "uib_r2_a5_k0_s1_e4_c512", "uib_r1_a5_k3_s1_e4_c512", "uib_r1_a5_k5_s1_e4_c512",
     "uib_r3_a5_k0_s1_e4_c512"),
    ("cn_r1_k1_s1_c960",),
)
# Hybrids: mqa blocks interleaved in the last two stages; at stride 16 keys/values are downsampled by 2.
MOBILENETV4_HYBRID_MEDIUM = (
    ("er_r1_k3_s2_e4_c48",),
    ("uib_r1_a3_k5_s2_e4_c80", "uib_r1_a3_k3_s1_e2_c80"),
    ("uib_r1_a3_k5_s2_e6_c160", "uib_r1_k0_s1_e2_c160", "uib_r1_a3_k3_s1_e4_c160", "uib_r1_a3_k5_s1_e4_c160",
     "mqa_r1_k3_s1_h4_d64_v2_c160", "uib_r1_a3_k3_s1_e4_c160",
     "mqa_r1_k3_s1_h4_d64_v2_c160", "uib_r1_a3_k0_s1_e4_c160",
     "mqa_r1_k3_s1_h4_d64_v2_c160", "uib_r1_a3_k3_s1_e4_c160",
     "mqa_r1_k3_s1_h4_d64_v2_c160", "uib_r1_a3_k0_s1_e4_c160"),
    ("uib_r1_a5_k5_s2_e6_c256", "uib_r1_a5_k5_s1_e4_c256", "uib_r2_a3_k5_s1_e4_c256", "uib_r1_k0_s1_e2_c256",
     "uib_r1_a3_k5_s1_e2_c256", "uib_r1_k0_s1_e2_c256", "uib_r1_k0_s1_e4_c256",
     "mqa_r1_k3_s1_h4_d64_c256", "uib_r1_a3_k0_s1_e4_c256",
     "mqa_r1_k3_s1_h4_d64_c256", "uib_r1_a5_k5_s1_e4_c256",
     "mqa_r1_k3_s1_h4_d64_c256", "uib_r1_a5_k0_s1_e4_c256",
     "mqa_r1_k3_s1_h4_d64_c256", "uib_r1_a5_k0_s1_e4_c256"),
    ("cn_r1_k1_s1_c960",),
)
MOBILENETV4_HYBRID_LARGE = (
    ("er_r1_k3_s2_e4_c48",),
    ("uib_r1_a3_k5_s2_e4_c96", "uib_r1_a3_k3_s1_e4_c96"),
    ("uib_r1_a3_k5_s2_e4_c192", "uib_r3_a3_k3_s1_e4_c192", "uib_r1_a3_k5_s1_e4_c192",
     "uib_r2_a5_k3_s1_e4_c192",
     "mqa_r1_k3_s1_h8_d48_v2_c192", "uib_r1_a5_k3_s1_e4_c192",
     "mqa_r1_k3_s1_h8_d48_v2_c192", "uib_r1_a5_k3_s1_e4_c192",
     "mqa_r1_k3_s1_h8_d48_v2_c192", "uib_r1_a5_k3_s1_e4_c192",
     "mqa_r1_k3_s1_h8_d48_v2_c192", "uib_r1_a3_k0_s1_e4_c192"),
    ("uib_r4_a5_k5_s2_e4_c512", "uib_r1_a5_k0_s1_e4_c512", "uib_r1_a5_k3_s1_e4_c512",
     "uib_r2_a5_k0_s1_e4_c512", "uib_r1_a5_k3_s1_e4_c512", "uib_r1_a5_k5_s1_e4_c512",
     "mqa_r1_k3_s1_h8_d64_c512", "uib_r1_a5_k0_s1_e4_c512",
     "mqa_r1_k3_s1_h8_d64_c512", "uib_r1_a5_k0_s1_e4_c512",
     "mqa_r1_k3_s1_h8_d64_c512", "uib_r1_a5_k0_s1_e4_c512",
     "mqa_r1_k3_s1_h8_d64_c512", "uib_r1_a5_k0_s1_e4_c512"),
    ("cn_r1_k1_s1_c960",),
)

# A tiny net for tests: every block type of EfficientNet in five stages.
TEST_EFFICIENTNET = (
    ("cn_r1_k3_s1_c16_skip",),
    ("er_r1_k3_s2_e4_c24",),
    ("er_r1_k3_s2_e4_c32",),
    ("ir_r1_k3_s2_e4_c48_se0.25",),
    ("ir_r1_k3_s2_e4_c64_se0.25",),
)

VARIANTS = {
    "mobilenetv4_conv_small": MobileNetConfig(stages=MOBILENETV4_CONV_SMALL, stem_chs=32, **_V4),
    "mobilenetv4_conv_small_050": MobileNetConfig(
        stages=MOBILENETV4_CONV_SMALL, stem_chs=32, width_multiplier=0.5, fix_stem=True, **_V4),
    "mobilenetv4_conv_medium": MobileNetConfig(stages=MOBILENETV4_CONV_MEDIUM, stem_chs=32, **_V4),
    "mobilenetv4_conv_blur_medium": MobileNetConfig(
        stages=MOBILENETV4_CONV_MEDIUM, stem_chs=32, anti_alias="blur_zero_pad", **_V4),
    "mobilenetv4_conv_large": MobileNetConfig(stages=MOBILENETV4_CONV_LARGE, stem_chs=24, **_V4),
    "mobilenetv4_conv_aa_large": MobileNetConfig(
        stages=MOBILENETV4_CONV_LARGE, stem_chs=24, anti_alias="avg", **_V4),
    "mobilenetv4_hybrid_medium": MobileNetConfig(stages=MOBILENETV4_HYBRID_MEDIUM, stem_chs=32, **_HYBRID),
    "mobilenetv4_hybrid_large": MobileNetConfig(
        stages=MOBILENETV4_HYBRID_LARGE, stem_chs=24, act="gelu", **_HYBRID),
    "mobilenetv3_large_100": MobileNetConfig(stages=MOBILENETV3_LARGE, **_V3),
    "mobilenetv3_large_150d": MobileNetConfig(
        stages=MOBILENETV3_LARGE, width_multiplier=1.5, depth_multiplier=1.2, **_V3),
    "mobilenetv1_100": MobileNetConfig(stages=MOBILENETV1, **_V1),
    "mobilenetv1_100h": MobileNetConfig(stages=MOBILENETV1, **dict(_V1, head_chs=1024)),
    "mobilenetv1_125": MobileNetConfig(stages=MOBILENETV1, width_multiplier=1.25, **_V1),
    "efficientnet_b0": MobileNetConfig(stages=EFFICIENTNET_B0, act="swish"),
    "efficientnet_b1": MobileNetConfig(stages=EFFICIENTNET_B0, act="swish", depth_multiplier=1.1),
    "efficientnet_lite0": MobileNetConfig(stages=EFFICIENTNET_LITE0, act="relu6", fix_stem=True),
    "mobilenet_edgetpu_v2_m": MobileNetConfig(stages=MOBILENET_EDGETPU_V2_M, stem_chs=64, stem_kernel=5,
                                              head_chs=1344),
    "test_efficientnet": MobileNetConfig(stages=TEST_EFFICIENTNET, stem_chs=24, act="silu", head_chs=256,
                                         channel_round_limit=0.0),
}
