"""`validate`: top-1/top-5 of a model on a labelled image set, at one or more input sizes, from Python.

    from visionzoo.validation import validate
    result = validate("mobilenetv4_conv_small.e2400_r224_in1k", "/data/imagenet/val", pretrained=True,
                      img_sizes=[224, 256])
    result.rows[0].top1, result.rows[0].reported_top1

Each size is preprocessed as the tag's published figure at that size was measured (its crop_pct and
interpolation), unless `crop_pct` is given. The `visionzoo validate` command is a thin layer over this: it
parses, prints `format_row` for each row and writes `write_results`.
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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data.config import DataConfig, resolve_data_config
from .data.datasets import create_dataset
from .data.loader import create_loader, default_workers, subset_indices
from .data.transforms import create_transform
from .deploy.accuracy import PredictionRecorder, agreement
from .deploy.metadata import is_artifact
from .deploy.runners import build_runner, check_backend, load_runner
from .errors import DataError, InputSizeError, UserError
from .evaluation import DistributedContext, EvalResult, evaluate
from .factory import create_model
from .pretrained_cfg import PretrainedCfg, ReportedResult
from .registry import split_name
from .runtime import LOW_PRECISIONS, resolve_device


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
    backend: str = "eager"  # visionzoo.deploy.runners.BACKENDS, or the exported file's
    top1_agreement: float | None = None  # % of images with eager's top-1 (non-eager backends)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ValidationRow))


@dataclass(frozen=True)
class ValidationResult:
    """Every size's row, and the images that could not be read (`{"image", "error"}`, in dataset order)."""

    model: str
    weights: str
    data: str
    rows: tuple[ValidationRow, ...]
    bad_images: tuple[dict, ...]

    def to_dict(self) -> dict:
        """The JSON document `write_results` writes."""
        return {"model": self.model, "weights": self.weights, "data": self.data,
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


def reported_results(cfg: PretrainedCfg | None, name: str, pretrained: bool) -> dict[int, ReportedResult]:
    """The tag's published results by size, where the evaluated weights are that tag's (pretrained, or a
    checkpoint named with an explicit tag)."""
    if cfg is None or not (pretrained or split_name(name)[1] is not None):
        return {}
    return {r.img_size: r for r in cfg.results}


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


def _row(name: str, tag: str | None, weights: str, size: int, config: DataConfig, result: EvalResult,
         reported: dict[int, ReportedResult]) -> ValidationRow:
    top1 = _round(result.top1, 4)
    top5 = _round(result.top5, 4)
    figure = reported.get(size)
    published = {}
    if figure is not None:
        published = dict(reported_top1=figure.top1, reported_top5=figure.top5,
                         top1_diff=_round(top1 - figure.top1, 4), top5_diff=_round(top5 - figure.top5, 4))
    return ValidationRow(
        model=split_name(name)[0], tag=tag, weights=weights, img_size=size, crop_pct=config.crop_pct,
        interpolation=config.interpolation, top1=top1, top5=top5, loss=_round(result.loss, 6),
        count=result.count, bad_images=len(result.failures),
        images_per_sec=_round(result.images_per_second, 1),
        **published)


def validate(model: str, data: str | os.PathLike, *, pretrained: bool = False,
             checkpoint_path: str | os.PathLike | None = None, img_sizes: Sequence[int] | None = None,
             crop_pct: float | None = None, use_test_size: bool = False,
             labels_file: str | os.PathLike | None = None, batch_size: int = 64, workers: int | None = None,
             amp: str | None = None, channels_last: bool = False, device: str | None = None,
             limit: int | None = None, strict: bool = False, progress: bool = False,
             distributed: DistributedContext | None = None,
             on_row: Callable[[ValidationRow], None] | None = None, backend: str = "eager",
             calibration: str | os.PathLike | None = None, calibration_count: int = 200) -> ValidationResult:
    """Evaluate `model` ('arch' or 'arch.tag') on the labelled images at `data`, once per input size.

    `model` may also be an exported file (.onnx, .pt2): its preprocessing and classes are read from it.

    Args:
        pretrained / checkpoint_path: the weights (the tag's published ones, or a local file); one is needed.
        img_sizes: sizes to evaluate at (default: the tag's size, its test size with `use_test_size`).
        crop_pct: the centre crop for every size (default: per size, that of the tag's published result).
        labels_file: 'filename,label' lines for a flat folder of images.
        workers: decoding processes per rank (default: the CPUs shared by the ranks, at most 8).
        amp: 'bf16' or 'fp16' autocast. device: 'cpu', 'cuda', 'cuda:N' (default: cuda if there is one).
        limit: evaluate this many images, spread over the data. strict: stop at the first unreadable image.
        progress: a bar (terminal) or log lines on stderr. on_row: called with each size's row when done.
        distributed: this process's place in a torchrun launch (from `evaluation.init_distributed`).
        backend: one of visionzoo.deploy.runners.BACKENDS: the model deployed that way is evaluated next to
            eager on the same images (two rows per size: eager's, then the backend's with its top-1
            agreement). calibration / calibration_count: the int8 backend's calibration images.

    Raises:
        UserError (DataError, InputSizeError, ...): bad data, a size the model cannot take, unreadable data.
        UnknownModelError, CheckpointError: the model or its weights.
    """
    if is_artifact(model):
        if pretrained or checkpoint_path is not None:
            raise UserError(f"{model} is an exported file with its weights inside: drop pretrained / "
                            "checkpoint_path")
        return _validate_artifact(model, data, labels_file, batch_size, workers or 0, limit, strict, on_row)
    if pretrained == (checkpoint_path is not None):
        raise UserError("give the weights to validate: pretrained=True or checkpoint_path=..., not both")
    check_backend(backend, "int8" if backend == "int8" else "fp32")
    if backend == "int8" and calibration is None:
        raise UserError("the int8 backend calibrates on images: give calibration=DIR (--calibration), images "
                        "apart from the evaluated ones")
    if crop_pct is not None and not 0 < crop_pct <= 4:
        raise UserError(f"crop_pct must be in (0, 4], got {crop_pct}")
    if workers is not None and workers < 0:
        raise UserError(f"workers must be 0 or more, got {workers}")
    if amp is not None and amp not in LOW_PRECISIONS:
        raise UserError(f"amp must be one of {', '.join(LOW_PRECISIONS)}, got {amp!r}")
    context = distributed or DistributedContext()
    if backend != "eager" and context.world_size > 1:
        raise UserError(f"the {backend} backend is validated in one process (not under torchrun)")
    target = resolve_device(device, context.local_rank)
    if backend != "eager" and target.type != "cpu":
        raise UserError(f"the {backend} backend runs on the CPU: add device='cpu' (--device cpu)")
    weights = "pretrained" if pretrained else str(checkpoint_path)

    with torch.device("meta"):  # the architecture's classes, cfg and size rules, without reading weights
        blueprint = create_model(model)
        sizes = evaluation_sizes(blueprint, img_sizes, use_test_size)
        for size in sizes:  # before reading any weights
            try:
                probe = create_model(model, img_size=size)
            except UserError:
                raise
            except ValueError as error:  # a family's config refusing the size
                raise InputSizeError(f"{model} cannot be built for {size}x{size} inputs ({error})") from None
            probe.check_img_size(size, name=model)
    cfg = blueprint.pretrained_cfg
    reported = reported_results(cfg, model, pretrained)
    tag = cfg.tag if cfg is not None and (pretrained or split_name(model)[1] is not None) else None
    dataset = create_dataset(data, num_classes=blueprint.num_classes, labels_file=labels_file)
    indices = subset_indices(len(dataset), limit)
    workers = default_workers(context.world_size) if workers is None else workers

    def fail_strict(index: int, error: str) -> None:
        if strict:
            raise DataError(f"unreadable image {dataset.name(index)}: {error} "
                            "(without strict / --strict it is skipped)")

    rows, bad_images = [], {}
    built_size, net = None, None
    for size in sizes:
        # A fixed-size model (ViT) is rebuilt for each size it is evaluated at; any other is loaded once.
        wanted = size if blueprint.fixed_input_size and blueprint.default_img_size != (size, size) else None
        if net is None or wanted != built_size:
            net = None  # free the previous size's weights before reading the next
            net = create_model(model, pretrained=pretrained, checkpoint_path=checkpoint_path, img_size=wanted)
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
                              on_batch=bar.update, on_failure=fail_strict)
        finally:
            bar.close()
        for index, error in result.failures:
            bad_images[index] = {"image": dataset.name(index), "error": error}
        if result.count == 0:
            first = next(iter(bad_images.values()), None)
            raise DataError(f"no image in {data} could be read ({len(result.failures)} unreadable"
                            + (f", e.g. {first['image']}: {first['error']}" if first else "") + ")")
        size_rows = [_row(model, tag, weights, size, config, result, reported)]
        if backend != "eager":
            runner = build_runner(backend, net, size, calibration=calibration,
                                  calibration_count=calibration_count)
            deployed = PredictionRecorder(runner)
            deployed_result = evaluate(deployed, loader, config, target)
            agree = agreement(eager.predictions(), deployed.predictions())
            size_rows.append(dataclasses.replace(
                _row(model, tag, weights, size, config, deployed_result, reported), backend=runner.backend,
                top1_agreement=_round(agree, 4)))
        for row in size_rows:
            rows.append(row)
            if on_row is not None and context.is_main:
                on_row(row)
    return ValidationResult(model, weights, os.fspath(data), tuple(rows),
                            tuple(bad_images[i] for i in sorted(bad_images)))


