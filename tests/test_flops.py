"""MAC counting: operator-level counts on the meta device, equal to counts on real tensors."""

import torch
from torch import nn

from visionzoo import create_model
from visionzoo.flops import count_macs, model_macs


def test_macs_are_half_the_counted_flops_of_a_convolution():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    # every output value (8 channels x 8 x 8) takes 3 x 3 x 3 multiply-accumulates
    assert count_macs(conv, img_size=8) == 8 * 8 * 8 * 27


def test_count_restores_requires_grad():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1))
    model[1].weight.requires_grad_(False)
    count_macs(model, img_size=4)
    assert [p.requires_grad for p in model.parameters()] == [True, True, False, True]


def test_meta_count_equals_count_on_real_tensors():
    real = create_model("test_vit", img_size=160).eval()
    assert model_macs("test_vit", 160) == count_macs(real, 160) > 0


def test_fixed_size_model_is_counted_at_the_asked_size():
    assert model_macs("test_vit.r160_in1k", 192) > model_macs("test_vit.r160_in1k", 160)


def test_attention_pooling_head_is_countable_on_meta():
    # the latent query of attention pooling is a view of a parameter: the case that needs requires_grad off
    with torch.device("meta"):
        model = create_model("test_vit", img_size=160, global_pool="map").eval()
    assert count_macs(model, 160) > 0
