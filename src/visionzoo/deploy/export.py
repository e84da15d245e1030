"""Export a model to ONNX, a torch.export program (pt2) or an AOTInductor package (aoti), and load it back.

The model is prepared first (BatchNorms and layer scales folded, size-dependent constants computed for the
export size), so the artifact holds fewer ops than the eager graph. Exporter failures become one-line
`ExportError`s.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import VisionzooError
from .fold import fold_batch_norms, fold_layer_scales
from .optimize import fix_input_size

FORMATS = ("onnx", "pt2", "aoti")
# The opset torch's ONNX function library is written for; onnxruntime's CPU provider covers all of it.
DEFAULT_OPSET = 18
MAX_DYNAMIC_BATCH = 4096
EXTERNAL_DATA_BYTES = 2**30  # weights beyond this go to a side file (ONNX)
# example batch for a dynamic batch dimension: 1 would be specialised as a constant by torch.export
_DYNAMIC_EXAMPLE_BATCH = 2


class ExportError(VisionzooError, RuntimeError):
    """The model or an option cannot be exported to the format (one line saying why)."""


@dataclass(frozen=True)
class ExportSpec:
    """What to export: the format, the input shape and, for ONNX, the opset."""

    format: str
    img_size: tuple[int, int]
    batch_size: int = 1
    dynamic_batch: bool = False
    opset: int = DEFAULT_OPSET
    in_chans: int = 3

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"unknown export format {self.format!r}; expected one of {FORMATS}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be positive, got {self.batch_size}")

    def example_input(self) -> torch.Tensor:
        batch = _DYNAMIC_EXAMPLE_BATCH if self.dynamic_batch else self.batch_size
        return torch.randn(batch, self.in_chans, *self.img_size, generator=torch.Generator().manual_seed(0))


def prepare_for_export(model: nn.Module, img_size: tuple[int, int], in_chans: int = 3) -> nn.Module:
    """An eval-mode copy of `model`: BatchNorms and layer scales folded, constants computed for `img_size`."""
    prepared = copy.deepcopy(model).eval().cpu()  # exporters trace on the CPU
    fix_input_size(prepared, img_size)
    example = torch.zeros(1, in_chans, *img_size)
    fold_batch_norms(prepared, example)
    fold_layer_scales(prepared, example)
    for parameter in prepared.parameters():
        parameter.requires_grad_(False)
    return prepared


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"


def _dynamic_shapes(spec: ExportSpec) -> dict | None:
    if not spec.dynamic_batch:
        return None
    return {"x": {0: torch.export.Dim("batch", min=1, max=MAX_DYNAMIC_BATCH)}}


def _torch_export(model: nn.Module, spec: ExportSpec) -> torch.export.ExportedProgram:
    try:
        with torch.no_grad():
            return torch.export.export(model, (spec.example_input(),), dynamic_shapes=_dynamic_shapes(spec),
                                       strict=False)
    except Exception as error:  # the exporter raises many kinds; the user needs the first line only
        what = "with a dynamic batch size" if spec.dynamic_batch else "at a fixed shape"
        raise ExportError(f"torch.export cannot capture this model {what}: {_first_line(error)}") from error


def _save_onnx(model: nn.Module, spec: ExportSpec, output: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise ExportError("ONNX export needs onnx and onnxscript: pip install 'visionzoo[export]'") from None
    try:
        with torch.no_grad():
            program = torch.onnx.export(model, (spec.example_input(),), dynamo=True, opset_version=spec.opset,
                                        input_names=["x"], output_names=["logits"],
                                        dynamic_shapes=_dynamic_shapes(spec), verbose=False)
    except Exception as error:
        raise ExportError(f"the ONNX exporter (opset {spec.opset}) cannot export this model: "
                          f"{_first_line(error)}") from error
    # A protobuf cannot pass 2 GB, and one near it is slow to read: big models (the SO400M towers, ~1.7 GB)
    # keep their weights in a side file `<output>.data`, which onnxruntime finds beside the .onnx file.
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    program.save(str(output), external_data=weight_bytes > EXTERNAL_DATA_BYTES)


def _save_aoti(model: nn.Module, spec: ExportSpec, output: Path) -> None:
    program = _torch_export(model, spec)
    try:
        torch._inductor.aoti_compile_and_package(program, package_path=str(output))
    except Exception as error:
        raise ExportError(f"AOTInductor cannot compile this model: {_first_line(error)}") from error


def export_model(model: nn.Module, spec: ExportSpec, output: str | os.PathLike) -> Path:
    """Prepare `model` and write it to `output` in `spec.format`; returns the path written.

    Raises ExportError (one line) where the format cannot take the model or an option.
    """
    output = Path(output)
    if spec.format == "pt2" and output.suffix != ".pt2":
        raise ExportError(f"torch.export.save writes .pt2 files; name the output {output.stem}.pt2")
    if spec.format == "aoti" and output.suffix != ".pt2":
        raise ExportError(f"an AOTInductor package is a .pt2 file; name the output {output.stem}.pt2")
    output.parent.mkdir(parents=True, exist_ok=True)
    prepared = prepare_for_export(model, spec.img_size, spec.in_chans)
    if spec.format == "onnx":
        _save_onnx(prepared, spec, output)
    elif spec.format == "pt2":
        torch.export.save(_torch_export(prepared, spec), str(output))
    else:
        _save_aoti(prepared, spec, output)
    return output


def load_exported(path: str | os.PathLike, format: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable that runs an exported artifact on a float32 NCHW batch and returns its logits (a tensor)."""
    path = str(path)
    if format == "onnx":
        try:
            import onnxruntime
        except ImportError:
            raise ExportError("running an ONNX file needs onnxruntime: "
                              "pip install 'visionzoo[export]'") from None

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name

        def run_onnx(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {input_name: x.detach().cpu().numpy()})[0])

        return run_onnx
    if format == "pt2":
        module = torch.export.load(path).module()

        def run_program(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(x)

        return run_program
    if format == "aoti":
        runner = torch._inductor.aoti_load_package(path)

        def run_aoti(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return runner(x)

        return run_aoti
    raise ValueError(f"unknown export format {format!r}; expected one of {FORMATS}")
