"""Drop-in compatibility with the reference's model API, for every registered arch.

torch.fx tracing (symbolic_trace and torchvision's create_feature_extractor), the pooling types of
`layers/pool.py` with the errors the reference's callers catch, `create_model(device=, dtype=, global_pool=)`,
`in_chans`, and `pretrained_cfg`/`default_cfg` read as a dict.
"""

from __future__ import annotations

import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor

import visionzoo
from tests.models.conftest import ARCHS, arch_params
from tests.reference import conformance_input_sizes, meta_model
from visionzoo.factory import parameter_count
from visionzoo.layers.pool import POOL_TYPES, PoolTypeError, global_pool, pooled_width
from visionzoo.registry import ResolvedModel, get_architecture


def _small_kwargs(arch):
    probe = meta_model(arch)
    return {"img_size": conformance_input_sizes(probe)[0]} if probe.fixed_input_size else {}


def _input(arch, model, batch=2, device="cpu"):
    kwargs = _small_kwargs(arch)
    height, width = kwargs.get("img_size", (64, 64))
    return torch.randn(batch, model.in_chans, height, width,
                       generator=torch.Generator().manual_seed(0)).to(device)


def _smallest_of_each_family():
    smallest = {}
    for arch in sorted(ARCHS, key=parameter_count):
        smallest.setdefault(get_architecture(arch).family, arch)
    return sorted(smallest.values())


def _traced(model, x):
    """The model's output, and that of its torch.fx and create_feature_extractor graphs."""
    with torch.no_grad():
        expected = model(x)
        traced = torch.fx.symbolic_trace(model)
        # the classifier is the last module every family runs, so its node's output is the model's
        extractor = create_feature_extractor(model, return_nodes={model.classifier_module: "out"})
        return expected, traced(x), extractor(x)["out"], traced


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_torch_fx_traces_model(arch):
    # On the meta device: tracing is about the forward's Python, not the numbers (next test for those).
    model = visionzoo.create_model(arch, device="meta", **_small_kwargs(arch)).eval()
    x = _input(arch, model, device="meta")
    expected, traced_out, extracted, traced = _traced(model, x)
    assert traced_out.shape == extracted.shape == expected.shape
    if model.fixed_input_size and not model.config.dynamic_img_size:
        # the size check is a node of the graph: a traced model still says what is wrong
        side = x.shape[-1] + model.feature_info[-1].reduction
        with pytest.raises(ValueError, match="does not match this model's img_size"):
            traced(torch.randn(1, 3, side, side, device="meta"))


@pytest.mark.parametrize("arch", _smallest_of_each_family())
def test_torch_fx_graphs_compute_what_the_model_computes(arch):
    model = visionzoo.create_model(arch, **_small_kwargs(arch)).eval()
    expected, traced_out, extracted, _ = _traced(model, _input(arch, model))
    torch.testing.assert_close(traced_out, expected, rtol=0, atol=0)
    torch.testing.assert_close(extracted, expected, rtol=0, atol=0)


def test_torch_fx_trains_through_batchnorm_act():
    model = visionzoo.create_model("test_efficientnet").train()
    traced = torch.fx.symbolic_trace(model)
    before = model.bn1.running_mean.clone()
    traced(torch.randn(2, 3, 64, 64)).mean().backward()
    assert not torch.equal(model.bn1.running_mean, before)  # the traced graph updates the running statistics
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_every_pool_type_or_the_reference_error(arch):
    # shapes only: on the meta device
    model = visionzoo.create_model(arch, num_classes=0, device="meta", **_small_kwargs(arch)).eval()
    features = model.forward_features(_input(arch, model, batch=1, device="meta"))
    for pool in POOL_TYPES:
        if pool not in model.global_pools:
            # a ValueError like every bad option, and the AssertionError the reference's callers catch
            with pytest.raises(PoolTypeError, match="global_pool must be one of"):
                model.reset_classifier(5, pool)
            with pytest.raises(AssertionError):
                visionzoo.create_model(arch, global_pool=pool, device="meta", **_small_kwargs(arch))
            continue
        model.reset_classifier(0, pool)
        pooled = model.forward_head(features, pre_logits=True)
        if not pool:
            assert pooled.ndim > 2  # no pooling: the unpooled features (through any norm)
            continue
        assert pooled.shape == (1, model.head_hidden_size)
        model.reset_classifier(5, pool)
        assert model.forward_head(features).shape == (1, 5)
    if "catavgmax" in model.global_pools:
        created = visionzoo.create_model(arch, global_pool="catavgmax", device="meta", **_small_kwargs(arch))
        assert created.head_hidden_size == pooled_width("catavgmax", created.num_features)
        assert created.get_classifier().in_features == 2 * created.num_features


def test_pool_types_pool_like_the_reference():
    timm_layers = pytest.importorskip("timm.layers")
    x = torch.randn(2, 5, 7, 3, dtype=torch.float64)
    for pool in ("avg", "max", "avgmax", "catavgmax"):
        expected = timm_layers.SelectAdaptivePool2d(pool_type=pool, flatten=True)(x)
        torch.testing.assert_close(global_pool(x, pool), expected)
    assert global_pool(x, "") is x


@pytest.mark.parametrize("arch", arch_params(ARCHS))
def test_reference_style_attributes(arch):
    model = visionzoo.create_model(arch, device="meta", dtype=torch.float64, in_chans=1)
    assert model.in_chans == 1
    assert {t.device.type for t in model.state_dict().values()} == {"meta"}
    assert {t.dtype for t in model.state_dict().values() if t.is_floating_point()} == {torch.float64}
    assert model.default_cfg is model.pretrained_cfg  # one object, two names, as in the reference
    cfg = model.default_cfg
    assert cfg["input_size"] == cfg.input_size and cfg["mean"] == cfg.mean
    assert cfg.get("min_input_size") is None and "num_classes" in cfg
    assert dict(cfg) == cfg.to_dict()
    with pytest.raises(KeyError):
        cfg["no_such_key"]
    with pytest.raises(TypeError, match="floating-point"):
        visionzoo.create_model(arch, device="meta", dtype=torch.int8)


def test_reset_classifier_keeps_device_dtype_and_mode():
    model = visionzoo.create_model("test_byobnet").to(dtype=torch.float64).eval()
    model.reset_classifier(3)
    classifier = model.get_classifier()
    assert classifier.weight.dtype == torch.float64 and not classifier.training


def test_model_without_a_tag_has_a_config_from_its_architecture(monkeypatch):
    monkeypatch.setattr(visionzoo.factory, "resolve_model",
                        lambda name: ResolvedModel(get_architecture(name), pretrained_cfg=None))
    model = visionzoo.create_model("test_vit", in_chans=2, num_classes=7)
    cfg = model.default_cfg
    assert cfg is model.pretrained_cfg and cfg.architecture == "test_vit" and cfg.tag == ""
    assert cfg["input_size"] == (2, *visionzoo.get_pretrained_cfg("test_vit").input_size[1:])
    assert cfg["num_classes"] == 7 and cfg["classifier"] == "head"
    assert model.get_submodule(cfg["first_conv"]).in_channels == 2
