"""The user's own results merged into the metrics pages: `visionzoo validate` and `visionzoo benchmark` files.

Both commands write CSV (one record a row) or JSON (a list of records, or an object with a "results" list).
A record with `infer_img_per_s` is a benchmark result (fields as `visionzoo.benchmark.BenchmarkResult`);
one that also has `top1` (`benchmark --val-data`) is a deployment result too: the page's accuracy x speed x
format table. Any other record with `top1` is an accuracy result (fields: model as 'arch.tag' or model 'arch'
plus tag, img_size, top1, top5; a record without a tag is of weights that are no tag's and is left out).

Results are kept apart by their setting: the values of the record's setting fields (`ACCURACY_FIELDS`,
`SPEED_FIELDS`), each distinct setting a column of the pages. A field the commands start writing becomes a
new way to tell results apart by adding one `SettingField` line; files written before it existed read as
its default. The machine and software a setting was measured with (`CONTEXT_FIELDS`) are kept with it.

An accuracy record without an eval_set is an ImageNet result, except in a file in the reference's results
columns named as the reference names its files (results-imagenet-a.csv, ...): such a file holds the results
of that set. A run on ImageNet-A/R scored over all 1000 classes (`--no-class-subset`) is not the set's own
figure and is left out.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..data.eval_sets import EVAL_SETS, IMAGENET, get_eval_set, set_classes
from ..errors import UnknownModelError, UserError
from ..registry import parse_model_name, resolve_pretrained_cfg, split_name
from ..runtime import PRECISIONS


def _flag(value) -> str:
    """A true/false field as 'true' or 'false', whether written by CSV ('True') or JSON (true)."""
    truth = value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes")
    return "true" if truth else "false"


def _device_type(value) -> str:
    """'cuda:1' -> 'cuda': results of the devices of one kind on one machine share columns."""
    return str(value).split(":")[0]


@dataclass(frozen=True)
class SettingField:
    """A field of a result record that tells settings apart: each distinct setting gets its own columns."""

    key: str
    default: str | None  # the value of a record without the field (written before the field existed);
    # None: the field is required
    label: str = "{}"  # how the value reads in a column label ('{}' is the value)
    quiet: str | None = None  # the usual value, left out of labels
    ranking: tuple[str, ...] = ()  # the values in display order; others follow, alphabetically
    numeric: bool = False  # ordered as numbers
    normalise: Callable[[object], str] = str

    def read(self, record: dict) -> str:
        value = record.get(self.key)
        if value not in (None, ""):
            return self.normalise(value)
        if self.default is None:
            raise UserError(f"a result of {record.get('model')} has no {self.key}")
        return self.default

    def order(self, value: str) -> tuple:
        if self.numeric:
            return (float(value), value)
        rank = self.ranking.index(value) if value in self.ranking else len(self.ranking)
        return (rank, value)


# How an accuracy was measured. eval_set, backend and precision are read where validate writes them (named
# eval sets and deployed backends); older files are of ImageNet val and the eager model, at a precision they
# do not record (validate --amp is not in them), which is left unsaid rather than guessed.
ACCURACY_FIELDS = (
    SettingField("eval_set", "imagenet", quiet="imagenet"),
    SettingField("backend", "eager", quiet="eager"),
    SettingField("precision", "", quiet="", ranking=tuple(PRECISIONS)),
)
# How a throughput was measured: the fields of `visionzoo.benchmark.BenchmarkResult` that change the figure.
SPEED_FIELDS = (
    SettingField("device", "?", normalise=_device_type),
    SettingField("batch_size", None, label="bs {}", numeric=True),
    SettingField("precision", "fp32", ranking=tuple(PRECISIONS)),
    SettingField("channels_last", "false", label="NHWC", quiet="false", normalise=_flag),
    SettingField("compiled", "false", label="compiled", quiet="false", normalise=_flag),
    SettingField("backend", "eager", quiet="eager"),
)
# What a setting was measured on and with, shown next to its columns (all values seen are kept): the
# record's field -> its heading.
CONTEXT_FIELDS = {"device_name": "device", "cpu_isa": "CPU ISA", "cpu_features": "CPU int8/bf16",
                  "threads": "threads",
                  "torch_version": "torch", "visionzoo_version": "visionzoo",
                  "onnxruntime_version": "onnxruntime"}


@dataclass(frozen=True)
class Setting:
    """One way of measuring: a value per field of its kind (`ACCURACY_FIELDS` or `SPEED_FIELDS`)."""

    fields: tuple[SettingField, ...] = field(repr=False)
    values: tuple[str, ...]

    def __getitem__(self, key: str) -> str:
        return self.values[[f.key for f in self.fields].index(key)]

    @property
    def label(self) -> str:
        """The non-usual values, e.g. 'cpu, bs 8, bf16, onnxruntime' ('' for the usual setting)."""
        return ", ".join(f.label.format(v) for f, v in zip(self.fields, self.values, strict=True)
                         if v != f.quiet)

    @property
    def description(self) -> str:
        """Every field with its value, e.g. 'eval_set imagenet, backend eager, precision not recorded'."""
        pairs = zip(self.fields, self.values, strict=True)
        return ", ".join(f"{f.key} {value or 'not recorded'}" for f, value in pairs)

    def order(self) -> tuple:
        """Sort key: field by field, each in its own order (batch sizes as numbers, fp32 before bf16)."""
        return tuple(f.order(v) for f, v in zip(self.fields, self.values, strict=True))

    @classmethod
    def of(cls, fields: tuple[SettingField, ...], record: dict) -> Setting:
        return cls(fields, tuple(f.read(record) for f in fields))


@dataclass(frozen=True)
class OwnAccuracy:
    """The user's own top-1/top-5 of one tag at one size."""

    top1: float
    top5: float | None


