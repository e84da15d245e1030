"""ResNet options that no registered arch uses, checked against the reference on tiny configs."""

from __future__ import annotations

import dataclasses

import pytest

from tests.reference import assert_matches_reference
from visionzoo.models.resnet import ResNet, ResNetConfig

timm = pytest.importorskip("timm")

_TINY = dict(layers=(1, 1, 2, 1), channels=(16, 32, 48, 64), num_classes=10)

# (reference arch, its overrides, our config of the same model)
CASES = {
    "basic_conv7": ("resnet18", {}, dict(block="basic")),
    "basic_replace_stem_pool": ("resnet18", dict(replace_stem_pool=True),
                                dict(block="basic", replace_stem_pool=True)),
    "bottleneck_deep_wide_stem": ("resnet50s", {}, dict(stem="deep", stem_width=64)),
    "deep_tiered_avg_down": ("resnet26t", {}, dict(stem="deep_tiered", stem_width=32, avg_down=True)),
    "resnext_groups": ("resnext50_32x4d", {}, dict(cardinality=32, base_width=4)),
    "strided_3x3_shortcut_reduce_first": ("resnet50", dict(down_kernel_size=3, block_reduce_first=2),
                                          dict(down_kernel_size=3, block_reduce_first=2)),
}


@pytest.mark.parametrize("case", CASES)
def test_option_matches_reference(case):
    arch, reference_overrides, ours_overrides = CASES[case]
    config = ResNetConfig(depths=_TINY["layers"], channels=_TINY["channels"],
                          num_classes=_TINY["num_classes"])
    ours = ResNet(dataclasses.replace(config, **ours_overrides))
    assert_matches_reference(ours, arch, dict(_TINY, **reference_overrides), [(64, 64), (71, 57)],
                             indices=(0, 2, 4))


def test_config_rejects_grouped_basic_blocks():
    with pytest.raises(ValueError, match="basic blocks have no groups"):
        ResNetConfig(block="basic", cardinality=32)
