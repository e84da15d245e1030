"""BatchNorm folding: which pairs fold (read from the data flow), and that the outputs do not change."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import visionzoo
from tests.reference import max_relative_error, randomise_
from visionzoo.deploy import fold_batch_norms, fold_layer_scales
from visionzoo.deploy.fold import fold_conv_bn
from visionzoo.layers.layer_scale import LayerScale, LayerScale2d


def _batch_norms(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def _randomised(name: str) -> nn.Module:
    model = visionzoo.create_model(name).eval()
    randomise_(model)
    return model


@pytest.mark.parametrize("arch", ["test_efficientnet", "mobilenetv4_conv_small", "test_byobnet", "resnet50d"])
def test_every_batch_norm_of_a_conv_net_folds(arch):
    model = _randomised(arch)
    x = torch.randn(2, 3, 97, 113, generator=torch.Generator().manual_seed(0))  # odd sizes: ceil-mode pools
    with torch.no_grad():
        expected = model(x)
        norms = _batch_norms(model)
        pairs = fold_batch_norms(model, x[:1])
        assert {p.consumer for p in pairs} == set(norms) and _batch_norms(model) == []
        assert max_relative_error(model(x), expected) < 1e-5


def test_mobilenetv4_hybrid_folds_all_but_the_attention_prenorms():
    model = _randomised("mobilenetv4_hybrid_medium")
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
        pairs = fold_batch_norms(model, x)
        folded = {p.consumer for p in pairs}
        assert any(name.endswith("attn.key.norm") for name in folded)  # the MQA key/value branch
        assert any(name.endswith("attn.value.norm") for name in folded)
        # the norm in front of each attention block follows a residual sum, not a conv
        left = _batch_norms(model)
        assert left and all(name.endswith(".norm") and ".attn." not in name for name in left)
        assert max_relative_error(model(x), expected) < 1e-5


class _SharedOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y  # a second reader of the conv's output would see folded values


class _InPlaceBetween(_SharedOutput):
    def forward(self, x):
        return self.bn(torch.relu_(self.conv(x)))


class _Plain(_SharedOutput):
    def forward(self, x):
        return self.bn(self.conv(x))


@pytest.mark.parametrize("module_cls, folds",
                         [(_SharedOutput, False), (_InPlaceBetween, False), (_Plain, True)])
def test_only_a_conv_output_read_by_the_norm_alone_folds(module_cls, folds):
    model = module_cls().eval()
    randomise_(model)
    x = torch.randn(2, 3, 8, 8)
    expected = model(x)
    pairs = fold_batch_norms(model, x)
    assert [(p.producer, p.consumer) for p in pairs] == ([("conv", "bn")] if folds else [])
    assert max_relative_error(model(x).detach(), expected.detach()) < 1e-6


@pytest.mark.parametrize("bias, affine", [(True, True), (False, False)])
def test_fold_conv_bn_is_exact(bias, affine):
    conv, bn = nn.Conv2d(3, 5, 3, bias=bias, groups=1), nn.BatchNorm2d(5, affine=affine).eval()
    randomise_(nn.Sequential(conv, bn))
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        expected = bn(conv(x))
        fold_conv_bn(conv, bn)
        assert max_relative_error(conv(x), expected) < 1e-6


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(_Plain().train(), torch.randn(1, 3, 8, 8))


@pytest.mark.parametrize("arch, size", [("test_vit", 160), ("mobilenetv4_hybrid_medium", 96),
                                        ("hiera_small_abswin_256", 256)])
def test_layer_scales_after_a_projection_fold(arch, size):
    kwargs = {"depths": (1, 1, 1, 1)} if arch.startswith("hiera") else {}
    model = visionzoo.create_model(arch, layer_scale_init=0.1, **kwargs).eval()
    randomise_(model)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    scales = [n for n, m in model.named_modules() if isinstance(m, (LayerScale, LayerScale2d))]
    with torch.no_grad():
        expected = model(x)
        fold_batch_norms(model, x[:1])  # the mobile blocks scale a conv's normed output
        pairs = fold_layer_scales(model, x[:1])
        assert scales and sorted(p.consumer for p in pairs) == sorted(scales)
        assert max_relative_error(model(x), expected) < 1e-5