def _validate_artifact(path: str | os.PathLike, data: str | os.PathLike, labels_file, batch_size: int,
                       workers: int, limit: int | None, strict: bool,
                       on_row: Callable[[ValidationRow], None] | None) -> ValidationResult:
    """An exported file on the labelled set, preprocessed as its metadata says: one row."""
    runner, metadata = load_runner(path)
    config = metadata.data_config()
    dataset = create_dataset(data, num_classes=metadata.num_classes, labels_file=labels_file)
    loader = create_loader(dataset.with_transform(create_transform(config, normalize=False)), batch_size,
                           workers, subset_indices(len(dataset), limit))

    def fail_strict(index: int, error: str) -> None:
        if strict:
            raise DataError(f"unreadable image {dataset.name(index)}: {error} "
                            "(without strict / --strict it is skipped)")

    result = evaluate(runner, loader, config, torch.device("cpu"), on_failure=fail_strict)
    bad_images = tuple({"image": dataset.name(i), "error": e} for i, e in sorted(result.failures))
    if result.count == 0:
        raise DataError(f"no image in {data} could be read ({len(result.failures)} unreadable)")
    row = dataclasses.replace(_row("x", None, metadata.source, metadata.img_size[0], config, result, {}),
                              model=os.fspath(path), backend=runner.backend)
    if on_row is not None:
        on_row(row)
    return ValidationResult(os.fspath(path), metadata.source, os.fspath(data), (row,), bad_images)


