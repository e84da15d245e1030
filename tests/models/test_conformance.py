"""Conformance with the reference implementation (timm 1.0.31), for every registered arch and tag.

Equal parameter count; state dicts that load strictly both ways; equal outputs on randomised weights; equal
feature maps from features_only; equal pretrained configs.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from tests.reference import conformance_input_sizes, count_params, max_relative_error, meta_model, randomise_

timm = pytest.importorskip("timm")

TOLERANCE = 1e-4
ARCHS = visionzoo.list_models()
# Models over ~100M parameters take seconds to build in the reference: marked, still run in CI.
HEAVY = {name for name in ARCHS if count_params(meta_model(name)) > 100e6}


def _params(names):
    return [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY else n for n in names]


@pytest.mark.parametrize("arch", _params(ARCHS))
def test_param_count_equals_reference(arch):
    with torch.device("meta"):
        reference = timm.create_model(arch)
    assert count_params(meta_model(arch)) == count_params(reference)


@pytest.mark.parametrize("arch", _params(ARCHS))
def test_outputs_and_state_dict_match_reference(arch, tmp_path):
    probe = meta_model(arch)
    img_size = {"img_size": conformance_input_sizes(probe)[0]} if probe.fixed_input_size else {}
    torch.manual_seed(0)
    reference = timm.create_model(arch, **img_size).eval()
    randomise_(reference)

    # reference -> ours, strictly, through the same checkpoint path users take
    checkpoint = tmp_path / "reference.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, checkpoint)
    ours = visionzoo.create_model(arch, checkpoint_path=checkpoint, **img_size).eval()
    # ours -> reference, strictly
    reference.load_state_dict(ours.state_dict(), strict=True)
    assert ours.num_features == reference.num_features
    assert ours.head_hidden_size == getattr(reference, "head_hidden_size", reference.num_features)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}

    for height, width in conformance_input_sizes(ours):
        x = torch.randn(2, ours.config.in_chans, height, width, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected, actual = reference(x), ours(x)
        assert max_relative_error(actual, expected) < TOLERANCE, f"at {height}x{width}"


@pytest.mark.parametrize("arch", _params(ARCHS))
def test_features_only_matches_reference(arch, tmp_path):
    probe = meta_model(arch)
    img_size = {"img_size": conformance_input_sizes(probe)[0]} if probe.fixed_input_size else {}
    torch.manual_seed(0)
    base = timm.create_model(arch, **img_size)
    randomise_(base)
    checkpoint = tmp_path / "reference.safetensors"
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, checkpoint)
    del base
    reference = timm.create_model(arch, features_only=True, pretrained=True,
                                  pretrained_cfg_overlay={"file": str(checkpoint)}, **img_size).eval()
    ours = visionzoo.create_model(arch, features_only=True, checkpoint_path=checkpoint, **img_size).eval()

    assert [f.channels for f in ours.feature_info] == reference.feature_info.channels()
    assert [f.reduction for f in ours.feature_info] == reference.feature_info.reduction()
    height, width = conformance_input_sizes(ours.model)[-1]
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    # The reference keeps a channels-last model's maps NHWC (its `output_fmt`); ours are always NCHW.
    if getattr(reference, "output_fmt", "NCHW") == "NHWC":
        expected = [e.permute(0, 3, 1, 2) for e in expected]
    assert len(actual) == len(expected)
    for level, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert max_relative_error(a, e) < TOLERANCE, f"feature level {level}"


PRETRAINED = visionzoo.list_pretrained()


@pytest.mark.parametrize("name", PRETRAINED)
def test_pretrained_cfg_equals_reference(name):
    ours = visionzoo.get_pretrained_cfg(name).to_dict()
    reference = timm.models.get_pretrained_cfg(name).to_dict()
    for key, value in ours.items():
        assert value == reference.get(key), f"{key}: {value!r} != reference {reference.get(key)!r}"


def test_every_reference_tag_of_our_archs_is_registered():
    ours = set(PRETRAINED)
    for arch in ARCHS:
        assert {n for n in timm.list_pretrained(f"{arch}.*") if n.split(".")[0] == arch} <= ours


def test_position_embedding_resampled_on_load_like_reference(tmp_path):
    base = timm.create_model("vit_betwixt_patch16_reg4_gap_256", depth=1)
    randomise_(base)
    checkpoint = tmp_path / "base.safetensors"
    save_file(base.state_dict(), checkpoint)
    reference = timm.create_model("vit_betwixt_patch16_reg4_gap_256", depth=1, img_size=320, pretrained=True,
                                  pretrained_cfg_overlay={"file": str(checkpoint)})
    ours = visionzoo.create_model("vit_betwixt_patch16_reg4_gap_256", depth=1, img_size=320, checkpoint_path=checkpoint)
    assert max_relative_error(ours.pos_embed.detach(), reference.pos_embed.detach()) < 1e-6
