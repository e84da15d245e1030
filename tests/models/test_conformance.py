"""Conformance with the reference implementation (timm 1.0.31), for every registered arch and tag.

Equal parameter count; state dicts that load strictly both ways; equal outputs on randomised weights; equal
feature maps from features_only; equal pretrained configs. Outputs are compared in float64 (see
`tests/reference.py`); one arch per family is also compared in float32, within float32's own error.
"""

from __future__ import annotations

import copy

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from tests.models.conftest import ARCHS, arch_params
from tests.reference import (
    FLOAT64_TOLERANCE,
    conformance_input_sizes,
    count_params,
    float32_tolerance,
    max_relative_error,
    meta_model,
    randomise_,
)
from visionzoo.factory import parameter_count
from visionzoo.registry import get_architecture

timm = pytest.importorskip("timm")


def _smallest_of_each_family(archs):
    smallest = {}
    for arch in sorted(archs, key=parameter_count):
        smallest.setdefault(get_architecture(arch).family, arch)
    return sorted(smallest.values())


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_param_count_equals_reference(arch):
    with torch.device("meta"):
        reference = timm.create_model(arch)
    assert count_params(meta_model(arch)) == count_params(reference)


def _randomised_pair(arch, tmp_path):
    """The reference `arch` randomised, and ours loaded from its checkpoint through the path users take."""
    probe = meta_model(arch)
    img_size = {"img_size": conformance_input_sizes(probe)[0]} if probe.fixed_input_size else {}
    torch.manual_seed(0)
    reference = timm.create_model(arch, **img_size).eval()
    randomise_(reference)
    checkpoint = tmp_path / "reference.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, checkpoint)
    return visionzoo.create_model(arch, checkpoint_path=checkpoint, **img_size).eval(), reference


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_outputs_and_state_dict_match_reference(arch, tmp_path):
    # reference -> ours, strictly
    ours, reference = _randomised_pair(arch, tmp_path)
    # ours -> reference, strictly
    reference.load_state_dict(ours.state_dict(), strict=True)
    assert ours.num_features == reference.num_features
    assert ours.head_hidden_size == getattr(reference, "head_hidden_size", reference.num_features)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}

    ours.double(), reference.double()
    for height, width in conformance_input_sizes(ours):
        x = torch.randn(2, ours.config.in_chans, height, width, generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64)
        with torch.no_grad():
            error = max_relative_error(ours(x), reference(x))
        assert error < FLOAT64_TOLERANCE, f"at {height}x{width}: {error:.2e}"


@pytest.mark.parametrize("arch", arch_params(_smallest_of_each_family(ARCHS)))
def test_float32_outputs_within_float32_error_of_reference(arch, tmp_path):
    ours, reference = _randomised_pair(arch, tmp_path)
    height, width = conformance_input_sizes(ours)[-1]
    x = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        actual = ours(x)
        expected64 = copy.deepcopy(reference).double()(x.double())
    tolerance = float32_tolerance(reference, x, expected64)
    error = max_relative_error(actual, expected64)
    assert error < tolerance, f"float32 error {error:.2e} over {tolerance:.2e} (from the reference's own)"


@pytest.mark.parametrize("arch", arch_params(ARCHS))
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
                                  pretrained_cfg_overlay={"file": str(checkpoint)}, **img_size)
    ours = visionzoo.create_model(arch, features_only=True, checkpoint_path=checkpoint, **img_size)
    reference.eval().double(), ours.eval().double()

    assert [f.channels for f in ours.feature_info] == reference.feature_info.channels()
    assert [f.reduction for f in ours.feature_info] == reference.feature_info.reduction()
    height, width = conformance_input_sizes(ours.model)[-1]
    x = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    # The reference keeps a channels-last model's maps NHWC (its `output_fmt`); ours are always NCHW.
    if getattr(reference, "output_fmt", "NCHW") == "NHWC":
        expected = [e.permute(0, 3, 1, 2) for e in expected]
    assert len(actual) == len(expected)
    for level, (a, e) in enumerate(zip(actual, expected, strict=True)):
        error = max_relative_error(a, e)
        assert error < FLOAT64_TOLERANCE, f"feature level {level}: {error:.2e}"


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
    ours = visionzoo.create_model("vit_betwixt_patch16_reg4_gap_256", depth=1, img_size=320,
                                  checkpoint_path=checkpoint)
    assert max_relative_error(ours.pos_embed.detach(), reference.pos_embed.detach()) < 1e-6
