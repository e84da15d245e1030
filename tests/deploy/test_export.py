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
    calibrate_batch_norms_(model, model.default_img_size)
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
    spec = ExportSpec(fmt, model.default_img_size)
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


def test_cli_refuses_an_opset_the_exporter_would_not_write(checkpoint, tmp_path, capsys):
    # torch's dynamo exporter silently writes opset 18 for anything older: refused, not changed
    output = tmp_path / "m.onnx"
    for opset in ("5", "17"):
        assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), "--format", "onnx",
                     "--output", str(output), "--opset", opset]) == 2
        err = capsys.readouterr().err
        assert f"opset {opset} cannot be written" in err and err.count("\n") == 1
    assert not output.exists()


def test_an_asked_opset_is_the_written_one(tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    export_model(_randomised("test_byobnet"), path, img_size=64, opset=19)
    assert [o.version for o in onnx.load(str(path)).opset_import if o.domain == ""] == [19]


def test_cli_checks_the_path_and_the_size_before_any_work(checkpoint, tmp_path, capsys, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the export started")

    monkeypatch.setattr(export_module, "write_artifact", no_work)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder.onnx").mkdir()
    cases = [
        (["--output", str(tmp_path / "folder.onnx")], "is a folder; name a file inside it"),
        (["--output", str(tmp_path / "a_file" / "m.onnx")],
         f"cannot create the folder {tmp_path / 'a_file'}"),
        (["--output", str(tmp_path / "m.onnx"), "--img-size", "8"], "needs inputs of at least 32 pixels"),
    ]
    for argv, message in cases:
        assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), "--format", "onnx",
                     *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_cli_refuses_an_unwritable_folder(checkpoint, tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere: say it cannot
    assert main(["export", "test_byobnet", "--checkpoint", str(checkpoint), "--format", "onnx",
                 "--output", str(tmp_path / "m.onnx")]) == 2
    assert f"cannot write to the folder {tmp_path} (permission denied)" in capsys.readouterr().err


def test_a_new_export_replaces_the_old_side_file_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import onnx

    from visionzoo.deploy.staging import onnx_side_files

    monkeypatch.setattr(export_module, "EXTERNAL_DATA_BYTES", 1000)
    path = tmp_path / "m.onnx"
    model = _randomised("test_efficientnet")
    first = export_model(model, path, img_size=64)
    second = export_model(model, path, img_size=64, dynamic_batch=True)
    assert first.side_file != second.side_file and not first.side_file.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.onnx", second.side_file.name])
    assert onnx_side_files(path) == {second.side_file.name}
    onnx.checker.check_model(str(path))
    assert load_exported(path, "onnx")(torch.randn(3, 3, 64, 64)).shape == (3, 1000)


@pytest.mark.heavy  # seven exports in fresh processes: ~2 minutes here
def test_killed_exports_leave_the_old_file_or_the_new_one_never_a_torn_one(checkpoint, tmp_path):
    """Fault injection: `visionzoo export` killed (SIGKILL) at random points of its run, several times."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import onnx

    from visionzoo.deploy.metadata import read_metadata

    output = tmp_path / "out" / "m.onnx"
    output.parent.mkdir()
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def command(size: int) -> list[str]:
        return [sys.executable, "-m", "visionzoo", "export", "test_byobnet", "--checkpoint", str(checkpoint),
                "--format", "onnx", "--output", str(output), "--img-size", str(size)]

    start = time.monotonic()
    assert subprocess.run(command(64), env=env, capture_output=True).returncode == 0
    duration = time.monotonic() - start
    old = output.read_bytes()
    rng = random.Random(0)
    outcomes = []
    for _ in range(4):
        process = subprocess.Popen(command(96), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.1) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait()
        data = output.read_bytes()
        if data == old:
            outcomes.append("old")
            continue
        onnx.checker.check_model(str(output))  # a whole file
        assert read_metadata(output).img_size == (96, 96)  # the new one, complete with its record
        assert load_exported(output, "onnx")(torch.zeros(1, 3, 96, 96)).shape == (1, 1000)
        outcomes.append("new")
        output.write_bytes(old)  # the next round starts again from the old file
    # the next export cleans what the killed ones left (their staging folders)
    assert subprocess.run(command(64), env=env, capture_output=True).returncode == 0
    assert [p.name for p in output.parent.iterdir()] == ["m.onnx"], outcomes
