"""`visionzoo validate`: top-1/top-5 of a model on a labelled image set, at one or more input sizes.

    visionzoo validate --model NAME[.TAG] (--pretrained | --checkpoint PATH) --data PATH [--img-size N ...]
    torchrun --nproc-per-node 4 -m visionzoo validate ...     # the same result, sharded over 4 processes

Where the tag has a published result at a size, the row shows it and the difference; unless --crop-pct is
given, that size is preprocessed with the crop_pct and interpolation the published figure was measured with.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import nn

from .main import UserError
from .model_options import add_model_arguments, load_model, resolve_device, weights_label

RESULT_FIELDS = ("model", "tag", "weights", "img_size", "crop_pct", "interpolation", "top1", "top5", "loss",
                 "count", "bad_images", "images_per_sec", "reported_top1", "reported_top5", "top1_diff",
                 "top5_diff")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, metavar="PATH",
                        help="class folders named by synset (n01440764/...), a folder with labels.csv, a labels "
                             "file, a Hugging Face save_to_disk folder, or parquet shards (folder, file or glob)")
    parser.add_argument("--labels", metavar="FILE", help="'filename,label' lines for a flat folder of images")
    parser.add_argument("--img-size", type=_positive_int, nargs="+", metavar="N",
                        help="input sizes to evaluate at, one result each (default: the tag's)")
    parser.add_argument("--crop-pct", type=float, metavar="F",
                        help="fraction of the resized image kept by the centre crop (default: the tag's)")
    parser.add_argument("--use-test-size", action="store_true",
                        help="without --img-size: the tag's test_input_size (and test_crop_pct) where it has one")
    parser.add_argument("--batch-size", type=_positive_int, default=64, metavar="N")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="decoding processes per rank (default: the CPUs, shared by the ranks, at most 8)")
    parser.add_argument("--amp", choices=("bf16", "fp16"), help="autocast the forward pass to this dtype")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate N images spread over the data")
    parser.add_argument("--results-file", metavar="FILE", help="write the results as JSON (.json) or CSV (.csv)")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable image")


def _reported_results(model: nn.Module, args: argparse.Namespace) -> dict:
    """The tag's published results by size, where the evaluated weights are that tag's."""
    from ..registry import split_name

    cfg = model.pretrained_cfg
    explicit_tag = split_name(args.model)[1] is not None
    if cfg is None or not (args.pretrained or explicit_tag):
        return {}
    return {r.img_size: r for r in cfg.results}


def data_config_for_size(model: nn.Module, size: int, crop_pct: float | None, reported: dict):
    """The preprocessing for one evaluation size: --crop-pct if given, else that of the published result at
    this size, else the tag's test crop at its test size, else the tag's crop."""
    from ..data import resolve_data_config

    cfg = model.pretrained_cfg
    interpolation = None
    if crop_pct is None:
        if size in reported:
            crop_pct, interpolation = reported[size].crop_pct, reported[size].interpolation
        elif cfg is not None and cfg.test_input_size is not None and size == cfg.test_input_size[-1]:
            crop_pct = cfg.test_crop_pct
    return resolve_data_config(model, img_size=size, crop_pct=crop_pct, interpolation=interpolation)


def check_size_rules(model: nn.Module, size: int, name: str) -> None:
    """Raise UserError for a size below the model's total stride, or not a multiple of it for a fixed-size
    model (ViT patches). Reads only the architecture: `model` may live on the meta device."""
    stride = model.feature_info[-1].reduction if getattr(model, "feature_info", None) else 1
    if size < stride:  # the last feature map would be under one pixel: the model would see padding only
        raise UserError(f"{name} needs inputs of at least {stride} pixels (its total stride), not {size}; "
                        "choose a larger --img-size")
    if getattr(model, "fixed_input_size", False) and size % stride:
        lower, upper = size // stride * stride, (size // stride + 1) * stride
        raise UserError(f"{name} takes input sizes that are multiples of {stride}, not {size}; "
                        f"try --img-size {upper}" + (f" or {lower}" if lower else ""))


def check_forward(model: nn.Module, size: int, device: torch.device, name: str) -> None:
    """Raise UserError unless one forward pass of a size x size input works."""
    in_chans = getattr(getattr(model, "config", None), "in_chans", 3)
    try:
        with torch.inference_mode():
            model(torch.zeros(1, in_chans, size, size, device=device))
    except (RuntimeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"{name} cannot take {size}x{size} inputs ({reason}); choose another --img-size") from None


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

            self.bar = tqdm(total=total, desc=label, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False)

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


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


def _result_row(args, model, size, config, result, reported) -> dict:
    from ..registry import split_name

    cfg = model.pretrained_cfg
    arch, explicit_tag = split_name(args.model)
    row = {
        "model": arch,
        "tag": cfg.tag if cfg is not None and (args.pretrained or explicit_tag) else None,
        "weights": weights_label(args), "img_size": size, "crop_pct": config.crop_pct,
        "interpolation": config.interpolation, "top1": _round(result.top1, 4), "top5": _round(result.top5, 4),
        "loss": _round(result.loss, 6), "count": result.count, "bad_images": len(result.failures),
        "images_per_sec": _round(result.images_per_second, 1),
        "reported_top1": None, "reported_top5": None, "top1_diff": None, "top5_diff": None,
    }
    figure = reported.get(size)
    if figure is not None:
        row.update(reported_top1=figure.top1, reported_top5=figure.top5,
                   top1_diff=_round(row["top1"] - figure.top1, 4), top5_diff=_round(row["top5"] - figure.top5, 4))
    return row


def format_row(row: dict) -> str:
    name = f"{row['model']}.{row['tag']}" if row["tag"] else row["model"]
    line = (f"{name} @ {row['img_size']} (crop_pct {row['crop_pct']}, {row['interpolation']}): "
            f"top1 {row['top1']:.3f}  top5 {row['top5']:.3f}  loss {row['loss']:.4f}  "
            f"on {row['count']} images, {row['images_per_sec']} img/s")
    if row["bad_images"]:
        line += f", {row['bad_images']} unreadable skipped"
    if row["reported_top1"] is not None:
        line += (f"; reported top1 {row['reported_top1']:.3f} ({row['top1_diff']:+.3f}) "
                 f"top5 {row['reported_top5']:.3f} ({row['top5_diff']:+.3f})")
    return line


def write_results(path: str, args: argparse.Namespace, rows: list[dict], bad_images: list[dict]) -> None:
    """JSON: {model, weights, data, results: [row per size], bad_images: [{image, error}]}; CSV: one row per
    size, the unreadable images joined in the last column."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".csv":
        with target.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=[*RESULT_FIELDS, "bad_image_list"])
            writer.writeheader()
            listing = "; ".join(item["image"] for item in bad_images)
            for row in rows:
                writer.writerow({**row, "bad_image_list": listing})
        return
    document = {"model": args.model, "weights": weights_label(args), "data": args.data, "results": rows,
                "bad_images": bad_images}
    target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _check_arguments(args: argparse.Namespace) -> None:
    if args.results_file and Path(args.results_file).suffix not in (".json", ".csv"):
        raise UserError(f"--results-file must end in .json or .csv, got {args.results_file}")
    if args.crop_pct is not None and not 0 < args.crop_pct <= 4:
        raise UserError(f"--crop-pct must be in (0, 4], got {args.crop_pct}")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")


