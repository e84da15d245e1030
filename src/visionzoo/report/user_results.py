"""The user's own results merged into the metrics page: `visionzoo validate` and `visionzoo benchmark` files.

Both commands write CSV (one record a row) or JSON (a list of records, or an object with a "results" list).
A record with `top1` is an accuracy result (fields: model as 'arch.tag' or model 'arch' plus tag, img_size,
top1, top5; a record without a tag is of weights that are no tag's and is left out); a record with
`infer_img_per_s` is a benchmark result (fields as `visionzoo.benchmark.BenchmarkResult`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UnknownModelError, UserError
from ..registry import resolve_pretrained_cfg, split_name
from ..runtime import PRECISIONS


@dataclass(frozen=True)
class OwnAccuracy:
    """The user's own top-1/top-5 of one tag at one size."""

    top1: float
    top5: float | None


@dataclass(frozen=True)
class SpeedSetting:
    """How a throughput was measured; one page column per setting."""

    device: str
    batch_size: int
    precision: str
    channels_last: bool = False
    compiled: bool = False
    backend: str = "eager"  # visionzoo benchmark --backend

    def order(self) -> tuple:
        """Sort key: by device, batch size, then precision as the benchmark lists them (fp32 first)."""
        precisions = list(PRECISIONS)
        rank = precisions.index(self.precision) if self.precision in precisions else len(precisions)
        return (self.device, self.batch_size, rank, self.precision, self.channels_last, self.compiled,
                self.backend)

    @property
    def label(self) -> str:
        extras = "".join([", NHWC" if self.channels_last else "", ", compiled" if self.compiled else "",
                          f", {self.backend}" if self.backend != "eager" else ""])
        return f"{self.device.split(':')[0]}, bs {self.batch_size}, {self.precision}{extras}"


@dataclass(frozen=True)
class DeployedResult:
    """One benchmark row measured with accuracy: a model in one format and precision, its speed and top-1."""

    model: str
    img_size: int
    backend: str
    format: str
    precision: str
    batch_size: int
    img_per_s: float
    latency_ms: float
    setup_s: float | None
    artifact_mb: float | None
    top1: float
    top1_agreement: float | None
    val_images: int | None
    weights: str
    cpu: str  # name (ISA; VNNI/AMX/bf16; threads)

    @property
    def label(self) -> str:
        return f"{self.model} {self.backend}/{self.precision} b{self.batch_size}"


def _float(value) -> float | None:
    return None if value in (None, "") else float(value)


def _deployed(record: dict) -> DeployedResult:
    features = record.get("cpu_features") or "no VNNI/AMX/bf16 recorded"
    cpu = (f"{record.get('device_name', '?')} ({record.get('cpu_isa', '?')}; {features}; "
           f"{record.get('threads', '?')} threads)")
    return DeployedResult(
        str(record["model"]), int(record["img_size"]), str(record.get("backend") or "eager"),
        str(record.get("format") or "torch"), str(record.get("precision", "fp32")), int(record["batch_size"]),
        float(record["infer_img_per_s"]), float(record["infer_ms"]), _float(record.get("setup_s")),
        _float(record.get("artifact_mb")), float(record["top1"]), _float(record.get("top1_agreement")),
        None if record.get("val_images") in (None, "") else int(record["val_images"]),
        str(record.get("weights", "")), cpu)


@dataclass
class UserResults:
    """Accuracy by (arch.tag, img_size); inference images/s by setting, then by (arch, tag or None,
    img_size)."""

    accuracy: dict[tuple[str, int], OwnAccuracy] = field(default_factory=dict)
    speed: dict[SpeedSetting, dict[tuple[str, str | None, int], float]] = field(default_factory=dict)
    # device -> what it is, e.g. "cuda" -> "NVIDIA H100"
    device_names: dict[str, str] = field(default_factory=dict)
    # benchmark rows measured with --val-data: accuracy x speed x format
    deployed: list[DeployedResult] = field(default_factory=list)

    def own_accuracy(self, name: str, img_size: int) -> OwnAccuracy | None:
        return self.accuracy.get((name, img_size))

    def throughput(self, setting: SpeedSetting, name: str, img_size: int) -> float | None:
        """Images/s of `name` (arch.tag) at `img_size`: measured for this tag, else for its arch."""
        arch, tag = split_name(name)
        measured = self.speed.get(setting, {})
        return measured.get((arch, tag, img_size), measured.get((arch, None, img_size)))

    @property
    def settings(self) -> list[SpeedSetting]:
        return sorted(self.speed, key=SpeedSetting.order)


def _records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        document = json.loads(text)
        records = document.get("results", [document]) if isinstance(document, dict) else document
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise UserError(f"{path}: expected a list of result objects, or an object with a 'results' list")
        return records
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(text.splitlines()))
    raise UserError(f"cannot read results from {str(path)!r}: "
                    "give a .csv or .json file from validate or benchmark")


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")


def _model_name(record: dict) -> str:
    model, tag = str(record["model"]), record.get("tag")
    return f"{model}.{tag}" if tag and "." not in model else model


def read_user_results(paths: Iterable[str | Path]) -> UserResults:
    """Read validate and benchmark result files; records of models that are not registered are left out.

    Raises FileNotFoundError for a missing file and ValueError for a file with no result the page can use.
    """
    results = UserResults()
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"results file {str(path)!r} does not exist")
        usable = 0
        for record in _records(path):
            if "model" not in record or "img_size" not in record:
                continue
            name = _model_name(record)
            try:
                cfg = resolve_pretrained_cfg(name)
            except UnknownModelError:
                continue
            img_size = int(record["img_size"])
            benchmark = record.get("infer_img_per_s") not in (None, "") and record.get("status", "ok") == "ok"
            if benchmark and record.get("top1") not in (None, ""):
                results.deployed.append(_deployed(record))
            if record.get("top1") not in (None, "") and not benchmark:
                if cfg is None or split_name(name)[1] is None:
                    continue  # weights that are no tag's (e.g. a local checkpoint) have no reported figure
                top5 = record.get("top5")
                results.accuracy[(cfg.name, img_size)] = OwnAccuracy(
                    float(record["top1"]), float(top5) if top5 not in (None, "") else None)
                usable += 1
            elif benchmark:
                setting = SpeedSetting(str(record.get("device", "?")), int(record["batch_size"]),
                                       str(record.get("precision", "fp32")),
                                       _flag(record.get("channels_last")), _flag(record.get("compiled")),
                                       str(record.get("backend") or "eager"))
                arch, tag = split_name(name)
                speed = float(record["infer_img_per_s"])
                results.speed.setdefault(setting, {})[(arch, tag, img_size)] = speed
                if record.get("device_name"):
                    results.device_names[setting.device.split(":")[0]] = str(record["device_name"])
                usable += 1
        if not usable:
            raise UserError(f"{path} holds no validate or benchmark result of a registered model "
                             "(records need model, img_size and top1 or infer_img_per_s)")
    return results
