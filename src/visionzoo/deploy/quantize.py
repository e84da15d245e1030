"""int8 models through maintained engines: onnxruntime's static QDQ quantizer (ONNX) and torchao's PT2E
`X86InductorQuantizer` (pt2, run by Inductor). No kernels of our own.

What is kept in float, on purpose (both engines' guidance for vision models):
- the first convolution: it sees the raw normalised pixels, and has 3 input channels, so int8 saves little
  time and costs accuracy;
- the classifier: its logits are the output, and per-class rounding moves the top-1 of near ties;
- softmax and LayerNorm (attention blocks, MetaFormer-style nets): their inputs have rare large outliers that
  an 8-bit range cannot hold without crushing the rest.

Calibration, per family: MinMax for conv nets (BatchNorm folded into the convs, activations bounded), the
99.999th percentile where the graph has softmax or LayerNorm (transformer activations: a few huge values that
MinMax would spend the whole range on). ONNX: weights per-channel int8, activations symmetric (uint8 with
zero point 128: onnxruntime's fast u8s8 kernels; on a digits fine-tune of Lite0, symmetric activations lost
0.6 point where asymmetric ones lost 1.1-1.9); pt2: as the X86 Inductor quantizer sets them (uint8
activations, int8 per-channel weights).

On x86 CPUs without VNNI/AMX, u8 x s8 products are summed in int16 pairs that can saturate: there, weights
use 7 bits (`reduce_range`), as onnxruntime advises; the choice and its reason are recorded in the artifact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.config import DataConfig, resolve_data_config
from ..data.datasets import IMAGE_EXTENSIONS
from ..data.transforms import create_transform
from ..errors import DataError, UserError, VisionzooError
from ..models.base import size_pair
from .accuracy import evaluate_pair, fit_batch, model_classes
from .export import (
    ExportError,
    ExportSpec,
    check_output_path,
    load_exported,
    prepare_for_export,
    write_artifact,
)
from .hardware import int8_dot_products
from .metadata import PT2_EXTRA_FILE, ExportMetadata, Quantization, metadata_for, write_onnx_metadata
from .staging import StagedFile
from .verify import Verification, compare, photo_batch

QUANTIZE_FORMATS = ("onnx", "pt2")
DEFAULT_CALIBRATION_COUNT = 200
# ops whose inputs carry outliers: kept in float, and their presence picks percentile calibration
FLOAT_OP_TYPES = frozenset({"Softmax", "LayerNormalization"})
PERCENTILE = 99.999
# An int8 model moves logits by several percent of their scale (not gated: the top-1 is); a top-1 change
# counts as an error only where the fp32 model's own margin between the two classes is beyond this fraction
# of its logit scale.
INT8_TOP1_MARGIN = 0.1
CALIBRATION_BATCH = 8


class QuantizationError(VisionzooError, RuntimeError):
    """The int8 model cannot be made, or was refused by verification or the accuracy gate (`max_drop`);
    `detail`: the Verification or AccuracyDrop behind a refusal."""

    def __init__(self, message: str, detail: object = None):
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class AccuracyDrop:
    """Top-1 of the fp32 and the int8 model on one labelled set, in points."""

    data: str
    count: int
    fp32_top1: float
    int8_top1: float
    agreement: float  # % of images whose top-1 is unchanged

    @property
    def drop(self) -> float:
        return self.fp32_top1 - self.int8_top1

    def line(self) -> str:
        return (f"top-1 on {self.data} ({self.count} images): fp32 {self.fp32_top1:.3f}, int8 "
                f"{self.int8_top1:.3f} (drop {self.drop:+.3f} points), top-1 agreement {self.agreement:.2f}%")


@dataclass(frozen=True)
class QuantizeResult:
    """What `quantize_model` wrote and measured."""

    path: Path
    metadata: ExportMetadata
    verification: Verification | None  # vs fp32 on the shipped photos and the calibration images
    accuracy: AccuracyDrop | None
    # int8 over fp32 in onnxruntime on this CPU at batch 1 (the artifact's batch if fixed); below 1 where
    # int8 is slower here. None: pt2 (Inductor's speed needs `visionzoo benchmark --backend compile`)
    speedup: float | None = None


def calibration_images(folder: str | os.PathLike, count: int) -> list[Path]:
    """`count` image files from `folder` (searched recursively, links not followed), spread evenly over
    the sorted list so that every class folder contributes. DataError if there is none."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"calibration folder {root} does not exist (give a folder of images)")
    files = []
    for parent, _, names in os.walk(root):
        files += [Path(parent) / n for n in names
                  if Path(n).suffix.lower() in IMAGE_EXTENSIONS and (Path(parent) / n).is_file()]
    if not files:
        raise DataError(f"no image found under {root} to calibrate with")
    files.sort()
    if count >= len(files):
        return files
    return [files[i * len(files) // count] for i in range(count)]


def calibration_batch(folder: str | os.PathLike, config: DataConfig, count: int) -> torch.Tensor:
    """The calibration images preprocessed with `config` (normalised), stacked: (N, C, H, W)."""
    from PIL import Image

    transform = create_transform(config)
    images, unreadable = [], []
    for path in calibration_images(folder, count):
        try:
            with Image.open(path) as image:
                images.append(transform(image.convert("RGB")))
        except Exception:  # noqa: BLE001 -- any decoder failure: skipped, as validation skips it
            unreadable.append(path)
    if not images:
        raise DataError(f"none of the {len(unreadable)} calibration images under {folder} could be read "
                        f"(e.g. {unreadable[0]})")
    return torch.stack(images)


def _batches(images: torch.Tensor, batch_size: int | None) -> Iterator[torch.Tensor]:
    """Calibration batches, all of one size (the artifact's, else CALIBRATION_BATCH or fewer): the last one
    is filled up from the first images (onnxruntime's histogram calibrators stack batches, so they must
    match)."""
    size = batch_size or min(CALIBRATION_BATCH, images.shape[0])
    for start in range(0, images.shape[0], size):
        yield images[torch.arange(start, start + size) % images.shape[0]]


def reduce_range_choice() -> tuple[bool, str]:
    """(reduce_range, why): 7-bit weights on CPUs without int8 dot products."""
    if int8_dot_products():
        return False, "this CPU has int8 dot products (VNNI/AMX/Arm dot product): full 8-bit weights"
    return True, ("this CPU has no int8 dot products (VNNI/AMX): 7-bit weights, so that u8 x s8 pair sums "
                  "cannot saturate int16 (onnxruntime's advice)")


# ---------------------------------------------------------------------------------------------- ONNX


def _onnx_float_nodes(path: Path) -> tuple[list[str], list[str], bool]:
    """(node names to keep in float, their descriptions, whether the graph has softmax/LayerNorm)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    graph_input = graph.input[0].name
    names, described = [], []
    first_conv = next((n for n in graph.node if n.op_type == "Conv" and graph_input in n.input), None)
    if first_conv is None:
        first_conv = next((n for n in graph.node if n.op_type == "Conv"), None)
    if first_conv is not None:
        names.append(first_conv.name)
        described.append(f"first conv ({first_conv.name})")
    classifier = next((n for n in reversed(graph.node) if n.op_type in ("Gemm", "MatMul")), None)
    if classifier is not None:
        names.append(classifier.name)
        described.append(f"classifier ({classifier.name})")
    counts: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in FLOAT_OP_TYPES:
            names.append(node.name)
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    described += [f"{op} x{n}" for op, n in sorted(counts.items())]
    return names, described, bool(counts)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over our batches."""

    def __init__(self, batches: list[torch.Tensor], input_name: str):
        self.batches, self.input_name, self.position = batches, input_name, 0

    def get_next(self) -> dict | None:
        if self.position >= len(self.batches):
            return None
        self.position += 1
        return {self.input_name: self.batches[self.position - 1].numpy()}

    def rewind(self) -> None:
        self.position = 0


def _speedup(fp32: Path, int8: Path, example: torch.Tensor, runs: int = 10) -> float:
    """int8's speed over fp32 in onnxruntime at `example`'s batch (torch's threads), best of `runs`,
    alternating."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    sessions = [onnxruntime.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                for p in (fp32, int8)]
    feed = {"x": example.numpy()}
    best = [float("inf"), float("inf")]
    for _ in range(runs):
        for i, session in enumerate(sessions):
            start = time.perf_counter()
            session.run(None, feed)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0] / best[1]


def _quantize_onnx(model: nn.Module, spec: ExportSpec, output: Path, images: torch.Tensor,
                   reduce_range: tuple[bool, str], speed_check: bool) -> tuple[Quantization, float | None]:
    try:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise QuantizationError("int8 ONNX needs onnxruntime: pip install 'visionzoo[export]'") from None
    with tempfile.TemporaryDirectory(dir=output.parent) as folder:
        fp32, prepared = Path(folder) / "fp32.onnx", Path(folder) / "prepared.onnx"
        write_artifact(model, spec, fp32)
        # onnxruntime's own advice: fold constants and infer shapes before quantizing
        with _quiet():
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        exclude, described, has_outlier_ops = _onnx_float_nodes(prepared)
        method = CalibrationMethod.Percentile if has_outlier_ops else CalibrationMethod.MinMax
        # Symmetric activations in uint8 (zero point 128): the accuracy of signed symmetric int8 with the
        # speed of onnxruntime's u8s8 kernels (signed S8S8 ran slower than fp32 on this AVX-512 VNNI CPU)
        extra = {"ActivationSymmetric": True}
        if has_outlier_ops:
            extra["CalibPercentile"] = PERCENTILE
        batches = list(_batches(images, None if spec.dynamic_batch else spec.batch_size))
        with _quiet():
            quantize_static(str(prepared), str(output), _Reader(batches, "x"), quant_format=QuantFormat.QDQ,
                            per_channel=True, reduce_range=reduce_range[0], activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=method,
                            extra_options=extra,
                            calibration_providers=["CPUExecutionProvider"])
        example = next(_batches(images, 1 if spec.dynamic_batch else spec.batch_size))
        speedup = _speedup(prepared, output, example) if speed_check else None
    calibration = f"percentile {PERCENTILE}" if has_outlier_ops else "minmax"
    return Quantization("onnxruntime static QDQ", calibration, int(images.shape[0]), True, reduce_range[0],
                        reduce_range[1], tuple(described)), speedup


# ---------------------------------------------------------------------------------------------- pt2


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the engines' info logging, warnings and prints (torchao's import, onnxruntime's
    calibration)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    pytree = logging.getLogger("torch.utils._pytree")
    pytree_level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        # onnxruntime's histogram calibrators print their progress on stdout
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        pytree.setLevel(pytree_level)


def _torchao():
    try:
        with _quiet():
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer
    except ImportError:
        raise QuantizationError("int8 pt2 needs torchao (PT2E): pip install 'visionzoo[export]'") from None
    return prepare_pt2e, convert_pt2e, x86_inductor_quantizer


def _float_module_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """The first conv and the classifier, by the names the weights' record gives (pretrained_cfg)."""
    cfg = getattr(model, "pretrained_cfg", None)
    modules = dict(model.named_modules())
    names, described = [], []
    for role, name in (("first conv", getattr(cfg, "first_conv", None)),
                       ("classifier", getattr(cfg, "classifier", None))):
        if name and name in modules:
            names.append(name)
            described.append(f"{role} ({name})")
    return names, described


def _quantize_pt2(model: nn.Module, spec: ExportSpec, output: Path, images: torch.Tensor,
                  reduce_range: tuple[bool, str], metadata: ExportMetadata) -> Quantization:
    prepare_pt2e, convert_pt2e, xiq = _torchao()
    prepared = prepare_for_export(model, spec.img_size, spec.in_chans)
    float_names, described = _float_module_names(prepared)
    example = spec.example_input()
    dynamic = {"x": {0: torch.export.Dim("batch", min=1, max=4096)}} if spec.dynamic_batch else None
    with _quiet():
        captured = torch.export.export(prepared, (example,), dynamic_shapes=dynamic, strict=False).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range[0]))
        for name in float_names:
            quantizer.set_module_name_qconfig(name, None)
        observed = prepare_pt2e(captured, quantizer)
        with torch.no_grad():
            for batch in _batches(images, None if spec.dynamic_batch else spec.batch_size):
                observed(batch)
        converted = convert_pt2e(observed)
        program = torch.export.export(converted, (example,), dynamic_shapes=dynamic, strict=False)
    quantization = Quantization("torchao PT2E X86InductorQuantizer", "minmax (histogram-free observers)",
                                int(images.shape[0]), True, reduce_range[0], reduce_range[1],
                                (*described, "softmax, LayerNorm and elementwise ops (not annotated by the "
                                 "X86 quantizer)"))
    record = dataclasses.replace(metadata, quantization=quantization)
    torch.export.save(program, str(output), extra_files={PT2_EXTRA_FILE: record.to_json()})
    return quantization


