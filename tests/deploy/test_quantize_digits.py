"""int8 on a real labelled set with real weights: EfficientNet-Lite0 (the real ImageNet weights the evaluation
tests use) fine-tuned on the UCI handwritten digits, quantized (onnxruntime static QDQ, calibrated on training
images), measured on the held-out digits: the top-1 drop is at most 1 point, and `--max-drop` refuses a
larger one without touching the file already there."""

from __future__ import annotations

import pytest

import visionzoo
from tests.cli.test_real_photos import convert_lite0_checkpoint
from tests.train.conftest import write_digits
from visionzoo.cli.main import main
from visionzoo.deploy import quantize as quantize_module
from visionzoo.deploy.metadata import read_metadata
from visionzoo.deploy.quantize import AccuracyDrop, quantize_model


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def tuned_lite0(digits, tmp_path_factory):
    """Real Lite0 weights, two epochs on the digits at 64 pixels (tests/train/test_digits.py's recipe; after
    one epoch, at 88.6%, many held-out digits sit on a near tie that any rounding flips)."""
    folder = tmp_path_factory.mktemp("lite0_digits")
    weights = folder / "lite0.safetensors"
    convert_lite0_checkpoint(weights)
    with pytest.warns(UserWarning, match="initialised afresh for 10"):
        assert main(["train", "--model", "efficientnet_lite0", "--checkpoint", str(weights), "--num-classes",
                     "10", "--img-size", "64", "--batch-size", "32", "--epochs", "2", "--opt", "adamw",
                     "--lr", "2e-3", "--weight-decay", "0.05", "--scale", "0.5", "1", "--hflip", "0",
                     "--workers", "0", "--data", str(digits[0]), "--val-data", str(digits[1]),
                     "--output", str(folder / "run")]) == 0
    return folder / "run" / "last" / "model.safetensors"


def _model(checkpoint):
    return visionzoo.create_model("efficientnet_lite0", checkpoint_path=checkpoint, num_classes=10,
                                  img_size=64).eval()


@pytest.mark.heavy
def test_fine_tuned_lite0_loses_at_most_one_point_in_int8(tuned_lite0, digits, tmp_path):
    output = tmp_path / "digits.int8.onnx"
    result = quantize_model(_model(tuned_lite0), output, digits[0], calibration_count=200, img_size=64,
                            val_data=digits[1], max_drop=1.0)
    accuracy = result.accuracy
    assert accuracy.count == 360  # every fifth of the 1,797 digits
    assert accuracy.fp32_top1 > 95, accuracy.line()  # a real fine-tune, not chance
    assert accuracy.drop <= 1.0 and accuracy.agreement >= 98, accuracy.line()
    assert result.verification.passed  # photos and calibration images
    meta = read_metadata(output)
    assert meta.precision == "int8" and meta.num_classes == 10 and meta.img_size == (64, 64)
    assert meta.quantization.calibration_images == 200 and "first conv" in meta.quantization.float_ops[0]
    print(accuracy.line())  # the figure for the closing note (pytest -s)


@pytest.mark.heavy
def test_max_drop_refuses_to_write_and_keeps_the_old_file(tuned_lite0, digits, tmp_path, monkeypatch,
                                                          capsys):
    output = tmp_path / "digits.int8.onnx"
    output.write_bytes(b"the good file from before")
    measured = AccuracyDrop(str(digits[1]), 360, 97.5, 95.0, 96.0)  # a 2.5-point drop
    monkeypatch.setattr(quantize_module, "measure_drop", lambda *args, **kwargs: measured)
    code = main(["quantize", "efficientnet_lite0", "--checkpoint", str(tuned_lite0), "--img-size", "64",
                 "--calibration", str(digits[0]), "--calibration-count", "20", "--output", str(output),
                 "--val-data", str(digits[1]), "--max-drop", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "not written: int8 top-1 drop 2.500 points is beyond max_drop 1" in out
    assert output.read_bytes() == b"the good file from before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.int8.onnx"]
