"""What an exported file needs to be used alone: its preprocessing, its classes' names, where it came from.

The record is one JSON document stored inside the artifact: in an ONNX file's `metadata_props` (key
`visionzoo`), in a torch.export .pt2 archive as the extra file `visionzoo.json`. `predict` and `validate`
read it, so `--model model.onnx` needs no other input.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__
from ..data.config import DataConfig, resolve_data_config
from ..data.label_spaces import model_label_ids, model_label_names
from ..errors import UserError

if TYPE_CHECKING:
    from torch import nn

METADATA_KEY = "visionzoo"  # ONNX metadata_props key
PT2_EXTRA_FILE = "visionzoo.json"  # torch.export.save extra file
ARTIFACT_SUFFIXES = (".onnx", ".pt2")


@dataclass(frozen=True)
class Quantization:
    """How an int8 artifact was made: the engine, its calibration, and what stayed in float."""

    engine: str  # 'onnxruntime static QDQ' or 'torchao PT2E X86InductorQuantizer'
    calibration_method: str  # 'minmax', 'percentile 99.999', ...
    calibration_images: int
    per_channel: bool
    reduce_range: bool  # 7-bit weights (CPUs without int8 dot products)
    reduce_range_reason: str
    float_ops: tuple[str, ...]  # 'first conv (conv_stem)', 'classifier (classifier)', 'Softmax x4', ...


@dataclass(frozen=True)
class ExportMetadata:
    """The preprocessing, classes and provenance of an exported model."""

    architecture: str
    source: str  # 'arch.tag' for published weights, else the checkpoint's path
    format: str  # onnx, pt2, aoti
    precision: str  # fp32 or int8
    input_size: tuple[int, int, int]
    interpolation: str
    crop_pct: float
    crop_mode: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    label_names: tuple[str, ...] | None
    batch_size: int | None  # None: any batch size
    quantization: Quantization | None = None
    visionzoo_version: str = ""
    # the ids a labelled set's classes are matched against (ImageNet synsets, a fine-tune's folder names)
    label_ids: tuple[str, ...] | None = None

    def data_config(self) -> DataConfig:
        """The DataConfig that preprocesses images for this artifact."""
        return DataConfig(input_size=self.input_size, interpolation=self.interpolation,
                          crop_pct=self.crop_pct, crop_mode=self.crop_mode, mean=self.mean, std=self.std)

    @property
    def img_size(self) -> tuple[int, int]:
        return self.input_size[1], self.input_size[2]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> ExportMetadata:
        """Parse what `to_json` wrote; UserError naming `where` for anything else."""
        try:
            record = json.loads(text)
            quantization = record.pop("quantization", None)
            if quantization is not None:
                quantization["float_ops"] = tuple(quantization["float_ops"])
                quantization = Quantization(**quantization)
            for key in ("input_size", "mean", "std"):
                record[key] = tuple(record[key])
            for key in ("label_names", "label_ids"):
                if record.get(key) is not None:
                    record[key] = tuple(record[key])
            return cls(**record, quantization=quantization)
        except (ValueError, TypeError, KeyError) as error:
            raise UserError(f"{where}: its visionzoo metadata cannot be read ({error}); export it again "
                            "with `visionzoo export`") from None


def metadata_for(model: nn.Module, format: str, precision: str, img_size: tuple[int, int],
                 batch_size: int | None, source: str | None = None,
                 quantization: Quantization | None = None) -> ExportMetadata:
    """The record of `model` exported at `img_size`: its weights' preprocessing at that size, its classes."""
    cfg = getattr(model, "pretrained_cfg", None)
    config = resolve_data_config(model if cfg is not None else None, img_size=img_size)
    num_classes = int(getattr(model, "num_classes", 0) or 0)
    names = model_label_names(cfg) if cfg is not None else None
    ids = model_label_ids(cfg) if cfg is not None else None
    if names is not None and len(names) != num_classes:  # a new head: the tag's names are not its classes
        names = None
    if ids is not None and len(ids) != num_classes:
        ids = None
    architecture = cfg.architecture if cfg is not None else type(model).__name__
    if source is None:
        source = f"{cfg.architecture}.{cfg.tag}" if cfg is not None else architecture
    return ExportMetadata(
        architecture=architecture, source=source, format=format, precision=precision,
        input_size=config.input_size, interpolation=config.interpolation, crop_pct=config.crop_pct,
        crop_mode=config.crop_mode, mean=tuple(config.mean), std=tuple(config.std), num_classes=num_classes,
        label_names=names, batch_size=batch_size, quantization=quantization, visionzoo_version=__version__,
        label_ids=ids)


def write_onnx_metadata(path: str | os.PathLike, metadata: ExportMetadata) -> None:
    """Store `metadata` in the ONNX file at `path` (rewrites the graph; an external weights file stays)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=METADATA_KEY, value=metadata.to_json())
    onnx.save(proto, str(path))


def is_artifact(name: str | os.PathLike) -> bool:
    """True for a path that names an exported file (.onnx, .pt2) rather than an architecture."""
    return str(name).lower().endswith(ARTIFACT_SUFFIXES)


def artifact_format(path: Path) -> str:
    """'onnx' or 'pt2' from the file name; an AOTInductor package is a .pt2 too, told apart by its content."""
    if path.suffix.lower() == ".onnx":
        return "onnx"
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as error:
        raise UserError(f"{path} is not a .pt2 archive ({error})") from None
    return "aoti" if any("/data/aotinductor/" in n for n in names) else "pt2"


def read_metadata(path: str | os.PathLike) -> ExportMetadata:
    """The visionzoo record inside an exported .onnx or .pt2 file.

    Raises UserError for a missing file, an unknown suffix, or a file exported without the record.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"exported model {path} does not exist")
    fmt = artifact_format(path) if path.suffix.lower() in ARTIFACT_SUFFIXES else None
    if fmt == "onnx":
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as error:  # noqa: BLE001 -- protobuf's errors have no common type
            raise UserError(f"{path} is not an ONNX file ({type(error).__name__})") from None
        text = next((p.value for p in proto.metadata_props if p.key == METADATA_KEY), None)
    elif fmt == "pt2":
        text = _pt2_extra_file(path)
    elif fmt == "aoti":
        text = _aoti_metadata(path)
    else:
        raise UserError(f"{path}: an exported model is a .onnx or .pt2 file")
    if not text:
        raise UserError(f"{path} holds no visionzoo metadata (preprocessing, classes): export it with "
                        "`visionzoo export` or `visionzoo quantize`")
    return ExportMetadata.from_json(text, str(path))


def _pt2_extra_file(path: Path) -> str | None:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(f"/extra/{PT2_EXTRA_FILE}") or name == f"extra/{PT2_EXTRA_FILE}":
                return archive.read(name).decode("utf-8")
    return None


def _aoti_metadata(path: Path) -> str | None:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(f"/{PT2_EXTRA_FILE}"):
                return archive.read(name).decode("utf-8")
    return None