def _sizes(model: nn.Module, args: argparse.Namespace) -> list[int]:
    """--img-size without repeats, else the tag's size (its test size with --use-test-size)."""
    from ..data import resolve_data_config

    if args.img_size:
        return list(dict.fromkeys(args.img_size))
    cfg = model.pretrained_cfg
    default = resolve_data_config(pretrained_cfg=cfg, use_test_size=args.use_test_size) if cfg is not None \
        else resolve_data_config(model)
    return [default.img_size[0]]


def run(args: argparse.Namespace) -> int:
    from ..evaluation import close_distributed, init_distributed

    _check_arguments(args)
    device_type = resolve_device(args.device).type
    context = init_distributed(device_type)
    try:
        return _validate(args, context)
    finally:
        close_distributed()


def _validate(args: argparse.Namespace, context) -> int:
    from .. import create_model
    from ..data import create_dataset, create_loader, create_transform
    from ..data.loader import default_workers, subset_indices
    from ..evaluation import evaluate

    device = resolve_device(args.device, context.local_rank)
    with torch.device("meta"):  # the architecture's classes, cfg and size rules, without reading weights
        blueprint = create_model(args.model)
    dataset = create_dataset(args.data, num_classes=blueprint.num_classes, labels_file=args.labels)
    indices = subset_indices(len(dataset), args.limit)
    reported = _reported_results(blueprint, args)
    workers = default_workers(context.world_size) if args.workers is None else args.workers

    def fail_strict(index: int, error: str) -> None:
        if args.strict:
            raise UserError(f"unreadable image {dataset.name(index)}: {error} (without --strict it is skipped)")

    rows, bad_images = [], {}
    built_size, model = None, None
    sizes = _sizes(blueprint, args)
    for size in sizes:  # before reading any weights
        check_size_rules(blueprint, size, args.model)
    for size in sizes:
        # A fixed-size model (ViT) is rebuilt for each size it is evaluated at; any other is loaded once.
        fixed = getattr(blueprint, "fixed_input_size", False)
        wanted = size if fixed and blueprint.config.img_size not in (size, (size, size)) else None
        if model is None or wanted != built_size:
            model = None  # free the previous size's weights before reading the next
            model = load_model(args, img_size=wanted).to(device)
            if args.channels_last:
                model = model.to(memory_format=torch.channels_last)
            built_size = wanted
        config = data_config_for_size(model, size, args.crop_pct, reported)
        check_forward(model, size, device, args.model)
        loader = create_loader(dataset.with_transform(create_transform(config, normalize=False)), args.batch_size,
                               workers, indices, context.rank, context.world_size,
                               pin_memory=device.type == "cuda")
        shard = loader.batch_sampler.num_samples()
        label = f"{args.model} @ {size}" + (f" (rank 0 of {context.world_size})" if context.world_size > 1 else "")
        progress = Progress(shard, label, enabled=context.is_main)
        try:
            result = evaluate(model, loader, config, device, amp=args.amp, channels_last=args.channels_last,
                              on_batch=progress.update, on_failure=fail_strict)
        finally:
            progress.close()
        for index, error in result.failures:
            bad_images[index] = {"image": dataset.name(index), "error": error}
        if result.count == 0:
            first = next(iter(bad_images.values()), None)
            raise UserError(f"no image in {args.data} could be read ({len(result.failures)} unreadable"
                            + (f", e.g. {first['image']}: {first['error']}" if first else "") + ")")
        row = _result_row(args, model, size, config, result, reported)
        rows.append(row)
        if context.is_main:
            print(format_row(row), flush=True)
    bad_list = [bad_images[i] for i in sorted(bad_images)]
    if context.is_main:
        if bad_list:
            shown = "; ".join(f"{b['image']} ({b['error']})" for b in bad_list[:10])
            more = f"; ... {len(bad_list) - 10} more" if len(bad_list) > 10 else ""
            print(f"skipped {len(bad_list)} unreadable image(s): {shown}{more}", file=sys.stderr)
        if args.results_file:
            write_results(args.results_file, args, rows, bad_list)
    return 0