def format_row(row: ValidationRow) -> str:
    """One line: the size, its preprocessing, top-1/top-5/loss, and the published figures where known."""
    name = f"{row.model}.{row.tag}" if row.tag else row.model
    if row.backend != "eager":
        name += f" [{row.backend}]"
    line = (f"{name} @ {row.img_size} (crop_pct {row.crop_pct}, {row.interpolation}): "
            f"top1 {row.top1:.3f}  top5 {row.top5:.3f}  loss {row.loss:.4f}  "
            f"on {row.count} images, {row.images_per_sec} img/s")
    if row.bad_images:
        line += f", {row.bad_images} unreadable skipped"
    if row.top1_agreement is not None:
        line += f"; top-1 agreement with eager {row.top1_agreement:.2f}%"
    if row.reported_top1 is not None:
        line += (f"; reported top1 {row.reported_top1:.3f} ({row.top1_diff:+.3f}) "
                 f"top5 {row.reported_top5:.3f} ({row.top5_diff:+.3f})")
    return line


def write_results(path: str | os.PathLike, result: ValidationResult) -> None:
    """JSON: {model, weights, data, results: [row per size], bad_images: [{image, error}]}; CSV: one row per
    size, the unreadable images joined in the last column."""
    target = Path(path)
    if target.suffix not in (".json", ".csv"):
        raise UserError(f"results file must end in .json or .csv, got {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".csv":
        with target.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=[*RESULT_FIELDS, "bad_image_list"])
            writer.writeheader()
            listing = "; ".join(item["image"] for item in result.bad_images)
            for row in result.rows:
                writer.writerow({**row.to_dict(), "bad_image_list": listing})
        return
    target.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
