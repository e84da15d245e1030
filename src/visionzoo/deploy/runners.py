"""One runner per deployment backend: a callable from a preprocessed float32 NCHW batch to float32 logits.

Backends, each built from an eager model (and verified against it when built), or loaded from an exported
file (`load_runner`, its preprocessing read from the file's metadata):

    eager        the model as it is
    optimized    `optimize_for_inference` (folded, channels-last, oneDNN linears where faster)
    compile      the same, `torch.compile`d with freezing
    onnxruntime  exported to ONNX, run by onnxruntime's CPU provider
    pt2          exported with torch.export, the program loaded back and run by torch
    int8         quantized to int8 ONNX (onnxruntime static QDQ), run by onnxruntime

`precision="int8"` also applies to the compile backend (torchao PT2E, Inductor's int8 kernels) and the pt2
backend (the PT2E program, uncompiled: the reference arithmetic). `validate(backend=...)` and
`visionzoo benchmark --backend` use these runners, so a figure is of what is deployed.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..models.base import size_pair
from .accuracy import fit_batch
from .export import ExportSpec, load_exported, write_artifact
from .metadata import ExportMetadata, artifact_format, read_metadata
from .optimize import optimize_for_inference
from .quantize import compile_program, load_int8, quantize_model
from .verify import FP32_RTOL, REDUCED_PRECISION_RTOL, Verification, compare, photo_batch, verification_inputs

BACKENDS = ("eager", "optimized", "compile", "onnxruntime", "pt2", "int8")
PRECISIONS = ("fp32", "bf16", "int8")
# which backend runs which precision
SUPPORTED = {
    "eager": ("fp32", "bf16"),
    "optimized": ("fp32", "bf16"),
    "compile": ("fp32", "bf16", "int8"),
    "onnxruntime": ("fp32", "int8"),
    "pt2": ("fp32", "int8"),
    "int8": ("int8",),
}


def onnxruntime_version() -> str:
    """The installed onnxruntime's version, '' if it is not installed (without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("onnxruntime")
    except PackageNotFoundError:
        return ""


@dataclass
class Runner:
    """A deployed model: call it with a preprocessed float32 batch (any batch size) to get float32 logits."""

    backend: str
    format: str  # 'torch', 'onnx' or 'pt2'
    precision: str  # fp32, bf16 or int8
    run: Callable[[torch.Tensor], torch.Tensor]
    setup_s: float  # building, exporting, quantizing, compiling and the first call
    artifact_bytes: int | None  # the exported file(s), or the torch model's weights
    batch_size: int | None = None  # an artifact's fixed batch size (None: any)
    float_ops: tuple[str, ...] = ()  # int8: what stayed in float
    verification: Verification | None = None
    notes: tuple[str, ...] = field(default=())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.as_tensor(fit_batch(self.run, self.batch_size)(x)).float().cpu()

    def eval(self) -> Runner:  # `evaluation.evaluate` puts its model in eval mode
        return self


def check_backend(backend: str, precision: str = "fp32") -> None:
    """UserError unless `backend` exists and runs `precision`."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision not in SUPPORTED[backend]:
        runs = [b for b, p in SUPPORTED.items() if precision in p]
        raise UserError(f"the {backend} backend runs {', '.join(SUPPORTED[backend])}, not {precision}; "
                        f"{precision} runs in: {', '.join(runs)}")


def _weights_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _file_bytes(path: Path) -> int:
    side = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".") and p.suffix == ".data"]
    return path.stat().st_size + sum(p.stat().st_size for p in side)


def _onnxruntime(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    """An onnxruntime session with torch's thread count (a fair comparison with the torch backends)."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError("the onnxruntime backends need pip install 'visionzoo[export]'") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: x.detach().float().cpu().numpy()})[0])

    return run


