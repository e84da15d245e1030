"""`validate --backend` on a small real set (real Lite0 weights, real photos): every backend's row sits next
to eager's with their top-1 agreement, and its figures are those of the same artifact made and run by hand."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

import visionzoo
from tests.cli.test_real_photos import PHOTOS, VALIDATION_SET, convert_lite0_checkpoint
from visionzoo.cli.main import main
from visionzoo.data.config import resolve_data_config
from visionzoo.deploy.accuracy import evaluate_artifact, fit_batch, model_classes
from visionzoo.deploy.export import export_model
from visionzoo.deploy.quantize import quantize_model
from visionzoo.deploy.runners import BACKENDS, SUPPORTED, Runner, build_runner, check_backend
from visionzoo.errors import UserError

pytest.importorskip("onnxruntime")

CALIBRATION_COUNT = 12


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(checkpoint, val folder, calibration folder): Lite0's ImageNet weights, 7 labelled photos, others."""
    root = tmp_path_factory.mktemp("real")
    weights = root / "lite0.safetensors"
    convert_lite0_checkpoint(weights)
    for i, (photo, synset) in enumerate(VALIDATION_SET):
        (root / "val" / synset).mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(PHOTOS, photo), root / "val" / synset / f"{i}_{photo}")
    used = {photo for photo, _ in VALIDATION_SET}
    (root / "calibration").mkdir()
    for name in sorted(os.listdir(PHOTOS)):
        if name.endswith((".png", ".jpg")) and name not in used:
            shutil.copy(os.path.join(PHOTOS, name), root / "calibration" / name)
    return weights, root / "val", root / "calibration"


def _validate(real, tmp_path, *extra) -> list[dict]:
    weights, val, _ = real
    results = tmp_path / "results.json"
    assert main(["validate", "--model", "efficientnet_lite0", "--checkpoint", str(weights), "--data",
                 str(val), "--batch-size", "4", "--workers", "0", "--device", "cpu", "--results-file",
                 str(results), *extra]) == 0
    return json.loads(results.read_text())["results"]


def _by_hand(real, run) -> dict:
    weights, val, _ = real
    model = visionzoo.create_model("efficientnet_lite0", checkpoint_path=weights).eval()
    result, _ = evaluate_artifact(run, val, resolve_data_config(model), model_classes(model), batch_size=4)
    return dict(top1=round(result.top1, 4), top5=round(result.top5, 4), loss=round(result.loss, 6),
                count=result.count)


def _same(row: dict, hand: dict) -> None:
    assert (row["top1"], row["top5"], row["count"]) == (hand["top1"], hand["top5"], hand["count"])
    assert row["loss"] == pytest.approx(hand["loss"], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("backend", [pytest.param(b, marks=pytest.mark.heavy) if b == "compile" else b
                                     for b in BACKENDS if b != "eager"])
def test_every_backend_next_to_eager_equals_its_artifact_run_by_hand(real, backend, tmp_path, capsys):
    weights, _, calibration = real
    extra = ["--calibration", str(calibration), "--calibration-count", str(CALIBRATION_COUNT)] \
        if backend == "int8" else []
    eager, row = _validate(real, tmp_path, "--backend", backend, *extra)
    assert (eager["backend"], row["backend"]) == ("eager", backend) and eager["top1_agreement"] is None
    assert eager["top1"] == round(100 * 5 / 7, 4)  # the figure tests/cli/test_real_photos.py checks
    assert f"[{backend}]" in capsys.readouterr().out
    model = visionzoo.create_model("efficientnet_lite0", checkpoint_path=weights).eval()
    if backend in ("onnxruntime", "pt2"):  # the file, exported by hand, validated alone
        path = tmp_path / f"by_hand.{'onnx' if backend == 'onnxruntime' else 'pt2'}"
        export_model(model, path, "onnx" if backend == "onnxruntime" else "pt2", dynamic_batch=True)
        (alone,) = _validate_file(path, real, tmp_path)
        _same(row, alone)
        assert alone["backend"] == backend
    elif backend == "int8":
        path = tmp_path / "by_hand.int8.onnx"
        quantize_model(model, path, calibration, calibration_count=CALIBRATION_COUNT)
        (alone,) = _validate_file(path, real, tmp_path)
        assert alone["backend"] == "int8" and alone["top1"] == row["top1"]
        _same(row, alone)
    else:
        hand = build_runner(backend, model)
        assert isinstance(hand, Runner) and hand.verification.passed
        _same(row, _by_hand(real, hand))
    # fp32 backends agree with eager on every photo; int8 on all but near ties (here: all)
    assert row["top1_agreement"] == 100.0
    if backend != "int8":
        _same(row, {k: eager[k] for k in ("top1", "top5", "count")} | {"loss": eager["loss"]})


def _validate_file(path, real, tmp_path) -> list[dict]:
    _, val, _ = real
    results = tmp_path / "alone.json"
    assert main(["validate", "--model", str(path), "--data", str(val), "--batch-size", "4", "--workers", "0",
                 "--results-file", str(results)]) == 0
    return json.loads(results.read_text())["results"]


def test_the_int8_backend_needs_calibration_images(real, capsys):
    weights, val, _ = real
    base = ["validate", "--model", "efficientnet_lite0", "--checkpoint", str(weights), "--data", str(val)]
    assert main([*base, "--backend", "int8", "--device", "cpu"]) == 2
    assert "give --calibration (a folder of images" in capsys.readouterr().err
    assert main([*base, "--backend", "tensorrt"]) == 2
    assert "unknown backend 'tensorrt'; choose one of eager, optimized" in capsys.readouterr().err


def test_backends_and_precisions_are_one_table():
    assert set(SUPPORTED) == set(BACKENDS)
    check_backend("onnxruntime", "int8")
    with pytest.raises(UserError, match="the eager backend runs fp32, bf16, not int8; int8 runs in: compile"):
        check_backend("eager", "int8")


def test_a_fixed_batch_artifact_takes_any_batch():
    seen = []

    def fixed(x: torch.Tensor) -> torch.Tensor:
        assert x.shape[0] == 4
        seen.append(x.shape[0])
        return x.flatten(1)[:, :2]

    out = fit_batch(fixed, 4)(torch.arange(6 * 3).float().reshape(6, 3, 1, 1))
    assert out.shape == (6, 2) and seen == [4, 4] and out[5, 0] == 15
