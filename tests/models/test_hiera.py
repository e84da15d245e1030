"""Hiera beyond the registered variant: projection widening, partial query pooling, token order, dynamic
sizes."""

from __future__ import annotations

import pytest
import torch

import visionzoo
from tests.reference import FLOAT64_TOLERANCE, assert_outputs_match, max_relative_error, randomise_
from visionzoo.models.hiera import Hiera, HieraConfig, reroll, unroll

timm = pytest.importorskip("timm")


def test_reroll_inverts_unroll():
    x = torch.arange(2 * 16 * 24 * 3, dtype=torch.float32).reshape(2, 16, 24, 3)
    tokens = unroll(x, (2, 2), 3)
    torch.testing.assert_close(reroll(tokens, (2, 2), 3, (2, 3)), x)
    # the outermost token axis holds the finest 2x2 offsets: a max over it is a 2x2 max pool
    pooled = tokens.view(2, 4, -1, 3).amax(dim=1)
    expected = torch.nn.functional.max_pool2d(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    torch.testing.assert_close(reroll(pooled, (2, 2), 2, (2, 3)), expected)


def test_projection_widening_and_partial_pooling_match_reference():
    """expand_proj=True and q_pool=2 of 4 stages (the last stage keeps its resolution), at a non-square
    size."""
    from timm.models.hiera import Hiera as ReferenceHiera

    img_size = (128, 96)
    reference = ReferenceHiera(
        img_size=img_size, embed_dim=32, num_heads=2, num_classes=10, stages=(1, 2, 2, 1), q_pool=2,
        mask_unit_attn=(True, False, True, False), abs_win_pos_embed=True, global_pos_size=(6, 6),
        init_values=1e-5, use_expand_proj=True, dim_mul=1.5, head_mul=1.5,
    )
    ours = Hiera(HieraConfig(
        img_size=img_size, embed_dim=32, num_heads=2, num_classes=10, depths=(1, 2, 2, 1), q_pool=2,
        mask_unit_attn=(True, False, True, False), global_pos_size=(6, 6), layer_scale_init=1e-5,
        expand_proj=True, dim_mul=1.5, head_mul=1.5))
    assert_outputs_match(ours, reference, [img_size])
    assert [f.reduction for f in ours.feature_info] == [4, 8, 16, 16]


def test_dynamic_img_size_matches_reference_built_at_that_size(tmp_path):
    from safetensors.torch import save_file

    reference = timm.create_model("hiera_small_abswin_256", img_size=(160, 96)).eval()
    randomise_(reference)
    checkpoint = tmp_path / "reference.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, checkpoint)
    ours = visionzoo.create_model("hiera_small_abswin_256", checkpoint_path=checkpoint,
                                  dynamic_img_size=True).eval()
    ours.double(), reference.double()
    x = torch.randn(1, 3, 160, 96, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert max_relative_error(ours(x), reference(x)) < FLOAT64_TOLERANCE


def test_input_sizes_it_cannot_take_are_errors():
    model = Hiera(HieraConfig(img_size=64, embed_dim=16, depths=(1, 1, 1, 1), global_pos_size=(4, 4)))
    with pytest.raises(ValueError, match="does not match this model's img_size"):
        model(torch.randn(1, 3, 96, 64))
    dynamic = Hiera(HieraConfig(img_size=64, embed_dim=16, depths=(1, 1, 1, 1), global_pos_size=(4, 4),
                                dynamic_img_size=True))
    with pytest.raises(ValueError, match="multiple of 32"):
        dynamic(torch.randn(1, 3, 80, 64))
