"""Measuring models: inference and training-step speed, latency spread and peak memory, per setting.

A setting is one (batch size, precision) of one model at one input size; each is measured in isolation and
a setting that fails (e.g. out of memory) is recorded with its reason instead of stopping the run. Models
are built with random weights (speed does not depend on the values) unless real weights are given, as they
must be for accuracy: with `val_data`, each row also gets its backend's top-1 on that labelled set and its
top-1 agreement with eager, so one run gives accuracy x speed x format. Every figure is a median over timed
runs after warm-up, with the spread (interquartile range and min/max) kept beside it.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .data.config import resolve_data_config
from .deploy.accuracy import agreement, evaluate_artifact, model_classes
from .deploy.hardware import cpu_info
from .deploy.runners import PRECISIONS as DEPLOY_PRECISIONS
from .deploy.runners import Runner, build_runner, onnxruntime_version
from .errors import UserError
from .factory import create_model
from .files import write_text_atomic
from .flops import model_macs
from .runtime import precision_dtype


@dataclass(frozen=True)
class Timing:
    """Seconds per timed run: median and spread."""

    median: float
    p25: float
    p75: float
    min: float
    max: float

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        if len(seconds) > 1:
            quartiles = statistics.quantiles(seconds, n=4, method="inclusive")
        else:
            quartiles = seconds * 3
        return cls(statistics.median(seconds), quartiles[0], quartiles[2], min(seconds), max(seconds))


@dataclass(frozen=True)
class BenchmarkResult:
    """One model at one setting: a flat record, written as one CSV row or JSON object."""

    model: str
    img_size: int
    batch_size: int
    precision: str
    device: str
    device_name: str
    channels_last: bool
    compiled: bool
    threads: int
    status: str  # "ok" or "failed"
    error: str = ""
    params_m: float | None = None
    gmacs: float | None = None  # per image, at img_size
    infer_img_per_s: float | None = None  # batch_size / median latency
    infer_ms: float | None = None  # median latency of one batch
    infer_ms_p25: float | None = None
    infer_ms_p75: float | None = None
    infer_ms_min: float | None = None
    infer_ms_max: float | None = None
    infer_peak_mem_mb: float | None = None
    train_img_per_s: float | None = None
    train_ms: float | None = None  # median time of one step (forward, backward, optimizer)
    train_ms_p25: float | None = None
    train_ms_p75: float | None = None
    train_peak_mem_mb: float | None = None
    memory_measure: str = ""
    warmup: int = 0
    runs: int = 0
    # what ran (see visionzoo.deploy.backends) and where: the comparison of backends needs all of it
    backend: str = "eager"
    setup_s: float | None = None  # optimising/compiling/exporting/quantizing, session start, first run
    format: str = "torch"  # torch, onnx or pt2
    artifact_mb: float | None = None  # the exported file, or the torch model's weights
    float_ops: str = ""  # int8: what stayed in float
    weights: str = "random"  # random, pretrained, or the checkpoint's path
    top1: float | None = None  # on val_data (real weights only)
    top1_agreement: float | None = None  # % of val_data images with eager's top-1
    val_images: int | None = None
    cpu_isa: str = ""
    cpu_features: str = ""  # VNNI, AMX, bf16 (what int8 and bf16 speed depend on)
    native_bf16: bool | None = None
    torch_version: str = ""
    visionzoo_version: str = ""
    onnxruntime_version: str = ""


def device_name(device: torch.device) -> str:
    """A human name of the device: the GPU model, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class PeakMemory:
    """Peak memory of what runs inside `with`: CUDA max allocated, or on CPU the process's peak RSS.

    On CPU the figure is the high-water mark of the whole process's resident memory (VmHWM), reset on entry
    through /proc/self/clear_refs where Linux allows it; it includes the interpreter and libraries. Where the
    reset is not possible it is the high-water mark since the process started (`kind` says which).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb: float | None = None
        if device.type == "cuda":
            self.kind = "cuda max allocated"
        else:
            self.kind = "cpu peak RSS (process)" if _reset_peak_rss() else "cpu peak RSS since process start"

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            _reset_peak_rss()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = _peak_rss_mb()


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # "5" resets the peak RSS (Linux >= 4.0, see proc(5))
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def time_runs(step: Callable[[], object], warmup: int, runs: int, synchronize: Callable[[], None]) -> Timing:
    """Run `step` `warmup` times untimed, then `runs` times each timed alone (synchronised on GPU)."""
    for _ in range(warmup):
        step()
    synchronize()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return Timing.of(seconds)


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _prepare(model: nn.Module, device: torch.device, channels_last: bool, compile: bool,
             dtype: torch.dtype | None = None) -> nn.Module:
    model = model.to(device=device, dtype=dtype)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return torch.compile(model) if compile else model


def _input(batch_size: int, img_size: int, device: torch.device, dtype: torch.dtype, channels_last: bool):
    x = torch.randn(batch_size, 3, img_size, img_size, device=device, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def measure_inference(name: str, img_size: int, batch_size: int, precision: str, device: torch.device,
                      channels_last: bool = False, compile: bool = False, warmup: int = 5,
                      runs: int = 20, model: nn.Module | None = None) -> tuple[Timing, PeakMemory]:
    """Latency of `model(x)` for one batch: the model and input are cast to the precision's dtype.

    `model`: real weights to time (a copy is cast); default the architecture with random weights."""
    dtype = precision_dtype(precision)
    model = copy.deepcopy(model) if model is not None else create_model(name, img_size=img_size)
    model = _prepare(model.eval(), device, channels_last, compile, dtype)
    x = _input(batch_size, img_size, device, dtype, channels_last)
    with PeakMemory(device) as memory, torch.inference_mode():
        timing = time_runs(lambda: model(x), warmup, runs, _synchronizer(device))
    return timing, memory


def measure_backend(name: str, img_size: int, batch_size: int, precision: str, device: torch.device,
                    channels_last: bool = False, compile: bool = False, warmup: int = 5, runs: int = 20,
                    backend: str = "optimized", model: nn.Module | None = None,
                    calibration: str | None = None) -> tuple[Timing, PeakMemory, Runner]:
    """Like `measure_inference` for a deployment backend (visionzoo.deploy.runners); also returns the runner
    (its setup seconds, artifact size, float ops), built at `batch_size` and verified against eager.

    `channels_last` and `compile` are ignored: the backend decides both (see `optimize_for_inference`).
    `model`: real weights (default: random); `calibration`: int8's calibration images (default: the photos).
    """
    if device.type != "cpu" and backend != "eager":
        raise UserError(f"the {backend} backend is measured on the CPU")
    model = (model if model is not None else create_model(name, img_size=img_size)).eval().to(device)
    x = torch.randn(batch_size, 3, img_size, img_size, device=device)
    with PeakMemory(device) as memory:
        # not under inference_mode: torch.export and compile-with-freezing take ordinary tensors
        runner = build_runner(backend, model, img_size, precision=precision, batch_size=batch_size,
                              calibration=calibration)
        with torch.no_grad():
            timing = time_runs(lambda: runner.run(x), warmup, runs, _synchronizer(device))
    return timing, memory, runner


def measure_train_step(name: str, img_size: int, batch_size: int, precision: str, device: torch.device,
                       channels_last: bool = False, compile: bool = False, warmup: int = 5,
                       runs: int = 20) -> tuple[Timing, PeakMemory]:
    """Time of one training step (forward, cross-entropy, backward, SGD step).

    Weights stay fp32 and bf16/fp16 run under autocast (mixed precision), as training is done in practice.
    """
    dtype = precision_dtype(precision)
    model = create_model(name, img_size=img_size).train()
    num_classes = model.num_classes or 1000
    model = _prepare(model, device, channels_last, compile)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    x = _input(batch_size, img_size, device, torch.float32, channels_last)
    target = torch.randint(0, num_classes, (batch_size,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            output = model(x)
            # a model without a head (num_classes=0) returns features: train them towards zero instead
            loss = nn.functional.cross_entropy(output, target) if output.shape[-1] == num_classes \
                else output.float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with PeakMemory(device) as memory:
        timing = time_runs(step, warmup, runs, _synchronizer(device))
    return timing, memory


def _error_text(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass(frozen=True)
class Weights:
    """Real weights for a benchmark (needed for accuracy), and the labelled set to measure it on."""

    pretrained: bool = False
    checkpoint_path: str | None = None
    val_data: str | None = None
    val_limit: int | None = None
    calibration: str | None = None  # int8's calibration images

    @property
    def label(self) -> str:
        return "pretrained" if self.pretrained else (self.checkpoint_path or "random")


class _Accuracy:
    """The eager model and its predictions on val_data, made once per model; each backend is compared."""

    def __init__(self, name: str, img_size: int, weights: Weights):
        self.weights = weights
        with torch.device("meta"):
            fixed = img_size if create_model(name).fixed_input_size else None
        self.model = create_model(name, pretrained=weights.pretrained,
                                  checkpoint_path=weights.checkpoint_path, img_size=fixed).eval()
        self.config = resolve_data_config(self.model, img_size=img_size)
        self.eager = None
        if weights.val_data is not None:
            self.eager = self.evaluate(self.model)

    def evaluate(self, run) -> tuple:
        return evaluate_artifact(run, self.weights.val_data, self.config, model_classes(self.model),
                                 limit=self.weights.val_limit)

    def fields(self, runner: Runner | None) -> dict:
        """top1, top1_agreement, val_images of `runner` (None: eager)."""
        if self.eager is None:
            return {}
        result, top1 = self.eager if runner is None else self.evaluate(runner)
        return dict(top1=round(result.top1, 4), top1_agreement=round(agreement(self.eager[1], top1), 4),
                    val_images=result.count)


def benchmark_model(name: str, img_size: int, batch_sizes: Iterable[int], precisions: Iterable[str],
                    device: torch.device, channels_last: bool = False, compile: bool = False,
                    train: bool = False, warmup: int = 5, runs: int = 20,
                    on_result: Callable[[BenchmarkResult], None] | None = None,
                    backend: str = "eager", weights: Weights | None = None) -> list[BenchmarkResult]:
    """Measure `name` at every (batch size, precision); a failing setting is recorded as failed, not raised.

    `backend`: 'eager', or one of visionzoo.deploy.runners.BACKENDS (inference only; no training step);
    precision 'int8' runs in the backends that take it (onnxruntime, int8, compile, pt2).
    `weights`: real weights, and with `val_data` each row's top-1 and agreement with eager.
    """
    weights = weights or Weights()
    if weights.val_data is not None and weights.label == "random":
        raise UserError("accuracy needs real weights: pretrained=True or a checkpoint_path with val_data")
    common = dict(model=name, img_size=img_size, device=str(device), device_name=device_name(device),
                  channels_last=channels_last, compiled=compile, threads=torch.get_num_threads(),
                  backend=backend, weights=weights.label, **_environment())
    try:
        params_m = _parameter_count_at(name, img_size) / 1e6
        gmacs = model_macs(name, img_size) / 1e9
    except Exception as error:  # noqa: BLE001 -- a model that cannot even be built fails all its settings
        params_m = gmacs = None
        build_error = _error_text(error)
    else:
        build_error = ""
    accuracy = None
    if not build_error and weights.label != "random":
        accuracy = _Accuracy(name, img_size, weights)  # a user error (data, weights) stops the run
    results = []
    for precision in precisions:
        for batch_size in batch_sizes:
            fields: dict = dict(common, batch_size=batch_size, precision=precision, params_m=params_m,
                                gmacs=gmacs, warmup=warmup, runs=runs)
            if build_error:
                result = BenchmarkResult(status="failed", error=build_error, **fields)
            else:
                result = _measure_setting(fields, device, train, accuracy)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _environment() -> dict:
    """The CPU's ISA level and native bf16, and the versions of what ran."""
    cpu = cpu_info()
    return dict(cpu_isa=cpu.isa, cpu_features=cpu.features, native_bf16=cpu.native_bf16,
                torch_version=torch.__version__,
                visionzoo_version=__version__, onnxruntime_version=onnxruntime_version())


