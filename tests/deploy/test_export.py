"""Export to ONNX / pt2 / AOTInductor and verification against eager, through the library and the CLI.

Every architecture exports to both formats at its default size here, on randomised weights (the SO400M
towers marked heavy with the other large models); `benchmarks/export_sweep.py --tags` does the same for
every published tag (each head and input size).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import visionzoo
from tests.models.conftest import ARCHS
from tests.reference import calibrate_batch_norms_, randomise_
from visionzoo.cli import export as export_cli
from visionzoo.cli.main import main
from visionzoo.deploy import export as export_module
from visionzoo.deploy.export import (
    FORMATS,
    ExportError,
    ExportSpec,
    export_model,
    load_exported,
    write_artifact,
)
from visionzoo.deploy.optimize import default_img_size
from visionzoo.deploy.verify import compare, verification_inputs
from visionzoo.factory import parameter_count

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# over 20M parameters, an architecture takes more than ~10 s per format here: marked, still run in CI
HEAVY_ARCHS = frozenset(name for name in ARCHS if parameter_count(name) > 20e6)
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "aoti": ".pt2"}


def _randomised(name: str) -> nn.Module:
    """Random weights, perturbed, with BatchNorm statistics of the model's own activations (see reference)."""
    torch.manual_seed(0)
    model = visionzoo.create_model(name).eval()
    randomise_(model)
    calibrate_batch_norms_(model, default_img_size(model))
    return model


def _export_and_compare(model, spec: ExportSpec, path):
    write_artifact(model, spec, path)
    fixed = None if spec.dynamic_batch else spec.batch_size
    inputs = verification_inputs(model, spec.img_size, fixed_batch=fixed)
    try:
        return compare(model, load_exported(path, spec.format), inputs)
    finally:  # the big towers write GBs: free the disk before the next test, not at the session's end
        for written in path.parent.glob(f"{path.name}*"):
            written.unlink()


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.heavy) if a in HEAVY_ARCHS else a
                                  for a in ARCHS])
def test_exports_and_verifies_at_default_size(arch, fmt, tmp_path):
    model = _randomised(arch)
    spec = ExportSpec(fmt, default_img_size(model))
    verification = _export_and_compare(model, spec, tmp_path / f"model{SUFFIX[fmt]}")
    assert verification.passed, verification.lines()
    assert [c.inputs for c in verification.comparisons] == ["photos", "random x1"]


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_dynamic_batch_runs_any_batch_size(fmt, tmp_path):
    model = _randomised("test_efficientnet")
    spec = ExportSpec(fmt, (160, 160), dynamic_batch=True)
    verification = _export_and_compare(model, spec, tmp_path / f"model{SUFFIX[fmt]}")
    assert verification.passed, verification.lines()
    assert [c.count for c in verification.comparisons] == [3, 1, 4]


@pytest.mark.parametrize("arch", ["test_byobnet", pytest.param("resnet50d", marks=pytest.mark.heavy)])
def test_odd_sizes_through_ceil_mode_average_pooling(arch, tmp_path):
    # ResNet-D and ByobNet shortcuts average-pool with ceil_mode: odd maps keep a partial last window
    model = _randomised(arch)
    spec = ExportSpec("onnx", (161, 97), batch_size=2)
    verification = _export_and_compare(model, spec, tmp_path / "model.onnx")
    assert verification.passed, verification.lines()


@pytest.mark.parametrize("limit, external", [(2**30, False), (1000, True)])
def test_large_models_keep_their_weights_beside_the_onnx_file(tmp_path, monkeypatch, limit, external):
    monkeypatch.setattr(export_module, "EXTERNAL_DATA_BYTES", limit)
    path = tmp_path / "m.onnx"
    export_model(_randomised("test_efficientnet"), path, img_size=64)
    side_files = [p.name for p in tmp_path.iterdir() if p.name != "m.onnx"]
    assert bool(side_files) == external
    run = load_exported(path, "onnx")  # onnxruntime finds the side file
    assert run(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


class _DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # control flow on values: torch.export cannot capture it
            return x.mean((2, 3))
        return x.amax((2, 3))


def test_what_the_exporter_cannot_take_is_one_line(tmp_path):
    with pytest.raises(ExportError) as info:
        export_model(_DataDependent(), tmp_path / "m.pt2", "pt2", img_size=8)
    assert "\n" not in str(info.value) and "torch.export cannot capture this model" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing left behind
    with pytest.raises(ExportError, match="name the output m.pt2"):
        export_model(_DataDependent(), tmp_path / "m.onnx", "pt2", img_size=8)


@pytest.mark.heavy
def test_aoti_package_runs_and_verifies(tmp_path):
    model = _randomised("test_byobnet")
    spec = ExportSpec("aoti", (64, 64), batch_size=2)
    verification = _export_and_compare(model, spec, tmp_path / "model.pt2")
    assert verification.passed, verification.lines()


@pytest.fixture
def checkpoint(tmp_path):
    model = _randomised("test_byobnet")
    path = tmp_path / "test_byobnet.safetensors"
    save_file(model.state_dict(), path)
    return path


def test_cli_exports_and_prints_the_verification(checkpoint, tmp_path, capsys):
    output = tmp_path / "model.onnx"
    assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), "--format", "onnx",
                 "--output", str(output), "--img-size", "96", "--dynamic-batch"]) == 0
    out = capsys.readouterr().out
    assert output.is_file() and "dynamic batch" in out
    assert "photos" in out and "random x4" in out and "verification ok" in out


def test_cli_fails_when_the_artifact_disagrees(checkpoint, tmp_path, capsys, monkeypatch):
    real_load = export_module.load_exported
    monkeypatch.setattr(export_module, "load_exported",
                        lambda path, fmt: lambda x: real_load(path, fmt)(x) + 1)
    assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), "--format", "pt2",
                 "--output", str(tmp_path / "m.pt2"), "--img-size", "64"]) == 1
    assert "verification FAILED" in capsys.readouterr().out
    assert not (tmp_path / "m.pt2").exists() and list(tmp_path.iterdir()) == [checkpoint]


@pytest.mark.parametrize("argv, message", [
    (["--format", "pt2", "--output", "m.pt2", "--opset", "17"], "--opset applies to ONNX only"),
    (["--format", "onnx", "--output", "m.pt2"], "an ONNX file is named .onnx; name the output m.onnx"),
])
def test_cli_refuses_options_the_format_cannot_take(checkpoint, argv, message, capsys):
    assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_refuses_an_unknown_format(checkpoint, capsys):
    assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), "--format", "tflite",
                 "--output", "m.onnx"]) == 2
    assert f"choose one of {', '.join(FORMATS)}" in capsys.readouterr().err
    assert not hasattr(export_cli, "FORMATS")  # one list, in the library
