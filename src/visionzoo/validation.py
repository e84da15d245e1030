"""`validate`: top-1/top-5 of a model on a labelled image set, at one or more input sizes, from Python.

    from visionzoo.validation import validate
    result = validate("mobilenetv4_conv_small.e2400_r224_in1k", "/data/imagenet/val", pretrained=True,
                      img_sizes=[224, 256])
    result.rows[0].top1, result.rows[0].reported_top1

Each size is preprocessed as the tag's published figure at that size was measured (its crop_pct and
interpolation), unless `crop_pct` is given. `eval_set` names the set the data is (`visionzoo.data.eval_sets`:
imagenet, imagenet-real, imagenet-v2, imagenet-sketch, imagenet-a, imagenet-r, ...): its layout is checked,
its label rule applied, and its published figures shown. Every row has the NLL (`loss`), the expected
calibration error with its bin table, and the result holds per-class counts (`write_per_class`).

The `visionzoo validate` command is a thin layer over this: it parses, prints `format_row` for each row and
writes `write_results`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .data.config import DataConfig, resolve_data_config
from .data.eval_data import UNKNOWN_LABEL, load_eval_data
from .data.eval_sets import IMAGENET, EvalSet, check_label_space, get_eval_set, set_classes
from .data.label_spaces import get_label_space, model_label_ids, model_label_names
from .data.labels import ModelClasses
from .data.loader import create_loader, default_workers, subset_indices
from .data.transforms import create_transform
from .deploy.accuracy import PredictionRecorder, agreement
from .deploy.metadata import is_artifact
from .deploy.runners import build_runner, check_backend, load_runner
from .errors import DataError, InputSizeError, UserError
from .evaluation import ClassCount, EvalResult, LabelRule, evaluate
from .factory import create_model, model_blueprint
from .files import atomic_write
from .pretrained_cfg import PretrainedCfg, ReportedResult
from .registry import parse_model_name, split_name
from .runtime import LOW_PRECISIONS, DistributedContext, resolve_device


@dataclass(frozen=True)
class ValidationRow:
    """The result at one input size: one printed line, one CSV row, one object of the JSON `results`."""

    model: str
    tag: str | None  # the tag whose weights were evaluated (None: other weights, e.g. a checkpoint)
    weights: str  # 'pretrained' or the checkpoint path
    img_size: int
    crop_pct: float
    interpolation: str
    top1: float | None
    top5: float | None
    loss: float | None
    count: int
    bad_images: int
    images_per_sec: float | None
    reported_top1: float | None = None
    reported_top5: float | None = None
    top1_diff: float | None = None
    top5_diff: float | None = None
    eval_set: str | None = None  # the named set evaluated (None: labelled images of no named set)
    scored_classes: int | None = None  # how many classes the logits were restricted to (None: all)
    skipped: int = 0  # images the set's label rule leaves out (ReaL: no label), not in `count`
    ece: float | None = None  # expected calibration error (%), over CALIBRATION_BINS confidence bins
    param_count: float | None = None  # parameters of the evaluated model, millions
    # the ECE's bin table: {lower, upper, count, accuracy (%), confidence (%)} per bin (JSON only)
    calibration: tuple[dict, ...] = ()
    backend: str = "eager"  # visionzoo.deploy.runners.BACKENDS, or the exported file's
    top1_agreement: float | None = None  # % of images with eager's top-1 (non-eager backends)

    def to_dict(self) -> dict:
        """The row as JSON types (the calibration table a list)."""
        return {**dataclasses.asdict(self), "calibration": [dict(b) for b in self.calibration]}


RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ValidationRow))
CSV_FIELDS = tuple(name for name in RESULT_FIELDS if name != "calibration")
# the reference project's results-*.csv columns (`write_results(..., reference_format=True)`)
REFERENCE_FIELDS = ("model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size", "crop_pct",
                    "interpolation")


@dataclass(frozen=True)
class ValidationResult:
    """Every size's row, and the images that could not be read (`{"image", "error"}`, in dataset order)."""

    model: str
    weights: str
    data: str
    rows: tuple[ValidationRow, ...]
    bad_images: tuple[dict, ...]
    eval_set: str | None = None
    # per size, the per-class counts, by the model's class index (ImageNet-1k's for a named set)
    per_class: tuple[tuple[int, tuple[ClassCount, ...]], ...] = ()
    # the model's classes as (synset, name) by index, where its label space says (for `write_per_class`)
    class_labels: tuple[tuple[str, str], ...] | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """The JSON document `write_results` writes."""
        return {"model": self.model, "weights": self.weights, "data": self.data, "eval_set": self.eval_set,
                "results": [row.to_dict() for row in self.rows], "bad_images": list(self.bad_images)}


