"""int8 quantization: one model per conv family through onnxruntime's static QDQ quantizer (outputs agree
with fp32 on the real photos; the float ops listed), torchao's PT2E for pt2, the real Lite0 weights (the same
top-1 as fp32 on every shipped photo), the reduce-range choice from the CPU, and the command's refusals."""

from __future__ import annotations

import onnx
import pytest
import skimage.data
import torch

import visionzoo
from tests.reference import calibrate_batch_norms_, randomise_
from visionzoo.cli.main import main
from visionzoo.deploy import quantize as quantize_module
from visionzoo.deploy.metadata import read_metadata
from visionzoo.deploy.quantize import (
    INT8_TOP1_MARGIN,
    QuantizationError,
    calibration_images,
    load_int8,
    quantize_model,
    reduce_range_choice,
)
from visionzoo.deploy.verify import PHOTO_NAMES, photo_batch

pytest.importorskip("onnxruntime")

PHOTOS = skimage.data.__path__[0]  # real photos to calibrate on (scikit-image's sample data)
# one architecture per conv family (ConvNeXt-RMS: its RMSNorm exports as plain arithmetic at opset 18), and
# a ViT, whose softmax and LayerNorm stay in float and make it the percentile-calibrated one
CONV_FAMILIES = {"test_efficientnet": 96, "mobilenetv4_conv_small_050": 96, "test_byobnet": 96,
                 "convnext_zepto_rms": 64, "resnet50d": 96, "test_vit": 160}
HEAVY = {"resnet50d"}


def _randomised(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = visionzoo.create_model(name).eval()
    randomise_(model)
    calibrate_batch_norms_(model, model.default_img_size)
    return model


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.heavy) if a in HEAVY else a
                                  for a in CONV_FAMILIES])
def test_each_family_quantizes_and_agrees_with_fp32_on_the_photos(arch, tmp_path):
    model = _randomised(arch)
    size = CONV_FAMILIES[arch]
    result = quantize_model(model, tmp_path / "m.onnx", PHOTOS, calibration_count=16, img_size=size)
    verification = result.verification  # raised already if it failed: here, what it measured
    assert [c.inputs for c in verification.comparisons] == ["photos", "calibration"]
    assert verification.passed and verification.comparisons[0].top1_errors == 0, verification.lines()
    q = result.metadata.quantization
    assert q.float_ops[0].startswith("first conv (") and q.float_ops[1].startswith("classifier (")
    attention = arch == "test_vit"
    assert q.calibration_method == ("percentile 99.999" if attention else "minmax")
    assert any(op.startswith("LayerNormalization x") for op in q.float_ops) == attention
    assert any(op.startswith("Softmax x") for op in q.float_ops) == attention
    assert q.per_channel and q.engine == "onnxruntime static QDQ"
    # the file holds int8 weights: QDQ pairs around the convs, and the float ops left without them
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert sum(n.op_type == "DequantizeLinear" for n in graph.node) > 10
    first = next(n for n in graph.node if n.name == q.float_ops[0].split("(")[1].rstrip(")"))
    producers = {o: n.op_type for n in graph.node for o in n.output}
    assert all(producers.get(i) != "DequantizeLinear" for i in first.input[1:])  # float weights


def test_real_lite0_keeps_every_shipped_photo_s_top1(tmp_path):
    from tests.cli.test_real_photos import CAT_CLASSES, COFFEE_CLASSES, convert_lite0_checkpoint

    weights = tmp_path / "lite0.safetensors"
    convert_lite0_checkpoint(weights)
    model = visionzoo.create_model("efficientnet_lite0", checkpoint_path=weights).eval()
    result = quantize_model(model, tmp_path / "lite0.int8.onnx", PHOTOS, calibration_count=24)
    photos = photo_batch(model, (224, 224))
    assert photos.shape[0] == len(PHOTO_NAMES) == 3
    with torch.no_grad():
        expected = model(photos).argmax(-1)
    actual = load_int8(result.path, "onnx")(photos).argmax(-1)
    assert actual.tolist() == expected.tolist()  # the cat, the coffee, the rocket: exactly fp32's top-1
    assert actual[0].item() in CAT_CLASSES and actual[1].item() in COFFEE_CLASSES
    assert result.metadata.quantization.reduce_range == reduce_range_choice()[0]
    assert result.path.stat().st_size < 0.6 * sum(p.numel() * 4 for p in model.parameters())


