"""ByobNet configurations beyond the registered variant: the generic tests only see `test_byobnet`."""

from __future__ import annotations

import math

import pytest
import torch

from tests.reference import assert_outputs_match
from visionzoo.layers.conv_norm_act import ConvNormAct
from visionzoo.models.byobnet import BLOCK_TYPES, BlockArgs, ByobNet, ByobNetConfig, ResidualBlock, StageSpec

timm = pytest.importorskip("timm")


def test_config_the_reference_can_express_matches_it():
    """Conv1x1 shortcuts, a stride-1 stage, grouped and depthwise convs, a final conv, width factor, SE per
    stage."""
    from timm.models.byobnet import ByoBlockCfg, ByoModelCfg
    from timm.models.byobnet import ByobNet as ReferenceNet

    reference_cfg = ByoModelCfg(
        blocks=(
            ByoBlockCfg(type="basic", d=2, c=32, s=2, gs=0, br=1.0),
            ByoBlockCfg(type="bottle", d=2, c=48, s=2, gs=1, br=3.0, attn_layer=""),
            ByoBlockCfg(type="dark", d=1, c=64, s=1, gs=8, br=0.5),
            ByoBlockCfg(type="edge", d=2, c=96, s=2, gs=0, br=0.75),
        ),
        stem_chs=16, stem_pool="", downsample="conv1x1", num_features=128, width_factor=1.25,
        act_layer="silu", attn_layer="se", attn_kwargs=dict(rd_ratio=0.25),
    )
    ours_cfg = ByobNetConfig(
        stages=(
            StageSpec("basic", depth=2, channels=32),
            StageSpec("bottle", depth=2, channels=48, group_size=1, bottle_ratio=3.0, attn=""),
            StageSpec("dark", depth=1, channels=64, stride=1, group_size=8, bottle_ratio=0.5),
            StageSpec("edge", depth=2, channels=96, bottle_ratio=0.75),
        ),
        stem_chs=16, downsample="conv1x1", num_features=128, width_factor=1.25, act="silu", attn="se",
        se_ratio=0.25, num_classes=10,
    )
    reference = ReferenceNet(reference_cfg, num_classes=10)
    ours = ByobNet(ours_cfg)
    assert [(f.channels, f.reduction, f.module) for f in ours.feature_info] == \
        [(f["num_chs"], f["reduction"], f["module"]) for f in reference.feature_info]
    assert_outputs_match(ours, reference, [(97, 75)])


def test_depthwise_separable_and_inverted_residual_stages():
    cfg = ByobNetConfig(
        stages=(
            StageSpec("ds", depth=1, channels=16, stride=1),
            StageSpec("ir", depth=2, channels=24, bottle_ratio=4.0, attn="se"),
            StageSpec("ir", depth=2, channels=40, kernel_size=5, bottle_ratio=6.0),
            StageSpec("ds", depth=1, channels=40, stride=2, kernel_size=5),
        ),
        stem_chs=16, downsample="", num_features=64, drop_path_rate=0.1, num_classes=5,
    )
    model = ByobNet(cfg)
    model.init_weights()
    # the stride-1 first stage leaves the stem out of the feature levels
    assert [(f.module, f.reduction) for f in model.feature_info] == \
        [("stages.0", 2), ("stages.1", 4), ("stages.2", 8), ("final_conv", 16)]
    assert isinstance(model.stages[1][0].shortcut, type(None))  # downsample='': no shortcut across shapes
    x = torch.randn(2, 3, 65, 47)
    maps = model.forward_intermediates(x, intermediates_only=True)
    assert [m.shape[-2:] for m in maps] == [(math.ceil(65 / r), math.ceil(47 / r)) for r in (2, 4, 8, 16)]
    model.train()
    model(x).logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_unknown_block_type_is_an_error():
    with pytest.raises(ValueError, match="block type"):
        StageSpec("resnext", depth=1, channels=8)


def _args(**overrides) -> BlockArgs:
    args = dict(in_chs=8, out_chs=16, stride=2, kernel_size=3, group_size=0, bottle_ratio=1.0, attn="",
                se_ratio=0.25, act="relu", downsample="avg", drop_path=0.0)
    return BlockArgs(**(args | overrides))


def test_a_block_must_declare_its_body_and_last_conv():
    with pytest.raises(TypeError, match="last_conv"):
        class NoLastConv(ResidualBlock):
            body = ("conv",)

            def build(self, args):
                self.conv = ConvNormAct(args.in_chs, args.out_chs, 3, args.stride)


def test_a_block_must_build_exactly_its_body():
    class Misnamed(ResidualBlock):
        body = ("conv1", "conv2")
        last_conv = "conv2"

        def build(self, args):
            self.conv1 = ConvNormAct(args.in_chs, args.out_chs, 3, args.stride)
            self.conv_2 = ConvNormAct(args.out_chs, args.out_chs, 3)

    with pytest.raises(TypeError, match=r"registered \['conv1', 'conv_2'\]"):
        Misnamed(_args())


def test_init_weights_zeroes_the_last_norm_of_every_block_with_a_shortcut():
    model = ByobNet(ByobNetConfig(stages=tuple(StageSpec(kind, depth=2, channels=16, bottle_ratio=0.5)
                                               for kind in BLOCK_TYPES), stem_chs=8, downsample="avg"))
    model.init_weights()
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 2 * len(BLOCK_TYPES)
    for block in blocks:
        assert block.last_norm is getattr(block, block.last_conv).bn
        assert torch.count_nonzero(block.last_norm.weight) == 0
        others = [m.bn for name in block.body if name != block.last_conv
                  and isinstance(m := getattr(block, name), ConvNormAct)]
        assert all(torch.all(bn.weight == 1) for bn in others)