@dataclass(frozen=True)
class Speed:
    """The user's inference speed of one model at one size: images/s and the median latency of one batch."""

    img_per_s: float
    latency_ms: float | None


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


def _deployed(record: dict) -> DeployedResult:
    features = record.get("cpu_features") or "no VNNI/AMX/bf16 recorded"
    cpu = (f"{record.get('device_name', '?')} ({record.get('cpu_isa', '?')}; {features}; "
           f"{record.get('threads', '?')} threads)")
    return DeployedResult(
        str(record["model"]), int(record["img_size"]), str(record.get("backend") or "eager"),
        str(record.get("format") or "torch"), str(record.get("precision", "fp32")), int(record["batch_size"]),
        float(record["infer_img_per_s"]), float(record["infer_ms"]), _number(record.get("setup_s")),
        _number(record.get("artifact_mb")), float(record["top1"]), _number(record.get("top1_agreement")),
        None if record.get("val_images") in (None, "") else int(record["val_images"]),
        str(record.get("weights", "")), cpu)


@dataclass
class UserResults:
    """Accuracy by setting, then (arch.tag, img_size); inference speed by setting, then (arch, tag or None,
    img_size); the machine and versions of each setting."""

    accuracy: dict[Setting, dict[tuple[str, int], OwnAccuracy]] = field(default_factory=dict)
    speed: dict[Setting, dict[tuple[str, str | None, int], Speed]] = field(default_factory=dict)
    context: dict[Setting, dict[str, set[str]]] = field(default_factory=dict)
    # device -> what it is, e.g. "cuda" -> "NVIDIA H100"
    device_names: dict[str, str] = field(default_factory=dict)
    # benchmark rows measured with --val-data: accuracy x speed x format
    deployed: list[DeployedResult] = field(default_factory=list)

    @property
    def accuracy_settings(self) -> list[Setting]:
        return sorted(self.accuracy, key=Setting.order)

    @property
    def settings(self) -> list[Setting]:
        """The speed settings, in the benchmark's order."""
        return sorted(self.speed, key=Setting.order)

    def own_accuracy(self, setting: Setting, name: str, img_size: int) -> OwnAccuracy | None:
        return self.accuracy.get(setting, {}).get((name, img_size))

    def accuracy_on(self, eval_set: str, name: str, img_size: int) -> OwnAccuracy | None:
        """The user's figure of the eager model on `eval_set` (the first precision that has one)."""
        for setting in self.accuracy_settings:
            if (setting["eval_set"], setting["backend"]) == (eval_set, "eager"):
                if (mine := self.own_accuracy(setting, name, img_size)) is not None:
                    return mine
        return None

    def speed_of(self, setting: Setting, name: str, img_size: int) -> Speed | None:
        """The speed of `name` (arch.tag) at `img_size`: measured for this tag, else for its arch (speed
        depends on the architecture, not the weights)."""
        arch, tag = split_name(name)
        measured = self.speed.get(setting, {})
        return measured.get((arch, tag, img_size), measured.get((arch, None, img_size)))

    def throughput(self, setting: Setting, name: str, img_size: int) -> float | None:
        """Images/s of `name` (arch.tag) at `img_size`, as `speed_of` finds it."""
        found = self.speed_of(setting, name, img_size)
        return None if found is None else found.img_per_s

    def describe(self, setting: Setting) -> dict[str, str]:
        """What `setting` was measured on and with: context field -> its values, joined."""
        seen = self.context.get(setting, {})
        return {key: "; ".join(sorted(seen[key])) for key in CONTEXT_FIELDS if seen.get(key)}

    def _note_context(self, setting: Setting, record: dict) -> None:
        seen = self.context.setdefault(setting, {})
        for key in CONTEXT_FIELDS:
            if record.get(key) not in (None, ""):
                seen.setdefault(key, set()).add(str(record[key]))


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


