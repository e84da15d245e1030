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