# ---------------------------------------------------------------------------------------------- the API


def verify_int8(model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], img_size: tuple[int, int],
                calibration: torch.Tensor, batch_size: int | None) -> Verification:
    """Compare the int8 artifact with the fp32 model on the shipped photos and the calibration images."""
    inputs = {"photos": photo_batch(model, img_size), "calibration": calibration}
    return compare(model, fit_batch(run, batch_size), inputs, rtol=math.inf, top1_margin=INT8_TOP1_MARGIN)


def measure_drop(model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], data: str | os.PathLike,
                 config: DataConfig, batch_size: int | None, limit: int | None = None) -> AccuracyDrop:
    """Top-1 of `model` (fp32) and of the int8 `run` on the labelled images at `data`."""
    paired = evaluate_pair(model, fit_batch(run, batch_size), data, config, model_classes(model), limit=limit)
    return AccuracyDrop(os.fspath(data), paired.candidate.count, paired.reference.top1, paired.candidate.top1,
                        paired.agreement)


def quantize_model(model: nn.Module, output: str | os.PathLike, calibration: str | os.PathLike | torch.Tensor,
                   format: str = "onnx", *, calibration_count: int = DEFAULT_CALIBRATION_COUNT,
                   img_size: int | tuple[int, int] | None = None, batch_size: int | None = None,
                   verify: bool = True, val_data: str | os.PathLike | None = None,
                   max_drop: float | None = None, source: str | None = None,
                   val_limit: int | None = None, speed_check: bool = True) -> QuantizeResult:
    """Quantize `model` to int8 (static, calibrated) and write it to `output` (.onnx or .pt2), whole or not
    at all, with its preprocessing, classes and the quantization record inside.

    Args:
        calibration: a folder of images (the first `calibration_count`, spread over the folder), or a
            preprocessed batch (N, C, H, W).
        batch_size: the artifact's fixed batch size; None: any batch size.
        verify: compare with `model` on the shipped photos and the calibration images (QuantizationError on
            a top-1 change beyond a near tie: INT8_TOP1_MARGIN of the logit scale).
        val_data / max_drop: measure the top-1 drop on a labelled set; refuse to write past `max_drop`
            points (QuantizationError with the figure).
        speed_check: ONNX: time int8 against fp32 in onnxruntime here (`QuantizeResult.speedup`).

    Raises:
        UserError: the path or an option; QuantizationError: the engine, verification or the gate.
    """
    if format not in QUANTIZE_FORMATS:
        raise UserError(f"int8 formats are {', '.join(QUANTIZE_FORMATS)}, not {format!r}")
    if max_drop is not None and val_data is None:
        raise UserError("max_drop needs val_data: the drop is measured on a labelled set")
    if max_drop is not None and max_drop < 0:
        raise UserError(f"max_drop is in points of top-1 and cannot be negative, got {max_drop}")
    output = check_output_path(output, format)
    size = model.default_img_size if img_size is None else size_pair(img_size)
    model = model.eval()
    config = resolve_data_config(model, img_size=size)
    if isinstance(calibration, torch.Tensor):
        images = calibration
    else:
        if calibration_count < 1:
            raise UserError(f"calibration_count must be at least 1, got {calibration_count}")
        images = calibration_batch(calibration, config, calibration_count)
    in_chans = model.in_chans
    spec = ExportSpec(format, size, batch_size=batch_size or 1, dynamic_batch=batch_size is None,
                      in_chans=in_chans)
    reduce_range = reduce_range_choice()
    metadata = metadata_for(model, format, "int8", size, batch_size, source)
    with StagedFile(output) as staged:
        try:
            speedup = None
            if format == "onnx":
                quantization, speedup = _quantize_onnx(model, spec, staged.path, images, reduce_range,
                                                       speed_check)
                metadata = _with_quantization(metadata, quantization)
                write_onnx_metadata(staged.path, metadata)
            else:
                quantization = _quantize_pt2(model, spec, staged.path, images, reduce_range, metadata)
                metadata = _with_quantization(metadata, quantization)
        except ExportError:
            raise
        except VisionzooError:
            raise
        except Exception as error:  # noqa: BLE001 -- the engines raise many kinds; one line for the user
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise QuantizationError(f"the {format} int8 quantizer failed: {type(error).__name__}: "
                                    f"{lines[0] if lines else ''}") from error
        run = load_int8(staged.path, format)
        verification = None
        if verify:
            verification = verify_int8(model, run, size, images, batch_size)
            if not verification.passed:
                raise QuantizationError(_verification_message(verification), verification)
        accuracy = None
        if val_data is not None:
            accuracy = measure_drop(model, run, val_data, config, batch_size, limit=val_limit)
            if max_drop is not None and accuracy.drop > max_drop:
                raise QuantizationError(f"int8 top-1 drop {accuracy.drop:.3f} points is beyond max_drop "
                                        f"{max_drop:g} ({accuracy.line()}); nothing written", accuracy)
        staged.commit()
    return QuantizeResult(output, metadata, verification, accuracy, speedup)


