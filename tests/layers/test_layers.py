"""Shared layer helpers that the families use in one line each."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from visionzoo.layers.channels import conv_groups
from visionzoo.layers.conv_norm_act import BatchNormAct2d
from visionzoo.layers.downsample import shortcut_avg_pool
from visionzoo.layers.weight_init import init_trunc_normal


def test_init_trunc_normal_reinitialises_the_whole_model():
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.LayerNorm(64), nn.Linear(64, 256))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(5.0)
    init_trunc_normal(model, std=0.02)
    for layer in (model[0], model[2]):
        assert layer.weight.abs().max() < 0.2 and 0.015 < layer.weight.std() < 0.025
        assert torch.all(layer.bias == 0)
    assert torch.all(model[1].weight == 1) and torch.all(model[1].bias == 0)


def test_init_trunc_normal_leaves_other_layer_types_at_their_own_default():
    conv = nn.Conv2d(64, 64, 1)
    with torch.no_grad():
        conv.weight.fill_(5.0)
    init_trunc_normal(nn.Sequential(conv, nn.Linear(64, 8)), layers=(nn.Linear,))
    bound = 1 / 64 ** 0.5  # PyTorch's default conv init: uniform within 1/sqrt(fan_in)
    assert conv.weight.abs().max() <= bound and conv.weight.std() > 0.5 * bound


def test_conv_groups():
    assert conv_groups(48, 0) == 1
    assert conv_groups(48, 1) == 48
    assert conv_groups(48, 16) == 3
    with pytest.raises(ValueError, match="48 channels do not split into groups of 32"):
        conv_groups(48, 32)


def test_shortcut_avg_pool_keeps_odd_sizes_like_a_strided_conv():
    assert isinstance(shortcut_avg_pool(1), nn.Identity)
    x = torch.ones(1, 2, 7, 5)
    y = shortcut_avg_pool(2)(x)
    assert y.shape[-2:] == (4, 3)
    assert torch.all(y == 1)  # the last, partial windows average only the pixels they cover


def test_batch_norm_act_recomputes_statistics_as_batch_norm_does():
    # torch.optim.swa_utils.update_bn sets momentum None: a cumulative average over the batches seen
    batches = [torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(i)) * (i + 1)
               for i in range(3)]
    ours, plain = BatchNormAct2d(3, act=None), nn.BatchNorm2d(3)
    for norm in (ours, plain):
        update_bn(batches, norm)
    assert ours.momentum == 0.1 and int(ours.num_batches_tracked) == 3
    torch.testing.assert_close(ours.running_mean, plain.running_mean)
    torch.testing.assert_close(ours.running_var, plain.running_var)
    ours.momentum = plain.momentum = None
    torch.testing.assert_close(ours.eval()(batches[0]), plain.eval()(batches[0]))
