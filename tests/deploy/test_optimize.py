"""optimize_for_inference: same outputs and top-1 as eager (real photos), per family; each step alone."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import visionzoo
from tests.reference import max_relative_error, randomise_
from visionzoo.deploy import (
    OneDnnLinear,
    OptimizedModel,
    compile_frozen,
    fix_input_size,
    inference_dtype,
    optimize_for_inference,
    prefers_channels_last,
    use_onednn_linear,
)
from visionzoo.deploy import optimize as optimize_module
from visionzoo.deploy.verify import photo_batch, verification_inputs
from visionzoo.errors import InputSizeError

# one architecture per family (the mobile family twice: MobileNetV4 hybrids add multi-query attention)
FAMILY_ARCHS = ["test_efficientnet", "mobilenetv4_hybrid_medium", "resnet50d", "test_byobnet",
                "convnext_zepto_rms", "mambaout_femto", "hiera_small_abswin_256", "test_vit"]
# the slowest to build and run here (each over 15 s on a loaded 2-core machine): marked, still run in CI
HEAVY_ARCHS = {"mobilenetv4_hybrid_medium", "resnet50d", "hiera_small_abswin_256"}


def _params(names):
    return [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY_ARCHS else n for n in names]


def _randomised(name: str, **kwargs) -> nn.Module:
    model = visionzoo.create_model(name, **kwargs).eval()
    randomise_(model)
    return model


@pytest.mark.parametrize("arch", _params(FAMILY_ARCHS))
def test_optimized_model_matches_eager(arch):
    model = _randomised(arch)
    optimized = optimize_for_inference(model)  # verifies itself: raises beyond 1e-4 or on a top-1 change
    assert isinstance(optimized, OptimizedModel) and optimized.dtype == torch.float32
    conv_net = arch not in ("hiera_small_abswin_256", "test_vit")
    assert (optimized.memory_format == torch.channels_last) == conv_net
    photos = photo_batch(model, optimized.img_size)
    with torch.no_grad():
        expected = model(photos)
    actual = optimized(photos)
    assert max_relative_error(actual, expected) < 1e-4
    assert torch.equal(actual.argmax(-1), expected.argmax(-1))
    assert all(not isinstance(m, nn.BatchNorm2d) or ".attn" in name or name.endswith(".norm")
               for name, m in optimized.named_modules())


def test_real_weights_keep_their_answers_on_real_photos(tmp_path):
    from tests.cli.test_real_photos import CAT_CLASSES, COFFEE_CLASSES, convert_lite0_checkpoint

    checkpoint = tmp_path / "lite0.safetensors"
    convert_lite0_checkpoint(checkpoint)
    model = visionzoo.create_model("efficientnet_lite0", checkpoint_path=checkpoint).eval()
    optimized = visionzoo.optimize_for_inference(model)
    photos = photo_batch(model, (224, 224))  # the cat, the coffee, the rocket
    with torch.no_grad():
        expected = model(photos)
    actual = optimized(photos)
    assert max_relative_error(actual, expected) < 1e-4
    top1 = actual.argmax(-1).tolist()
    assert top1 == expected.argmax(-1).tolist()
    assert top1[0] in CAT_CLASSES and top1[1] in COFFEE_CLASSES


def test_the_eager_model_is_left_alone():
    model = _randomised("test_byobnet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimize_for_inference(model)
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_dynamic_vit_resamples_its_position_embedding_once(monkeypatch):
    model = _randomised("test_vit")  # built at 160 with dynamic_img_size
    optimized = optimize_for_inference(model, img_size=224)
    assert optimized.model.pos_embed.shape[1] == 1 + (224 // 16) ** 2

    def no_resampling(*args, **kwargs):
        raise AssertionError("position embedding resampled during forward")

    monkeypatch.setattr("visionzoo.models.vit.resample_pos_embed", no_resampling)
    optimized(torch.randn(2, 3, 224, 224))
    with pytest.raises(ValueError, match="optimised for 224x224"):
        optimized(torch.randn(1, 3, 160, 160))


def test_hiera_position_embedding_is_computed_once(monkeypatch):
    model = visionzoo.create_model("hiera_small_abswin_256", depths=(1, 1, 1, 1), dynamic_img_size=True)
    model.eval()
    randomise_(model)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        expected = model(x)
        fix_input_size(model, 256)

        def no_interpolation(*args, **kwargs):
            raise AssertionError("position embedding interpolated during forward")

        monkeypatch.setattr("visionzoo.models.hiera.F.interpolate", no_interpolation)
        assert torch.equal(model(x), expected)
        with pytest.raises(ValueError, match="fixed for a 64x64 token grid, not 128x128"):
            model(torch.randn(1, 3, 512, 512))
    assert "fixed_pos_embed" not in model.state_dict()  # the checkpoint's keys are unchanged


def test_families_without_size_dependent_work_only_check_the_size():
    model = _randomised("test_byobnet")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fix_input_size(model, 96) is model
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    vit = _randomised("test_vit", dynamic_img_size=False)
    with pytest.raises(InputSizeError, match="was built for 160x160 inputs, not 224"):
        fix_input_size(vit, 224)


def test_channels_last_is_for_conv_nets():
    with torch.device("meta"):
        assert prefers_channels_last(visionzoo.create_model("resnet50d"))
        assert prefers_channels_last(visionzoo.create_model("mobilenetv4_conv_small"))
        assert not prefers_channels_last(visionzoo.create_model("test_vit"))
        assert not prefers_channels_last(visionzoo.create_model("hiera_small_abswin_256"))


def test_bf16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(optimize_module, "native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert inference_dtype(torch.bfloat16) == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inference_dtype(torch.float32) == torch.float32
        assert inference_dtype(torch.bfloat16, "cuda") == torch.bfloat16
    monkeypatch.setattr(optimize_module, "native_bf16", lambda: True)
    assert inference_dtype(torch.bfloat16) == torch.bfloat16


def test_bf16_model_agrees_within_its_precision(monkeypatch):
    monkeypatch.setattr(optimize_module, "native_bf16", lambda: True)  # oneDNN runs bf16 either way
    model = _randomised("test_byobnet")
    optimized = optimize_for_inference(model, dtype=torch.bfloat16)
    assert optimized.dtype == torch.bfloat16 and next(optimized.model.parameters()).dtype == torch.bfloat16
    x = verification_inputs(model, optimized.img_size)["random x4"]
    assert optimized(x).dtype == torch.float32


@pytest.mark.heavy
def test_compiled_with_freezing_matches_eager():
    model = _randomised("test_efficientnet")
    optimized = optimize_for_inference(model, compile=True)  # compiles during its own verification
    x = torch.randn(2, 3, *optimized.img_size)
    with torch.no_grad():
        assert max_relative_error(optimized(x), model(x)) < 1e-4


class _SharedForward(nn.Module):
    def forward(self, x):  # one code object for both subclasses, as ClassifierModel.forward for the families
        return self.body(x)


class _Linear(_SharedForward):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)


class _Mlp(_SharedForward):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4))


@pytest.mark.heavy
def test_every_compiled_model_gets_its_own_graphs():
    # Dynamo caches per code object; with a shared forward the second model would pass this limit of 1
    # and run eager without compiling
    from torch._dynamo.utils import counters

    # config.patch, not monkeypatch: monkeypatch's undo deletes the setting from torch's config module
    torch._dynamo.reset()
    limit = torch._dynamo.config.recompile_limit
    with torch._dynamo.config.patch(recompile_limit=1):
        for model in (_Linear().eval(), _Mlp().eval()):
            graphs = counters["stats"]["unique_graphs"]
            x = torch.randn(2, 4)
            with torch.no_grad():
                expected = model(x)
                assert torch.allclose(compile_frozen(model)(x), expected, atol=1e-6)
            assert counters["stats"]["unique_graphs"] == graphs + 1
    assert torch._dynamo.config.recompile_limit == limit


def test_onednn_linear_computes_what_linear_computes():
    model = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8, bias=False)).eval()
    keys = model.state_dict().keys()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        expected = model(x)
        use_onednn_linear(model)
        assert all(type(m) is OneDnnLinear for m in (model[0], model[2]))
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model(x.transpose(0, 1).contiguous().transpose(0, 1)), expected,
                                   rtol=1e-5, atol=1e-6)  # a strided input
    assert model.state_dict().keys() == keys


@pytest.mark.parametrize("faster", [True, False])
def test_onednn_linear_where_this_cpu_runs_it_faster(monkeypatch, faster):
    monkeypatch.setattr(optimize_module, "onednn_linear_is_faster", lambda: faster)
    optimized = optimize_for_inference(_randomised("test_vit"))  # verified against eager
    linears = [type(m) for m in optimized.modules() if isinstance(m, nn.Linear)]
    assert linears and all(t is (OneDnnLinear if faster else nn.Linear) for t in linears)
    forced = optimize_for_inference(_randomised("test_vit"), onednn_linear=not faster)
    assert any(type(m) is OneDnnLinear for m in forced.modules()) is (not faster)