class Progress:
    """A tqdm bar with images/s and running top-1 on a terminal; otherwise a log line every ~5%."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled
        self.done = self.evaluated = self.correct = 0
        self.start = time.perf_counter()
        self.next_log = 0
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=label, unit="img", file=sys.stderr, dynamic_ncols=True,
                            leave=False)

    def update(self, evaluated: int, correct: int, skipped: int) -> None:
        self.done += evaluated + skipped
        self.evaluated += evaluated
        self.correct += correct
        if not self.enabled:
            return
        top1 = 100.0 * self.correct / max(self.evaluated, 1)
        if self.bar is not None:
            self.bar.update(evaluated + skipped)
            self.bar.set_postfix_str(f"top1 {top1:.2f}", refresh=False)
        elif self.done >= self.next_log or self.done >= self.total:
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            print(f"{self.label}: {self.done}/{self.total} images, {rate:.1f} img/s, top-1 so far {top1:.3f}",
                  file=sys.stderr, flush=True)
            self.next_log = self.done + max(1, self.total // 20)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def reported_results(cfg: PretrainedCfg | None, name: str, pretrained: bool,
                     eval_set: str = IMAGENET) -> dict[int, ReportedResult]:
    """The tag's published results on `eval_set` by size, where the evaluated weights are that tag's
    (pretrained, or a checkpoint named with an explicit tag); none for a model folder (its weights are its
    own)."""
    if cfg is None or parse_model_name(name)[0] is not None:
        return {}
    if not (pretrained or split_name(name)[1] is not None):
        return {}
    return {r.img_size: r for r in cfg.results_on(eval_set)}


def _comparable_set(record: EvalSet | None, class_subset: bool) -> str | None:
    """The set whose published figures a run compares with: ImageNet's for unnamed data (as ever); none for
    a subset set scored over all 1000 classes (its figures are of the restricted scoring)."""
    if record is None:
        return IMAGENET
    if not class_subset and set_classes(record.name) is not None:
        return None
    return record.name


def data_config_for_size(model: nn.Module, size: int, crop_pct: float | None,
                         reported: dict[int, ReportedResult]) -> DataConfig:
    """The preprocessing for one evaluation size: `crop_pct` if given, else that of the published result at
    this size, else the tag's test crop at its test size, else the tag's crop."""
    cfg = model.pretrained_cfg
    interpolation = None
    if crop_pct is None:
        if size in reported:
            crop_pct, interpolation = reported[size].crop_pct, reported[size].interpolation
        elif cfg is not None and cfg.test_input_size is not None and size == cfg.test_input_size[-1]:
            crop_pct = cfg.test_crop_pct
    return resolve_data_config(model, img_size=size, crop_pct=crop_pct, interpolation=interpolation)


def evaluation_sizes(model: nn.Module, img_sizes: Sequence[int] | None, use_test_size: bool) -> list[int]:
    """`img_sizes` without repeats, else the tag's size (its test size with `use_test_size`), else the
    model's default size."""
    if img_sizes:
        return list(dict.fromkeys(img_sizes))
    cfg = model.pretrained_cfg
    if cfg is None:
        return [model.default_img_size[0]]
    return [resolve_data_config(pretrained_cfg=cfg, use_test_size=use_test_size).img_size[0]]