def _with_quantization(metadata: ExportMetadata, quantization: Quantization) -> ExportMetadata:
    return dataclasses.replace(metadata, quantization=quantization)


def _verification_message(verification: Verification) -> str:
    worst = max(verification.comparisons, key=lambda c: c.rel_diff / c.rtol + c.top1_errors)
    return (f"the int8 model differs from fp32 beyond a near tie: {worst.line().strip()}; nothing written "
            "(more calibration images may help, or keep this model in fp32)")


def load_int8(path: str | os.PathLike, format: str, compiled: bool = False) -> Callable[[torch.Tensor],
                                                                                        torch.Tensor]:
    """A callable running an int8 artifact on a float32 batch. pt2: the reference (decomposed) program, or
    with `compiled` Inductor's int8 kernels (compiled on the first call)."""
    if format == "onnx":
        return load_exported(path, "onnx")
    _torchao()  # registers the quantized ops the program refers to
    with _quiet():
        module = torch.export.load(str(path)).module()
    if compiled:
        module = compile_program(module)

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x)

    return run


def compile_program(module: nn.Module) -> nn.Module:
    """Inductor with freezing (weights as constants); in a PT2E program the quantize/dequantize pairs around
    convs and linears become int8 kernels."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True  # the PT2E lowering needs constant weights
    return torch.compile(module)
