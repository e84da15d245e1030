"""The trunk driver every family shares: feature_info, features_only, pruning and activation checkpointing."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file

import visionzoo
from tests.reference import count_params, meta_model
from visionzoo.models.features import FeatureExtractor, FeatureInfo, FeatureList

ARCHS = visionzoo.list_models()
_PROBES = {name: meta_model(name) for name in ARCHS}
HEAVY = {name for name, probe in _PROBES.items() if count_params(probe) > 100e6}
# The smallest arch of each family (model class): the tests that run many forwards use these.
_BY_FAMILY: dict[type, str] = {}
for _name in sorted(ARCHS, key=lambda n: count_params(_PROBES[n])):
    _BY_FAMILY.setdefault(type(_PROBES[_name]), _name)
SMALLEST = sorted(_BY_FAMILY.values())


def _params(names):
    return [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY else n for n in names]


def _kwargs(arch):
    """A small input size for fixed-size models (the test sizes below are multiples of every stride)."""
    return {"img_size": 64} if _PROBES[arch].fixed_input_size else {}


def _image(batch=2, size=64):
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def _under(key: str, modules) -> bool:
    return any(key.startswith(f"{module}.") for module in modules)


def test_feature_info_reads_as_the_reference_dicts():
    info = FeatureInfo(64, 8, "stages.1")
    assert info == {"num_chs": 64, "reduction": 8, "module": "stages.1"}
    assert (info.channels, info.reduction, info.module) == (64, 8, "stages.1")
    info.setdefault("index", 1)  # the reference's FeatureInfo annotates the records it is given
    levels = FeatureList([FeatureInfo(32, 4, "a"), info])
    assert levels.channels() == [32, 64] and levels.reduction() == [4, 8]
    assert levels.module_name() == ["a", "stages.1"]
    assert levels.channels(-1) == 64 and levels.reduction([1, 0]) == [8, 4]
    assert levels.get_dicts(keys=["num_chs"]) == [{"num_chs": 32}, {"num_chs": 64}]
    assert levels.get_dicts(idx=0) == {"num_chs": 32, "reduction": 4, "module": "a"}


@pytest.mark.parametrize("arch", _params(ARCHS))
def test_feature_info_accessors_and_feature_model_keys(arch):
    """Meta-device models: the feature model is the base model minus its head, under the same keys."""
    base = meta_model(arch, **_kwargs(arch))
    levels = base.feature_info
    assert isinstance(levels, FeatureList) and all(isinstance(f, FeatureInfo) for f in levels)
    assert levels.channels() == [f["num_chs"] for f in levels] == [f.channels for f in levels]
    assert levels.reduction() == [f["reduction"] for f in levels]
    assert levels.module_name() == [f["module"] for f in levels]

    features = meta_model(arch, features_only=True, out_indices=tuple(range(len(levels))), **_kwargs(arch))
    assert features.feature_info.channels() == levels.channels()
    base_keys, feature_keys = base.state_dict().keys(), features.state_dict().keys()
    dropped = set(base_keys) - set(feature_keys)
    assert set(feature_keys) <= set(base_keys), "the feature model renamed or added keys"
    head = {*base.head_modules, *base.norm_modules}
    assert dropped and all(_under(k, head) for k in dropped), f"kept head, lost trunk: {sorted(dropped)[:5]}"
    assert count_params(features) < count_params(base)
    assert not any(_under(name, head) for name, p in features.named_parameters()), "head modules left over"


@pytest.mark.parametrize("arch", SMALLEST)
def test_feature_model_round_trips_the_full_checkpoint(arch, tmp_path):
    base = visionzoo.create_model(arch, **_kwargs(arch)).eval()
    checkpoint = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, checkpoint)
    # the last level only: the trunk after it (if any) and the head are pruned, and their keys dropped on load
    features = visionzoo.create_model(arch, features_only=True, out_indices=(-2,), checkpoint_path=checkpoint,
                                      **_kwargs(arch)).eval()
    x = _image()
    with torch.no_grad():
        expected = base.forward_intermediates(x, indices=(-2,), intermediates_only=True)
        actual = features(x)
    # same weights and ops; float32 defaults, not bitwise: a loaded model's tensors may take another kernel
    torch.testing.assert_close(actual, expected)

    fresh = visionzoo.create_model(arch, **_kwargs(arch))
    missing, unexpected = fresh.load_state_dict(features.state_dict(), strict=False)
    assert not unexpected
    dropped = set(base.state_dict()) - set(features.state_dict())
    assert set(missing) == {k for k in dropped if not k.endswith("num_batches_tracked")}  # BN defaults those
    for key, value in features.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)


def test_mobilenetv4_features_have_no_head_and_load_the_classifier_checkpoint(tmp_path):
    classifier = visionzoo.create_model("mobilenetv4_conv_small")
    checkpoint = tmp_path / "model.safetensors"
    save_file(classifier.state_dict(), checkpoint)
    features = visionzoo.create_model("mobilenetv4_conv_small", features_only=True,
                                      checkpoint_path=checkpoint)
    assert count_params(features) < count_params(classifier)
    assert not {"conv_head.weight", "norm_head.weight", "classifier.weight"} & set(features.state_dict())
    assert len(features(torch.randn(1, 3, 64, 64))) == len(classifier.feature_info)


@pytest.mark.parametrize("arch", SMALLEST)
def test_prune_intermediate_layers(arch):
    model = visionzoo.create_model(arch, **_kwargs(arch)).eval()
    x = _image()
    last = len(model.feature_info) - 1
    with torch.no_grad():
        expected = model(x)
        taps = model.forward_intermediates(x, intermediates_only=True)
        kept_head = copy.deepcopy(model)
        assert kept_head.prune_intermediate_layers([last], prune_head=False) == [last]
        torch.testing.assert_close(kept_head(x), expected, rtol=0, atol=0)

    middle = last // 2
    pruned = copy.deepcopy(model)
    assert pruned.prune_intermediate_layers([middle, -last - 1], prune_norm=True) == [middle, 0]
    with torch.no_grad():
        selected = pruned.forward_intermediates(x, intermediates_only=True)
        torch.testing.assert_close(selected, taps[: middle + 1], rtol=0, atol=0)
        torch.testing.assert_close(pruned(x), pruned.forward_features(x), rtol=0, atol=0)
    assert pruned.num_classes == 0 and pruned.num_features == model.feature_info[middle].channels
    with pytest.raises(ValueError, match="out of range for"):
        pruned.forward_intermediates(x, indices=[middle + 1])
    # a new classifier after the prune: the pooling and a linear layer, where the head's parent survived
    plain = copy.deepcopy(pruned)
    try:
        plain.reset_classifier(3)
    except ValueError as error:
        assert "was pruned" in str(error)
    else:
        with torch.no_grad():
            assert plain(x).shape == (x.shape[0], 3)
    # every parameter left takes part (DDP refuses unused ones)
    pruned.train()
    sum(t.sum() for t in pruned.forward_intermediates(x, intermediates_only=True)).backward()
    assert not [name for name, p in pruned.named_parameters() if p.grad is None]


@pytest.mark.parametrize("arch", _params(ARCHS))
def test_grad_checkpointing_same_outputs_and_gradients(arch):
    torch.manual_seed(0)
    plain = visionzoo.create_model(arch, num_classes=3, **_kwargs(arch)).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_grad_checkpointing()
    x = _image()
    step = next(s for s in reversed(checkpointed.trunk()) if isinstance(s, torch.nn.Module) and
                any(True for _ in s.parameters()))
    calls = []
    step.register_forward_pre_hook(lambda *_: calls.append(1))  # recompute may stop before the end
    results = []
    for model in (plain, checkpointed):
        out = model(x)
        out.square().mean().backward()
        results.append((out, {n: p.grad for n, p in model.named_parameters()}))
    assert len(calls) == 2, "the checkpointed step was not recomputed in backward"
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_grad_checkpointing_is_off_in_eval_and_reaches_feature_models():
    features = visionzoo.create_model("test_efficientnet", features_only=True)
    features.set_grad_checkpointing()
    assert features.model.grad_checkpointing
    block = features.model.blocks[-1][-1]
    calls = []
    block.register_forward_pre_hook(lambda *_: calls.append(1))
    sum(f.mean() for f in features(_image())).backward()
    assert len(calls) == 2
    features.eval()
    assert not features.model.training
    with torch.no_grad():
        features(_image())
    assert len(calls) == 3


def test_feature_cls_output_fmt_and_norm():
    x = _image(batch=1)
    as_list = visionzoo.create_model("mambaout_femto", features_only=True, feature_cls="getter")
    as_dict = visionzoo.create_model("mambaout_femto", features_only=True, feature_cls="dict")
    as_dict.load_state_dict(as_list.state_dict())
    maps = as_list(x)
    named = as_dict(x)
    assert isinstance(named, OrderedDict) and list(named) == as_list.feature_info.module_name()
    torch.testing.assert_close(list(named.values()), maps)
    nhwc = visionzoo.create_model("mambaout_femto", features_only=True, output_fmt="NHWC")
    nhwc.load_state_dict(as_list.state_dict())
    torch.testing.assert_close(nhwc(x), [m.permute(0, 2, 3, 1) for m in maps])
    for refused in ("hook", "fx", "no_such_class"):
        with pytest.raises(ValueError, match="feature_cls"):
            visionzoo.create_model("test_efficientnet", features_only=True, feature_cls=refused)
        with pytest.raises(AssertionError):  # what the reference's callers catch
            visionzoo.create_model("test_efficientnet", features_only=True, feature_cls=refused)
    with pytest.raises(ValueError, match="output_fmt must be one of"):
        visionzoo.create_model("test_efficientnet", features_only=True, output_fmt="NLC")
    with pytest.raises(TypeError, match="feature_cfg has no option 'flatten'"):
        visionzoo.create_model("test_efficientnet", features_only=True, feature_cfg={"flatten": True})

    # norm=True keeps the final norm and applies it: the ViT's to every level
    vit = visionzoo.create_model("test_vit", features_only=True, feature_cfg={"norm": True}).eval()
    assert isinstance(vit, FeatureExtractor) and "norm.weight" in vit.state_dict()
    tokens = vit.model.forward_intermediates(torch.randn(1, 3, 160, 160), indices=1, output_fmt="NLC",
                                             return_prefix_tokens=True, intermediates_only=True)
    (spatial, prefix), = tokens
    assert spatial.shape == (1, 100, 64) and prefix.shape == (1, vit.model.num_prefix_tokens, 64)


class _StepsAsLeaves(torch.fx.Tracer):
    """Traces the driver only: the trunk's steps are opaque (their insides are the layers' own business)."""

    def __init__(self, steps):
        super().__init__()
        self.steps = {id(s) for s in steps}

    def is_leaf_module(self, module, qualified_name):
        return id(module) in self.steps or super().is_leaf_module(module, qualified_name)


@pytest.mark.parametrize("arch", [a for a in SMALLEST if all(isinstance(s, torch.nn.Module)
                                                               for s in _PROBES[a].trunk())])
def test_driver_traces_with_fx(arch):
    features = visionzoo.create_model(arch, features_only=True, **_kwargs(arch)).eval()
    tracer = _StepsAsLeaves(features.model.trunk())
    traced = torch.fx.GraphModule(features, tracer.trace(features))
    x = _image(batch=1)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), features(x), rtol=0, atol=0)


@pytest.mark.parametrize("arch", SMALLEST)
def test_intermediates_and_pruning_match_reference(arch):
    """Final features, maps, stop_early, norm and pruning as the reference's, in float64 (no rounding
    luck)."""
    timm = pytest.importorskip("timm")
    from tests.reference import randomise_

    torch.manual_seed(0)
    reference = timm.create_model(arch, **_kwargs(arch)).eval()
    randomise_(reference)
    ours = visionzoo.create_model(arch, **_kwargs(arch)).eval()
    ours.load_state_dict(reference.state_dict())
    reference, ours = reference.double(), ours.double()
    x = _image().double()
    # the reference's Hiera refuses norm
    norms = (False,) if type(ours).__name__ == "Hiera" else (False, True)
    settings = [dict(norm=norm, stop_early=stop, indices=indices)
                for norm in norms for stop, indices in ((False, None), (True, [1]), (False, 2), (True, 2))]
    with torch.no_grad():
        for kwargs in settings:
            expected_final, expected = reference.forward_intermediates(x, **kwargs)
            final, actual = ours.forward_intermediates(x, **kwargs)
            torch.testing.assert_close(final, expected_final, rtol=1e-9, atol=1e-12, msg=str(kwargs))
            torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12, msg=str(kwargs))
        reference.prune_intermediate_layers([1], prune_norm=True)
        ours.prune_intermediate_layers([1], prune_norm=True)
        assert set(ours.state_dict()) == set(reference.state_dict())
        assert ours.num_features == reference.num_features
        torch.testing.assert_close(ours.forward_features(x), reference.forward_features(x), rtol=1e-9,
                                   atol=1e-12)