def check_forward(model: nn.Module, size: int, device: torch.device, name: str, in_chans: int = 3) -> None:
    """Raise InputSizeError unless one forward pass of a size x size input works."""
    try:
        with torch.inference_mode():
            model(torch.zeros(1, in_chans, size, size, device=device))
    except (RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputSizeError(f"{name} cannot take {size}x{size} inputs ({reason}); "
                             "choose another size") from None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _calibration_table(result: EvalResult) -> tuple[dict, ...]:
    return tuple({"lower": round(b.lower, 6), "upper": round(b.upper, 6), "count": b.count,
                  "accuracy": _round(b.accuracy, 4), "confidence": _round(b.confidence, 4)}
                 for b in result.bins)


@dataclass(frozen=True)
class _RunFacts:
    """What every row of one `validate` call shares."""

    name: str
    tag: str | None
    weights: str
    eval_set: str | None
    scored_classes: int | None
    skipped: int
    param_count: float


def _row(run: _RunFacts, size: int, config: DataConfig, result: EvalResult,
         reported: dict[int, ReportedResult]) -> ValidationRow:
    top1 = _round(result.top1, 4)
    top5 = _round(result.top5, 4)
    figure = reported.get(size)
    published = {}
    if figure is not None:
        published = dict(reported_top1=figure.top1, reported_top5=figure.top5,
                         top1_diff=_round(top1 - figure.top1, 4), top5_diff=_round(top5 - figure.top5, 4))
    return ValidationRow(
        model=split_name(run.name)[0], tag=run.tag, weights=run.weights, img_size=size,
        crop_pct=config.crop_pct, interpolation=config.interpolation, top1=top1, top5=top5,
        loss=_round(result.loss, 6), count=result.count, bad_images=len(result.failures),
        images_per_sec=_round(result.images_per_second, 1), **published, eval_set=run.eval_set,
        scored_classes=run.scored_classes, skipped=run.skipped, ece=_round(result.ece, 4),
        param_count=run.param_count, calibration=_calibration_table(result))


def _on_unreadable(dataset, strict: bool) -> Callable[[int, str], None]:
    """What evaluation does with an unreadable image: with `strict`, stop naming it; else skip (counted)."""
    def fail_strict(index: int, error: str) -> None:
        if strict:
            raise DataError(f"unreadable image {dataset.name(index)}: {error} "
                            "(without {strict=True} it is skipped)")
    return fail_strict


def validate(model: str, data: str | os.PathLike, *, pretrained: bool = False,
             checkpoint_path: str | os.PathLike | None = None, img_sizes: Sequence[int] | None = None,
             crop_pct: float | None = None, use_test_size: bool = False,
             labels_file: str | os.PathLike | None = None, batch_size: int = 64, workers: int | None = None,
             amp: str | None = None, channels_last: bool = False, device: str | None = None,
             limit: int | None = None, strict: bool = False, progress: bool = False,
             distributed: DistributedContext | None = None,
             on_row: Callable[[ValidationRow], None] | None = None, eval_set: str | None = None,
             class_subset: bool = True, per_class: bool = False, backend: str = "eager",
             calibration: str | os.PathLike | None = None, calibration_count: int = 200) -> ValidationResult:
    """Evaluate `model` ('arch', 'arch.tag' or a model folder) on the labelled images at `data`, once per
    input size. The data's labels are matched by name to the model's classes (its folder's label names, or
    its tag's label space: ImageNet synsets), or taken as class indices.

    `model` may also be an exported file (.onnx, .pt2): its preprocessing and classes are read from it.

    Args:
        eval_set: the named set `data` is (`visionzoo.data.eval_sets.EVAL_SETS`): its layout is checked, its
            label rule applied and its published figures compared; the model must output the ImageNet-1k
            classes. None: labelled images read as `create_dataset` reads them, compared with ImageNet's
            figures.
        class_subset: for a set of some of the classes (imagenet-a, imagenet-r), restrict the logits to them
            (the sets' own rule); False scores all 1000 (no published figure is then comparable).
        per_class: refuse up front data whose images' classes are unknown (ReaL in a flat folder), so that
            the per-class counts the caller will write cover every image.
        pretrained / checkpoint_path: the weights (the tag's published ones, the model folder's, or a local
            file); one is needed.
        img_sizes: sizes to evaluate at (default: the tag's size, its test size with `use_test_size`).
        crop_pct: the centre crop for every size (default: per size, that of the tag's published result).
        labels_file: 'filename,label' lines for a flat folder of images.
        workers: decoding processes per rank (default: the CPUs shared by the ranks, at most 8).
        amp: 'bf16' or 'fp16' autocast. device: 'cpu', 'cuda', 'cuda:N' (default: cuda if there is one).
        limit: evaluate this many images, spread over the data. strict: stop at the first unreadable image.
        progress: a bar (terminal) or log lines on stderr. on_row: called with each size's row when done.
        distributed: this process's place in a torchrun launch (from `runtime.init_distributed`).
        backend: one of visionzoo.deploy.runners.BACKENDS: the model deployed that way is evaluated next to
            eager on the same images (two rows per size: eager's, then the backend's with its top-1
            agreement). calibration / calibration_count: the int8 backend's calibration images.

    Raises:
        UserError (DataError, InputSizeError, ...): bad data, a size the model cannot take, unreadable data.
        UnknownModelError, CheckpointError: the model or its weights.
    """
    if is_artifact(model):
        if pretrained or checkpoint_path is not None:
            raise UserError(f"{model} is an exported file with its weights inside: "
                            "drop {pretrained=True} / {checkpoint_path}")
        return _validate_artifact(model, data, labels_file, batch_size, workers or 0, limit, strict, on_row)
    if pretrained == (checkpoint_path is not None):
        raise UserError("give the weights to validate: {pretrained=True} or {checkpoint_path}, not both")
    check_backend(backend, "int8" if backend == "int8" else "fp32")
    if backend == "int8" and calibration is None:
        raise UserError("the int8 backend calibrates on images: give {calibration} (a folder of images apart "
                        "from the evaluated ones)")
    if crop_pct is not None and not 0 < crop_pct <= 4:
        raise UserError(f"{{crop_pct}} must be in (0, 4], got {crop_pct}")
    if workers is not None and workers < 0:
        raise UserError(f"{{workers}} must be 0 or more, got {workers}")
    if amp is not None and amp not in LOW_PRECISIONS:
        raise UserError(f"{{amp}} must be one of {', '.join(LOW_PRECISIONS)}, got {amp!r}")
    record = get_eval_set(eval_set) if eval_set is not None else None
    context = distributed or DistributedContext()
    if backend != "eager" and context.world_size > 1:
        raise UserError(f"the {backend} backend is validated in one process (not under torchrun)")
    target = resolve_device(device, context.local_rank)
    if backend != "eager" and target.type != "cpu":
        raise UserError(f"the {backend} backend runs on the CPU: give {{device}} cpu")
    weights = "pretrained" if pretrained else str(checkpoint_path)

    # the model's classes, cfg and size rules (its folder's or checkpoint's), without reading weights
    blueprint = model_blueprint(model, pretrained=pretrained, checkpoint_path=checkpoint_path)
    sizes = evaluation_sizes(blueprint, img_sizes, use_test_size)
    for size in sizes:  # before reading any weights
        try:
            probe = model_blueprint(model, pretrained=pretrained, checkpoint_path=checkpoint_path,
                                    num_classes=blueprint.num_classes, img_size=size)
        except UserError:
            raise
        except ValueError as error:  # a family's config refusing the size
            raise InputSizeError(f"{model} cannot be built for {size}x{size} inputs ({error})") from None
        probe.check_img_size(size, name=model)
    cfg = blueprint.pretrained_cfg
    if record is not None:
        check_label_space(record, cfg, blueprint.num_classes, model)
    comparable = _comparable_set(record, class_subset)
    reported = reported_results(cfg, model, pretrained, comparable) if comparable else {}
    is_registry_tag = parse_model_name(model)[0] is None and (pretrained or split_name(model)[1] is not None)
    tag = cfg.tag if cfg is not None and is_registry_tag else None
    classes = ModelClasses(blueprint.num_classes, model_label_ids(cfg))
    eval_data = load_eval_data(record, data, classes, labels_file, class_subset)
    dataset = eval_data.dataset
    if per_class and UNKNOWN_LABEL in dataset.labels:
        raise DataError(f"per-class counts on {record.name} need each image's ImageNet class: give the "
                        "images in synset class folders or with a labels file")
    rule = LabelRule(eval_data.class_subset, eval_data.label_sets)
    indices = subset_indices(len(dataset), limit)
    workers = default_workers(context.local_world_size) if workers is None else workers

    fail_strict = _on_unreadable(dataset, strict)
    rows, bad_images, class_counts = [], {}, []
    run = None
    built_size, net = None, None
    for size in sizes:
        # A fixed-size model (ViT) is rebuilt for each size it is evaluated at; any other is loaded once.
        wanted = size if blueprint.fixed_input_size and blueprint.default_img_size != (size, size) else None
        if net is None or wanted != built_size:
            net = None  # free the previous size's weights before reading the next
            net = create_model(model, pretrained=pretrained, checkpoint_path=checkpoint_path, img_size=wanted)
            if record is not None:  # a checkpoint's head may differ from its tag's
                check_label_space(record, net.pretrained_cfg, net.num_classes, model)
            net = net.eval().to(target)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
            built_size = wanted
        config = data_config_for_size(net, size, crop_pct, reported)
        check_forward(net, size, target, model, net.config.in_chans)
        loader = create_loader(dataset.with_transform(create_transform(config, normalize=False)), batch_size,
                               workers, indices, context.rank, context.world_size,
                               pin_memory=target.type == "cuda")
        label = f"{model} @ {size}" + (f" (rank 0 of {context.world_size})" if context.world_size > 1 else "")
        bar = Progress(loader.batch_sampler.num_samples(), label, enabled=progress and context.is_main)
        eager = PredictionRecorder(net) if backend != "eager" else net
        try:
            result = evaluate(eager, loader, config, target, amp=amp, channels_last=channels_last,
                              on_batch=bar.update, on_failure=fail_strict, rule=rule)
        finally:
            bar.close()
        for index, error in result.failures:
            bad_images[index] = {"image": dataset.name(index), "error": error}
        if result.count == 0:
            first = next(iter(bad_images.values()), None)
            raise DataError(f"no image in {data} could be read ({len(result.failures)} unreadable"
                            + (f", e.g. {first['image']}: {first['error']}" if first else "") + ")")
        if run is None:
            run = _RunFacts(model, tag, weights, eval_set,
                            len(rule.class_subset) if rule.class_subset is not None else None,
                            eval_data.skipped, round(sum(p.numel() for p in net.parameters()) / 1e6, 2))
        size_rows = [_row(run, size, config, result, reported)]
        class_counts.append((size, result.per_class))
        if backend != "eager":
            runner = build_runner(backend, net, size, calibration=calibration,
                                  calibration_count=calibration_count)
            deployed = PredictionRecorder(runner)
            deployed_result = evaluate(deployed, loader, config, target, rule=rule)
            agree = agreement(eager.predictions(), deployed.predictions())
            size_rows.append(dataclasses.replace(_row(run, size, config, deployed_result, reported),
                                                 backend=runner.backend, top1_agreement=_round(agree, 4)))
        for row in size_rows:
            rows.append(row)
            if on_row is not None and context.is_main:
                on_row(row)
    return ValidationResult(model, weights, os.fspath(data), tuple(rows),
                            tuple(bad_images[i] for i in sorted(bad_images)), eval_set, tuple(class_counts),
                            _class_names(net))


def _class_names(net: nn.Module) -> tuple[tuple[str, str], ...] | None:
    """(synset, name) of each of the model's classes, where its tag's label space or own names say."""
    cfg = net.pretrained_cfg
    if cfg is None:
        return None
    names = model_label_names(dataclasses.replace(cfg, num_classes=net.num_classes))
    if names is None:
        return None
    space = get_label_space(cfg.label_space) if cfg.label_names is None and cfg.label_space else None
    synsets = space.synsets() if space is not None else ("",) * len(names)
    return tuple(zip(synsets, names, strict=True))


def _validate_artifact(path: str | os.PathLike, data: str | os.PathLike, labels_file, batch_size: int,
                       workers: int, limit: int | None, strict: bool,
                       on_row: Callable[[ValidationRow], None] | None) -> ValidationResult:
    """An exported file on the labelled set, preprocessed as its metadata says: one row."""
    runner, metadata = load_runner(path)
    config = metadata.data_config()
    classes = ModelClasses(metadata.num_classes, metadata.label_ids) if metadata.label_ids is not None \
        else ModelClasses.default(metadata.num_classes)
    dataset = load_eval_data(None, data, classes, labels_file).dataset
    loader = create_loader(dataset.with_transform(create_transform(config, normalize=False)), batch_size,
                           workers, subset_indices(len(dataset), limit))

    fail_strict = _on_unreadable(dataset, strict)
    result = evaluate(runner, loader, config, torch.device("cpu"), on_failure=fail_strict)
    bad_images = tuple({"image": dataset.name(i), "error": e} for i, e in sorted(result.failures))
    if result.count == 0:
        raise DataError(f"no image in {data} could be read ({len(result.failures)} unreadable)")
    facts = _RunFacts(os.fspath(path), None, metadata.source, None, None, 0, None)
    row = dataclasses.replace(_row(facts, metadata.img_size[0], config, result, {}), model=os.fspath(path),
                              backend=runner.backend)
    if on_row is not None:
        on_row(row)
    return ValidationResult(os.fspath(path), metadata.source, os.fspath(data), (row,), bad_images)


def format_row(row: ValidationRow) -> str:
    """One line: the size, its preprocessing, top-1/top-5/NLL/ECE, and the published figures where known."""
    name = f"{row.model}.{row.tag}" if row.tag else row.model
    if row.backend != "eager":
        name += f" [{row.backend}]"
    where = f" on {row.eval_set}" if row.eval_set else ""
    where += f" ({row.scored_classes} classes)" if row.scored_classes else ""
    line = (f"{name}{where} @ {row.img_size} (crop_pct {row.crop_pct}, {row.interpolation}): "
            f"top1 {row.top1:.3f}  top5 {row.top5:.3f}  nll {row.loss:.4f}  ece {row.ece:.2f}  "
            f"on {row.count} images, {row.images_per_sec} img/s")
    if row.skipped:
        line += f", {row.skipped} without a label skipped"
    if row.bad_images:
        line += f", {row.bad_images} unreadable skipped"
    if row.top1_agreement is not None:
        line += f"; top-1 agreement with eager {row.top1_agreement:.2f}%"
    if row.reported_top1 is not None:
        line += (f"; reported top1 {row.reported_top1:.3f} ({row.top1_diff:+.3f}) "
                 f"top5 {row.reported_top5:.3f} ({row.top5_diff:+.3f})")
    return line


def reference_row(row: ValidationRow) -> dict:
    """A row in the reference project's results-CSV columns (model as `arch.tag`, errors as 100 - top-k)."""
    name = f"{row.model}.{row.tag}" if row.tag else row.model
    return {"model": name, "top1": f"{row.top1:.3f}", "top1_err": f"{100 - row.top1:.3f}",
            "top5": f"{row.top5:.3f}", "top5_err": f"{100 - row.top5:.3f}",
            "param_count": f"{row.param_count:.2f}" if row.param_count is not None else "",
            "img_size": row.img_size, "crop_pct": f"{row.crop_pct:.3f}", "interpolation": row.interpolation}


def _write_atomically(target: Path, write: Callable) -> None:
    """Write through `write(text file)`, whole or not at all (`visionzoo.files.atomic_write`)."""

    def write_file(temporary: str) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as f:
            write(f)

    atomic_write(target, write_file)


def write_results(path: str | os.PathLike, result: ValidationResult, reference_format: bool = False) -> None:
    """JSON: {model, weights, data, eval_set, results: [row per size], bad_images: [{image, error}]}; CSV: one
    row per size (the calibration table left out), the unreadable images joined in the last column.

    reference_format: a CSV in the reference project's results columns (`REFERENCE_FIELDS`) instead."""
    target = Path(path)
    if target.suffix not in (".json", ".csv"):
        raise UserError(f"results file must end in .json or .csv, got {target}")
    if reference_format and target.suffix != ".csv":
        raise UserError(f"the reference's results format is CSV: name the results file .csv, not {target}")

    def write_csv(f) -> None:
        if reference_format:
            writer = csv.DictWriter(f, fieldnames=REFERENCE_FIELDS)
            writer.writeheader()
            writer.writerows(reference_row(row) for row in result.rows)
            return
        writer = csv.DictWriter(f, fieldnames=[*CSV_FIELDS, "bad_image_list"], extrasaction="ignore")
        writer.writeheader()
        listing = "; ".join(item["image"] for item in result.bad_images)
        for row in result.rows:
            writer.writerow({**row.to_dict(), "bad_image_list": listing})

    if target.suffix == ".csv":
        _write_atomically(target, write_csv)
    else:
        _write_atomically(target, lambda f: f.write(json.dumps(result.to_dict(), indent=2) + "\n"))


PER_CLASS_FIELDS = ("img_size", "class_index", "synset", "name", "count", "top1_correct", "top1",
                    "top5_correct", "top5")


def write_per_class(path: str | os.PathLike, result: ValidationResult) -> None:
    """Per-class accuracy as CSV, one row per (size, class with images): the class index, its synset and name
    where the classes are ImageNet-1k's, the images, and the hits and accuracy (%) at top-1 and top-5."""
    target = Path(path)
    if target.suffix != ".csv":
        raise UserError(f"the per-class file is CSV: name it .csv, not {target}")
    classes = result.class_labels or ()

    def write(f) -> None:
        writer = csv.DictWriter(f, fieldnames=PER_CLASS_FIELDS)
        writer.writeheader()
        for size, counts in result.per_class:
            for c in counts:
                synset, name = classes[c.label] if c.label < len(classes) else ("", "")
                writer.writerow({"img_size": size, "class_index": c.label, "synset": synset, "name": name,
                                 "count": c.count,
                                 "top1_correct": c.correct1, "top1": f"{100 * c.correct1 / c.count:.3f}",
                                 "top5_correct": c.correct5, "top5": f"{100 * c.correct5 / c.count:.3f}"})

    _write_atomically(target, write)
