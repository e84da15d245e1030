"""Inference backends for `visionzoo benchmark --backend`: our model optimised, compiled, or in onnxruntime.

Each backend is built and run once (compilation, session start-up: its setup time, reported apart from the
steady state), then checked against the eager model at the benchmark's batch size, and only then timed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .export import ExportSpec, write_artifact
from .optimize import optimize_for_inference
from .verify import FP32_RTOL, REDUCED_PRECISION_RTOL, compare, verification_inputs

BACKENDS = ("eager", "optimized", "compile", "onnxruntime")


def onnxruntime_version() -> str:
    """The installed onnxruntime's version, '' if it is not installed (without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxruntime")
    except PackageNotFoundError:
        return ""


def _onnxruntime_session(model: nn.Module,
                         x: torch.Tensor) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """`model` exported to ONNX for `x`'s shape, in an InferenceSession with torch's thread count."""
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeError("the onnxruntime backend needs pip install 'visionzoo[export]'") from None

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        write_artifact(model, ExportSpec("onnx", tuple(x.shape[-2:]), batch_size=x.shape[0]), path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # torch's threads: a fair comparison
        start = time.perf_counter()
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name

        def run(batch: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {input_name: batch.numpy()})[0])

        run(x)
        return run, time.perf_counter() - start


def build_backend(backend: str, model: nn.Module, x: torch.Tensor,
                  dtype: torch.dtype = torch.float32) -> tuple[Callable[[], object], float]:
    """A no-argument step that runs `backend` on `x`, and the backend's setup seconds.

    Setup: optimising (and compiling, on the first call) or exporting and starting the onnxruntime session.
    The backend is verified against `model` (eager) on the shipped photos and a random batch of `x`'s shape;
    raises VerificationError beyond the tolerance.
    """
    if backend not in BACKENDS[1:]:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS[1:]}")
    img_size = tuple(x.shape[-2:])
    if backend == "onnxruntime":
        if dtype != torch.float32:
            raise ValueError("the onnxruntime backend runs float32 only")
        x = x.float().cpu().contiguous()
        candidate, setup = _onnxruntime_session(model, x)
        rtol = FP32_RTOL
    else:
        start = time.perf_counter()
        candidate = optimize_for_inference(model, img_size, dtype, compile=backend == "compile", verify=False)
        x = x.to(dtype=candidate.dtype, memory_format=candidate.memory_format)
        candidate(x)  # the compile backend compiles here
        setup = time.perf_counter() - start
        rtol = FP32_RTOL if candidate.dtype == torch.float32 else REDUCED_PRECISION_RTOL
    inputs = verification_inputs(model, img_size, fixed_batch=x.shape[0])
    with torch.no_grad():
        compare(model, candidate, inputs, rtol).check(f"the {backend} backend")
    return (lambda: candidate(x)), setup