def _parameter_count_at(name: str, img_size: int) -> int:
    # counted at the size: a fixed-size model (ViT) has a position embedding per size
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, img_size=img_size).parameters())


def _measure_setting(fields: dict, device: torch.device, train: bool,
                     accuracy: _Accuracy | None = None) -> BenchmarkResult:
    args = (fields["model"], fields["img_size"], fields["batch_size"], fields["precision"], device,
            fields["channels_last"], fields["compiled"], fields["warmup"], fields["runs"])
    batch_size = fields["batch_size"]
    try:
        if fields["backend"] == "eager" and fields["precision"] != "int8":
            real = {"model": accuracy.model} if accuracy is not None else {}  # else random weights
            timing, memory = measure_inference(*args, **real)
            if accuracy is not None:
                fields.update(accuracy.fields(None))
        else:
            model = accuracy.model if accuracy is not None else None
            calibration = accuracy.weights.calibration if accuracy is not None else None
            timing, memory, runner = measure_backend(*args, backend=fields["backend"], model=model,
                                                     calibration=calibration)
            size = None if runner.artifact_bytes is None else runner.artifact_bytes / 2**20
            fields.update(setup_s=runner.setup_s, format=runner.format, artifact_mb=size,
                          float_ops="; ".join(runner.float_ops))
            if accuracy is not None:
                fields.update(accuracy.fields(runner))
        fields.update(infer_img_per_s=batch_size / timing.median, infer_ms=1e3 * timing.median,
                      infer_ms_p25=1e3 * timing.p25, infer_ms_p75=1e3 * timing.p75,
                      infer_ms_min=1e3 * timing.min, infer_ms_max=1e3 * timing.max,
                      infer_peak_mem_mb=memory.peak_mb, memory_measure=memory.kind)
        if train and fields["backend"] == "eager":
            timing, memory = measure_train_step(*args)
            fields.update(train_img_per_s=batch_size / timing.median, train_ms=1e3 * timing.median,
                          train_ms_p25=1e3 * timing.p25, train_ms_p75=1e3 * timing.p75,
                          train_peak_mem_mb=memory.peak_mb)
    except Exception as error:  # noqa: BLE001 -- out of memory, unsupported dtype, ...: record and go on
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return BenchmarkResult(status="failed", error=_error_text(error), **fields)
    return BenchmarkResult(status="ok", **fields)


RESULT_FIELDS = [f.name for f in dataclasses.fields(BenchmarkResult)]
BENCHMARK_PRECISIONS = tuple(dict.fromkeys((*DEPLOY_PRECISIONS, "fp16")))


def write_results(path: str | Path, results: list[BenchmarkResult]) -> None:
    """Write results as CSV (one row each) or JSON (environment plus a list), chosen by the file's suffix;
    whole or not at all (`visionzoo.files`)."""
    path = Path(path)
    records = [dataclasses.asdict(r) for r in results]
    if path.suffix.lower() == ".json":
        document = {"kind": "benchmark", "visionzoo": __version__, "torch": torch.__version__,
                    "results": records}
        write_text_atomic(path, json.dumps(document, indent=1) + "\n")
    elif path.suffix.lower() == ".csv":
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=RESULT_FIELDS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(records)
        write_text_atomic(path, text.getvalue())
    else:
        raise UserError(f"cannot write results to {str(path)!r}: name the file .csv or .json")
