"""ConvNeXt options that no registered arch uses, checked against the reference on tiny configs."""

from __future__ import annotations

import pytest

from tests.reference import assert_matches_reference
from visionzoo.models.convnext import ConvNext, ConvNextConfig

timm = pytest.importorskip("timm")

_TINY = dict(depths=(1, 1, 2, 1), dims=(16, 24, 32, 48), num_classes=10)

# (reference arch, its overrides, our config of the same model)
CASES = {
    "linear_mlp_layernorm": ("convnext_tiny", {}, {}),
    "conv_mlp_rmsnorm": ("convnext_atto_rms", {}, dict(conv_mlp=True, norm="rmsnorm")),
    "overlap_tiered_stem": ("convnext_atto_ols", {}, dict(conv_mlp=True, stem="overlap_tiered")),
    "overlap_stem_kernel_per_stage": ("convnext_nano_ols", dict(kernel_sizes=(3, 5, 7, 3)),
                                      dict(conv_mlp=True, stem="overlap", kernel_sizes=(3, 5, 7, 3))),
    "grn_no_layer_scale": ("convnextv2_tiny", {}, dict(use_grn=True, layer_scale_init=None)),
    "conv_grn": ("convnextv2_atto", {}, dict(use_grn=True, layer_scale_init=None, conv_mlp=True)),
    "head_norm_first": ("convnext_tiny_hnf", {}, dict(head_norm_first=True, conv_mlp=True)),
    "head_hidden": ("convnext_tiny", dict(head_hidden_size=40), dict(head_hidden_size=40)),
}


@pytest.mark.parametrize("case", CASES)
def test_option_matches_reference(case):
    arch, reference_overrides, ours_overrides = CASES[case]
    ours = ConvNext(ConvNextConfig(**_TINY, **ours_overrides))
    assert_matches_reference(ours, arch, dict(_TINY, **reference_overrides), [(64, 64), (71, 57)], norm=True)


def test_config_rejects_mismatched_stages():
    with pytest.raises(ValueError, match="one entry per stage"):
        ConvNextConfig(depths=(1, 1, 1), dims=(8, 16, 32, 64))
    with pytest.raises(ValueError, match="stem"):
        ConvNextConfig(stem="deep")
