"""MambaOut specifics the generic tests do not cover: config validation, NHWC intermediates, channels-last
trunk."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from visionzoo.models.mambaout import MambaOut, MambaOutConfig

TINY = MambaOutConfig(depths=(1, 1, 2, 1), dims=(16, 32, 48, 64), num_classes=5)


@pytest.mark.parametrize("bad", [dict(depths=(1, 1)), dict(downsample="pool"), dict(head="linear"),
                                 dict(global_pool="max")])
def test_invalid_config_raises(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(TINY, **bad)


def test_nhwc_intermediates_are_the_nchw_ones_permuted():
    model = MambaOut(TINY).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        nchw = model.forward_intermediates(x, intermediates_only=True)
        nhwc = model.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
    for a, b in zip(nchw, nhwc, strict=True):
        torch.testing.assert_close(a, b.permute(0, 3, 1, 2))


def test_blocks_permute_only_around_the_depthwise_conv():
    """The trunk stays channels-last: one permute pair per block (for its depthwise conv), none elsewhere
    except the stem (3: around its mid norm, then to NHWC) and each downsampling conv (2)."""
    model = MambaOut(TINY).eval()
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
        model(torch.randn(1, 3, 32, 32))
    permutes = sum(event.name == "aten::permute" for event in prof.events())
    blocks, downsamples = sum(TINY.depths), len(TINY.depths) - 1
    assert permutes == 2 * blocks + 2 * downsamples + 3