def _file_set(path: Path) -> str:
    """The set a file's records without an eval_set are of: the set whose reference results file it is named
    as, else ImageNet."""
    return next((s.name for s in EVAL_SETS.values() if s.reference_results == path.name), IMAGENET)


def _model_name(record: dict) -> str:
    model, tag = str(record["model"]), record.get("tag")
    return f"{model}.{tag}" if tag and "." not in model else model


def _number(value) -> float | None:
    return None if value in (None, "") else float(value)


def read_user_results(paths: Iterable[str | Path]) -> UserResults:
    """Read validate and benchmark result files; records of models that are not registered are left out.

    Raises UserError for a missing file, an unreadable format, or a file with no result the pages can use.
    """
    results = UserResults()
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"results file {str(path)!r} does not exist")
        usable = 0
        file_set = _file_set(path)
        for record in _records(path):
            if "model" not in record or "img_size" not in record:
                continue
            name = _model_name(record)
            if parse_model_name(name)[0] is not None:
                continue  # a model folder: not a registered model, nothing on the page to compare it with
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
                eval_set = get_eval_set(record.get("eval_set") or file_set).name
                if set_classes(eval_set) is not None and record.get("scored_classes", "200") in (None, ""):
                    continue  # scored over all 1000 classes (--no-class-subset): not the set's own figure
                setting = Setting.of(ACCURACY_FIELDS, {**record, "eval_set": eval_set})
                results.accuracy.setdefault(setting, {})[(cfg.name, img_size)] = OwnAccuracy(
                    float(record["top1"]), _number(record.get("top5")))
            elif benchmark:
                try:
                    setting = Setting.of(SPEED_FIELDS, record)
                except UserError as error:
                    raise UserError(f"{path}: {error}") from None
                arch, tag = split_name(name)
                results.speed.setdefault(setting, {})[(arch, tag, img_size)] = Speed(
                    float(record["infer_img_per_s"]), _number(record.get("infer_ms")))
                if record.get("device_name"):
                    results.device_names[setting["device"]] = str(record["device_name"])
            else:
                continue
            results._note_context(setting, record)
            usable += 1
        if not usable:
            raise UserError(f"{path} holds no validate or benchmark result of a registered model "
                             "(records need model, img_size and top1 or infer_img_per_s)")
    return results
