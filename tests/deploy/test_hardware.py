"""CPU facts for precision choices and benchmark rows; benchmark rows of several backends in the report."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from visionzoo.deploy import cpu_info, native_bf16
from visionzoo.deploy.hardware import _cpuinfo
from visionzoo.report.user_results import read_user_results


def test_cpu_info_names_the_cpu_and_what_torch_dispatches_to():
    info = cpu_info()
    assert info.model and info.isa == torch.backends.cpu.get_cpu_capability()
    assert info.threads == torch.get_num_threads() and info.native_bf16 == native_bf16()


def test_native_bf16_follows_the_cpu_flags():
    _, flags = _cpuinfo()
    if Path("/proc/cpuinfo").is_file():
        hardware = bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
        # oneDNN must also be able to use it; it can where the CPU has the instructions
        assert native_bf16() == (hardware and torch.backends.mkldnn.is_available())


def test_report_keeps_each_backend_apart(tmp_path):
    rows = [dict(model="test_byobnet", img_size=160, batch_size=1, precision="fp32", device="cpu",
                 status="ok", infer_img_per_s=speed, backend=backend)
            for backend, speed in (("eager", 10.0), ("onnxruntime", 30.0))]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"results": rows}))
    results = read_user_results([path])
    assert [s.label for s in results.settings] == ["cpu, bs 1, fp32", "cpu, bs 1, fp32, onnxruntime"]


def test_benchmark_rows_with_accuracy_make_the_deployed_table_and_plot(tmp_path):
    from visionzoo.report.page import deployed_section, plot_files
    from visionzoo.report.plots import Point, write_plot

    common = dict(model="test_byobnet", img_size=64, device="cpu", device_name="AMD EPYC", status="ok",
                  cpu_isa="AVX512", cpu_features="VNNI, bf16", threads=1, weights="w.safetensors",
                  val_images=360)
    rows = [dict(common, backend=backend, format=fmt, precision=precision, batch_size=batch,
                 infer_img_per_s=speed, infer_ms=1000 * batch / speed, setup_s=2.0, artifact_mb=size,
                 top1=top1, top1_agreement=agree)
            for backend, fmt, precision, size, top1, agree, speed, batch in (
                ("eager", "torch", "fp32", 4.0, 88.61, 100.0, 50.0, 1),
                ("onnxruntime", "onnx", "fp32", 4.0, 88.61, 100.0, 70.0, 1),
                ("int8", "onnx", "int8", 1.2, 88.06, 97.5, 120.0, 1),
                ("int8", "onnx", "int8", 1.2, 88.06, 97.5, 160.0, 8))]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"results": rows}))
    results = read_user_results([path])
    assert [r.label.removeprefix("test_byobnet ") for r in results.deployed] == [
        "eager/fp32 b1", "onnxruntime/fp32 b1", "int8/int8 b1", "int8/int8 b8"]
    assert results.accuracy == {}  # a benchmark's top-1 is of the user's set, not ImageNet's
    text = "\n".join(deployed_section(results.deployed))  # the page's section (the whole page: ~1 min)
    assert "## Deployed: accuracy x speed per format" in text
    assert "| test_byobnet | 64 | int8 | onnx | int8 | 8 | 88.06 | 97.50 | 160.0 | 50.00 | 2.0 | 1.2 |" \
        in text
    assert "AMD EPYC (AVX512; VNNI, bf16; 1 threads)" in text
    files = dict(plot_files(2024, False, with_deployed=True))
    assert files["deployed: top-1 vs latency per backend"] == "2024-deployed-top1-vs-latency.png"
    write_plot(tmp_path / "deployed.png", [Point(r.label, r.latency_ms, r.top1) for r in results.deployed],
               "latency (ms)", "deployed", data="the user's set:")
    assert (tmp_path / "deployed.png").stat().st_size > 10_000