def build_runner(backend: str, model: nn.Module, img_size: int | tuple[int, int] | None = None, *,
                 precision: str | None = None, batch_size: int | None = None,
                 calibration: str | os.PathLike | torch.Tensor | None = None, calibration_count: int = 200,
                 verify: bool = True) -> Runner:
    """`model` deployed with `backend` at `img_size` (default: its weights' size), timed from the start.

    Args:
        precision: fp32, bf16 (where the CPU computes it natively) or int8 (see SUPPORTED); default the
            backend's first (int8 for the int8 backend, else fp32).
        batch_size: the exported artifact's fixed batch (None: any batch size). Torch backends take any.
        calibration: int8 only: a folder of images or a preprocessed batch; default the shipped photos (fit
            for timing, not for accuracy figures).
        verify: compare with `model` on the shipped photos and random batches (int8: the photos and the
            calibration images, top-1 only); raises VerificationError / QuantizationError.
    """
    if backend in SUPPORTED and precision is None:
        precision = SUPPORTED[backend][0]
    check_backend(backend, precision or "fp32")
    size = model.default_img_size if img_size is None else size_pair(img_size)
    model = model.eval()
    start = time.perf_counter()
    if precision == "int8":
        runner = _int8_runner(backend, model, size, batch_size, calibration, calibration_count, verify)
    elif backend == "eager":
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        eager = model if dtype == torch.float32 else _cast_copy(model, dtype)
        runner = Runner("eager", "torch", precision, lambda x: eager(x.to(dtype)), 0.0, _weights_bytes(eager))
    elif backend in ("optimized", "compile"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        optimized = optimize_for_inference(model, size, dtype, compile=backend == "compile", verify=False)
        runner = Runner(backend, "torch", precision, optimized, 0.0, _weights_bytes(optimized))
    else:
        runner = _exported_runner(backend, model, size, batch_size)
    first = photo_batch(model, size) if runner.batch_size is None else None
    runner(first if first is not None else torch.zeros(runner.batch_size, 3, *size))  # compiles here
    runner.setup_s = time.perf_counter() - start
    if verify and precision != "int8":
        rtol = FP32_RTOL if precision == "fp32" else REDUCED_PRECISION_RTOL
        inputs = verification_inputs(model, size, _in_chans(model),
                                     fixed_batch=runner.batch_size)
        with torch.no_grad():
            runner.verification = compare(model, runner, inputs, rtol).check(f"the {backend} backend")
    return runner


def _cast_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    return copy.deepcopy(model).to(dtype)


def _in_chans(model: nn.Module) -> int:
    return getattr(getattr(model, "config", None), "in_chans", 3)


def _exported_runner(backend: str, model: nn.Module, size: tuple[int, int], batch_size: int | None) -> Runner:
    fmt = "onnx" if backend == "onnxruntime" else "pt2"
    spec = ExportSpec(fmt, size, batch_size=batch_size or 1, dynamic_batch=batch_size is None,
                      in_chans=_in_chans(model))
    with tempfile.TemporaryDirectory() as folder:
        path = write_artifact(model, spec, Path(folder) / f"model.{fmt}")
        run = _onnxruntime(path) if fmt == "onnx" else load_exported(path, "pt2")
        size_bytes = _file_bytes(path)
    return Runner(backend, fmt, "fp32", run, 0.0, size_bytes, batch_size)


def _int8_runner(backend: str, model: nn.Module, size: tuple[int, int], batch_size: int | None,
                 calibration, calibration_count: int, verify: bool) -> Runner:
    fmt = "pt2" if backend in ("compile", "pt2") else "onnx"
    if calibration is None:
        calibration = photo_batch(model, size)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"model.{fmt}"
        result = quantize_model(model, path, calibration, fmt, calibration_count=calibration_count,
                                img_size=size, batch_size=batch_size, verify=verify, speed_check=False)
        if fmt == "onnx":
            run = _onnxruntime(path)
        else:
            run = load_int8(path, "pt2", compiled=backend == "compile")
        size_bytes = _file_bytes(path)
    return Runner(backend, fmt, "int8", run, 0.0, size_bytes, batch_size,
                  result.metadata.quantization.float_ops, result.verification)


def load_runner(path: str | os.PathLike, compiled: bool = False) -> tuple[Runner, ExportMetadata]:
    """The exported file at `path` (.onnx or .pt2, fp32 or int8) as a runner, and its metadata.

    `compiled`: a pt2 program is `torch.compile`d (int8: Inductor's int8 kernels). UserError for a file
    without visionzoo metadata.
    """
    path = Path(path)
    metadata = read_metadata(path)
    fmt = artifact_format(path)
    start = time.perf_counter()
    if fmt == "onnx":
        run, backend = _onnxruntime(path), "int8" if metadata.precision == "int8" else "onnxruntime"
    elif metadata.precision == "int8":
        run, backend = load_int8(path, fmt, compiled=compiled), "compile" if compiled else "pt2"
    elif fmt == "pt2":
        program = torch.export.load(str(path)).module()
        module = compile_program(program) if compiled else program
        run, backend = module, "compile" if compiled else "pt2"
    else:
        run, backend = load_exported(path, fmt), "aoti"
    float_ops = metadata.quantization.float_ops if metadata.quantization is not None else ()
    runner = Runner(backend, fmt, metadata.precision, run, time.perf_counter() - start, _file_bytes(path),
                    metadata.batch_size, float_ops)
    return runner, metadata
