"""The model interface every family shares, checked for every registered arch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import visionzoo
from tests.models.conftest import ARCHS, arch_params
from tests.reference import conformance_input_sizes, meta_model
from visionzoo.layers.drop import DropPath
from visionzoo.models.base import ClassifierModel, FeatureInfo


def _small_kwargs(arch):
    probe = meta_model(arch)
    return {"img_size": conformance_input_sizes(probe)[0]} if probe.fixed_input_size else {}


def _input(model, batch=2):
    cfg = model.pretrained_cfg
    if model.fixed_input_size:
        size = model.config.img_size
        height, width = (size, size) if isinstance(size, int) else size
    else:
        height, width = cfg.input_size[1:] if cfg is not None else (224, 224)
    return torch.randn(batch, model.config.in_chans, height, width)


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_classifier_interface(arch):
    model = visionzoo.create_model(arch, **_small_kwargs(arch)).eval()
    assert isinstance(model, ClassifierModel)
    assert model.pretrained_cfg == visionzoo.get_pretrained_cfg(arch)
    assert model.num_classes == model.pretrained_cfg.num_classes
    assert model.classifier_module == model.pretrained_cfg.classifier
    assert all(torch.isfinite(p).all() for p in model.parameters()), "random init left non-finite values"
    x = _input(model)
    with torch.no_grad():
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        logits = model(x)
    assert pre_logits.shape == (2, model.head_hidden_size)
    expected_out = model.num_classes or model.head_hidden_size
    assert logits.shape == (2, expected_out)
    assert torch.isfinite(logits).all()

    model.reset_classifier(7)
    assert isinstance(model.get_classifier(), nn.Linear) and model.get_classifier().out_features == 7
    with torch.no_grad():
        assert model(x).shape == (2, 7)
    with pytest.raises(ValueError, match="global_pool must be one of"):
        model.reset_classifier(3, global_pool="no_such_pool")
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, model.head_hidden_size)


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_feature_info_and_features_only(arch):
    extractor = visionzoo.create_model(arch, features_only=True, **_small_kwargs(arch)).eval()
    base = extractor.model
    assert all(isinstance(f, FeatureInfo) for f in base.feature_info)
    reductions = [f.reduction for f in base.feature_info]
    assert reductions == sorted(reductions)
    module_names = dict(base.named_modules())
    assert all(f.module in module_names for f in base.feature_info)
    x = _input(base, batch=1)
    with torch.no_grad():
        maps = extractor(x)
    assert len(maps) == len(extractor.feature_info)
    for feature, info in zip(maps, extractor.feature_info, strict=True):
        assert feature.shape[1] == info.channels
        assert feature.shape[-2:] == (math.ceil(x.shape[-2] / info.reduction),
                                      math.ceil(x.shape[-1] / info.reduction))
    with torch.no_grad():
        last_two = base.forward_intermediates(x, indices=2, intermediates_only=True)
        final, all_levels = base.forward_intermediates(x)
    assert len(last_two) == 2 and len(all_levels) == len(base.feature_info)
    torch.testing.assert_close(last_two[-1], all_levels[-1])


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_training_step_with_drop_path(arch):
    """Drop path (stochastic depth), where a block applies it, keeps or drops its residual branch whole per
    sample (the kept ones scaled by 1 / (1 - rate)), the same way for the same seed, in training only; in
    eval mode it is the identity. Then a training step reaches every parameter."""
    model = visionzoo.create_model(arch, drop_rate=0.1, drop_path_rate=0.1, num_classes=5,
                                   **_small_kwargs(arch))
    side = 2 * model.total_stride  # small inputs: what is checked does not depend on the size
    x = _input(model) if model.fixed_input_size else torch.randn(2, model.config.in_chans, side, side)
    paths = [m for m in model.modules() if isinstance(m, DropPath)]
    applied = []
    hooks = [path.register_forward_hook(lambda module, args, out: applied.append((args[0], out, module.rate)))
             for path in paths]

    def forward(seed: int, train: bool, rate: float) -> torch.Tensor:
        for path in paths:
            path.rate = rate
        model.train(train)
        torch.manual_seed(seed)
        with torch.no_grad():
            return model(x)

    assert torch.equal(forward(1, False, 0.5), forward(2, False, 0.0))
    assert all(torch.equal(branch, out) for branch, out, _ in applied)  # eval: the identity
    applied.clear()
    assert torch.equal(forward(1, True, 0.5), forward(1, True, 0.5))
    for branch, out, rate in applied:
        for kept, sample in zip(out, branch, strict=True):
            assert torch.equal(kept, sample / (1 - rate)) or not kept.any()
    for hook in hooks:
        hook.remove()
    for path in paths:
        path.rate = 0.1
    model.train()
    loss = model(x).logsumexp(dim=1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_config_and_tags_agree(arch):
    probe = meta_model(arch)
    tags = [visionzoo.get_pretrained_cfg(n) for n in visionzoo.list_pretrained(f"{arch}.*")]
    assert tags, f"{arch} has no pretrained tag"
    for cfg in tags:
        assert cfg.architecture == arch
        if probe.fixed_input_size:
            size = probe.config.img_size
            assert tuple(cfg.input_size[1:]) == ((size, size) if isinstance(size, int) else tuple(size))
    with pytest.raises(TypeError, match="no option 'not_an_option'"):
        visionzoo.create_model(arch, not_an_option=1)


@pytest.mark.parametrize("arch", [a for a in ARCHS if meta_model(a).supports_dynamic_img_size])
def test_dynamic_img_size_runs_any_size(arch):
    """At a size it was not built for, a dynamic model computes what the same weights compute in a model
    built for that size (in float64, so that only a real difference shows)."""
    small = _small_kwargs(arch)
    model = visionzoo.create_model(arch, dynamic_img_size=True, **small).eval().double()
    height, width = small.get("img_size", (224, 224))
    step = model.feature_info[-1].reduction
    size = (height + step, width - step)
    built = meta_model(arch, img_size=size).eval()  # its weights are the dynamic model's, adapted on load
    built.load_state_dict(built.adapt_checkpoint(model.state_dict()), assign=True)
    x = torch.randn(1, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), built(x), rtol=1e-9, atol=1e-12)