def test_pt2_through_torchao_pt2e(tmp_path):
    pytest.importorskip("torchao")
    model = _randomised("test_efficientnet")
    result = quantize_model(model, tmp_path / "m.pt2", PHOTOS, "pt2", calibration_count=8, img_size=64,
                            batch_size=2)
    q = read_metadata(tmp_path / "m.pt2").quantization
    assert q.engine == "torchao PT2E X86InductorQuantizer" and q.float_ops[:2] == (
        "first conv (conv_stem)", "classifier (classifier)")
    assert result.verification.passed
    program = torch.export.load(str(tmp_path / "m.pt2"))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_tensor" in t for t in targets)  # the PT2E int8 pattern, for Inductor to lower


def test_reduce_range_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(quantize_module, "int8_dot_products", lambda: False)
    reduce, why = reduce_range_choice()
    assert reduce and "no int8 dot products" in why
    monkeypatch.setattr(quantize_module, "int8_dot_products", lambda: True)
    assert reduce_range_choice()[0] is False


def test_calibration_images_spread_over_the_class_folders(tmp_path):
    for label in ("a", "b", "c"):
        (tmp_path / label).mkdir()
        for i in range(4):
            (tmp_path / label / f"{i}.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")
    chosen = calibration_images(tmp_path, 3)
    assert [p.parent.name for p in chosen] == ["a", "b", "c"]
    assert len(calibration_images(tmp_path, 100)) == 12


def test_verification_failure_writes_nothing(tmp_path, monkeypatch):
    model = _randomised("test_byobnet")
    monkeypatch.setattr(quantize_module, "load_int8", lambda path, fmt, compiled=False: lambda x: -model(x))
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with pytest.raises(QuantizationError, match="differs from fp32 beyond a near tie"):
        quantize_model(model, target, PHOTOS, calibration_count=4, img_size=64)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert INT8_TOP1_MARGIN < 1


@pytest.mark.parametrize("argv, message", [
    (["--output", "m.int8.pt2"], "an ONNX file is named .onnx"),
    (["--output", "m.onnx", "--format", "tflite"], "int8 is written as onnx or pt2"),
    (["--output", "m.onnx", "--max-drop", "1"], "--max-drop needs --val-data"),
    (["--output", "m.onnx", "--calibration", "/no/such"], "calibration folder /no/such does not exist"),
])
def test_cli_refusals_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    # a repeated --calibration: the last one counts
    assert main(["quantize", "test_byobnet", "--checkpoint", str(_checkpoint(tmp_path)), "--img-size", "64",
                 "--calibration", PHOTOS, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def _checkpoint(folder):
    from safetensors.torch import save_file

    path = folder / "byob.safetensors"
    save_file(_randomised("test_byobnet").state_dict(), path)
    return path


def test_cli_prints_the_engine_the_float_ops_and_the_agreement(tmp_path, capsys, monkeypatch):
    output = tmp_path / "m.int8.onnx"
    speedups = []
    real_speedup = quantize_module._speedup
    monkeypatch.setattr(quantize_module, "_speedup", lambda *a: speedups.append(real_speedup(*a)) or 0.8)
    assert main(["quantize", "test_byobnet", "--checkpoint", str(_checkpoint(tmp_path)), "--img-size", "64",
                 "--calibration", PHOTOS, "--calibration-count", "8", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert speedups[0] > 0  # measured on the two files (the figure is not asserted: no timing in tests)
    assert "speed: int8 is SLOWER than fp32 here (0.80x, onnxruntime on this CPU" in out
    assert f"wrote {output} (int8 onnx, 64x64, any batch)" in out
    assert "engine: onnxruntime static QDQ; calibration: minmax on 8 images" in out
    assert "kept in float: first conv (" in out and "; classifier (" in out
    assert "photos" in out and "calibration" in out and "verification ok (top-1 agreement" in out
