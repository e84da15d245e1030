"""Export a model to ONNX, a torch.export program (pt2) or an AOTInductor package (aoti), and load it back.

The model is prepared first (BatchNorms and layer scales folded, size-dependent constants computed for the
export size), so the artifact holds fewer ops than the eager graph. The artifact carries its preprocessing
and class names (metadata.py). Exporter failures become one-line `ExportError`s.

    result = export_model(model, "model.onnx")   # verified against `model`, written whole or not at all
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import InputSizeError, VisionzooError
from ..factory import create_model
from ..models.base import ClassifierModel, size_pair
from .fold import fold_batch_norms, fold_layer_scales
from .metadata import PT2_EXTRA_FILE, ExportMetadata, metadata_for, write_onnx_metadata
from .optimize import fix_input_size, input_channels
from .staging import StagedFile
from .verify import Verification, compare, verification_inputs

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


def write_artifact(model: nn.Module, spec: ExportSpec, output: str | os.PathLike,
                   metadata: ExportMetadata | None = None) -> Path:
    """Prepare `model` and write it to `output` in `spec.format`, with `metadata` inside; returns the path.

    Writes in place (no temporary name, no verification): `export_model` is the safe way for users' files.
    Raises ExportError (one line) where the format cannot take the model or an option.
    """
    output = Path(output)
    prepared = prepare_for_export(model, spec.img_size, spec.in_chans)
    if spec.format == "onnx":
        _save_onnx(prepared, spec, output)
        if metadata is not None:
            write_onnx_metadata(output, metadata)
    elif spec.format == "pt2":
        extra = {PT2_EXTRA_FILE: metadata.to_json()} if metadata is not None else None
        torch.export.save(_torch_export(prepared, spec), str(output), extra_files=extra)
    else:
        _save_aoti(prepared, spec, output)
        if metadata is not None:
            _append_to_archive(output, PT2_EXTRA_FILE, metadata.to_json())
    return output


def _append_to_archive(path: Path, name: str, text: str) -> None:
    """Add `extra/<name>` under the package's top folder (the AOTInductor loader reads only its own files)."""
    import zipfile

    with zipfile.ZipFile(path, "a") as archive:
        top = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{top}/extra/{name}", text)


@dataclass(frozen=True)
class ExportResult:
    """What `export_model` wrote, and how it compared with the eager model (None: not verified)."""

    path: Path
    format: str
    metadata: ExportMetadata
    verification: Verification | None
    side_file: Path | None = None  # ONNX weights beyond EXTERNAL_DATA_BYTES


def check_output_path(output: str | os.PathLike, format: str) -> Path:
    """Raise ExportError unless `output` can be written as a `format` file: its suffix, not a folder, a
    writable folder (created if missing). Cheap: run it before any export work."""
    output = Path(output)
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; expected one of {', '.join(FORMATS)}")
    wanted = ".onnx" if format == "onnx" else ".pt2"
    if output.suffix != wanted:
        kind = {"onnx": "an ONNX file", "pt2": "a torch.export file",
                "aoti": "an AOTInductor package"}[format]
        raise ExportError(f"{output}: {kind} is named .{wanted[1:]}; name the output {output.stem}{wanted}")
    if output.is_dir():
        raise ExportError(f"{output} is a folder; name a file inside it, e.g. {output / ('model' + wanted)}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"cannot create the folder {output.parent}: {error.strerror}") from None
    if not os.access(output.parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write to the folder {output.parent} (permission denied)")
    if output.exists() and not os.access(output, os.W_OK):
        raise ExportError(f"cannot replace {output} (permission denied)")
    return output


def check_opset(opset: int) -> None:
    """Raise ExportError for an ONNX opset torch's exporter would not write as asked.

    Below DEFAULT_OPSET the dynamo exporter silently writes DEFAULT_OPSET; above the installed onnx's newest
    opset nothing can check the file."""
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not DEFAULT_OPSET <= opset <= newest:
        raise ExportError(f"opset {opset} cannot be written: torch's ONNX exporter writes opsets "
                          f"{DEFAULT_OPSET} to {newest} (this onnx's newest); older opsets need the "
                          "TorchScript exporter, which visionzoo does not use")


def check_export_size(name: str, img_size: int | tuple[int, int]) -> None:
    """Raise InputSizeError unless the architecture `name` can take `img_size` inputs (built on the meta
    device: no weights read)."""
    with torch.device("meta"):
        try:
            model = create_model(name, img_size=img_size)
        except ValueError as error:  # a family's config refusing the size
            if isinstance(error, VisionzooError):
                raise
            raise InputSizeError(f"{name} cannot be built for {img_size} inputs ({error})") from None
        model.check_img_size(img_size, name=name)


def _written_opset(path: Path) -> int:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)


def export_model(model: nn.Module, output: str | os.PathLike, format: str = "onnx", *,
                 img_size: int | tuple[int, int] | None = None, batch_size: int = 1,
                 dynamic_batch: bool = False, opset: int | None = None, verify: bool = True,
                 source: str | None = None) -> ExportResult:
    """Export `model` to `output` (onnx, pt2 or aoti), with its preprocessing and class names inside.

    The file is written under a temporary name in the same folder, verified against `model` on the shipped
    photos and random batches (unless `verify=False`), and only then renamed to `output`: a failure or a kill
    never leaves a partial file, nor replaces a good one.

    Args:
        img_size: the input size (default: the weights' size). batch_size / dynamic_batch: the batch the
            artifact takes (dynamic: any from 1 to MAX_DYNAMIC_BATCH).
        opset: ONNX only; DEFAULT_OPSET or newer. source: the provenance recorded (default: arch.tag).

    Raises:
        ExportError: the path, an option or the model cannot be exported (one line, before the work where
            it can be known before). InputSizeError: a size the model cannot take. VerificationError: the
            artifact differs from `model`; nothing is written.
    """
    output = check_output_path(output, format)
    if opset is not None and format != "onnx":
        raise ExportError(f"an opset applies to ONNX only, not to the {format} format")
    opset = DEFAULT_OPSET if opset is None else opset
    if format == "onnx":
        check_opset(opset)
    size = model.default_img_size if img_size is None else size_pair(img_size)
    if isinstance(model, ClassifierModel):
        model.check_img_size(size)
    in_chans = input_channels(model)
    spec = ExportSpec(format, size, batch_size=batch_size, dynamic_batch=dynamic_batch, opset=opset,
                      in_chans=in_chans)
    model = model.eval()
    metadata = metadata_for(model, format, "fp32", size, None if dynamic_batch else batch_size, source)
    with StagedFile(output) as staged:
        write_artifact(model, spec, staged.path, metadata)
        if format == "onnx" and _written_opset(staged.path) != opset:
            raise ExportError(f"the exporter wrote opset {_written_opset(staged.path)}, not the {opset} "
                              "asked for; nothing was written")
        verification = verify_artifact(model, staged.path, format, spec) if verify else None
        if verification is not None:
            verification.check(f"the exported {format} file")
        staged.commit()
    return ExportResult(output, format, metadata, verification, staged.side_file)


def verify_artifact(model: nn.Module, path: Path, format: str, spec: ExportSpec) -> Verification:
    """Run the file at `path` and `model` on the photos and random batches; the comparison (not raised)."""
    run = load_exported(path, format)
    inputs = verification_inputs(model, spec.img_size, spec.in_chans,
                                 fixed_batch=None if spec.dynamic_batch else spec.batch_size)
    return compare(model, run, inputs)


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
