"""`visionzoo benchmark --model PATTERN ...`: speed, latency spread, memory and GMACs per model and
setting; with --backend/--precision the deployed formats (ONNX, pt2, int8), and with real weights and
--val-data each row's top-1 and agreement with eager: one table of accuracy x speed x format."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .options import add_device_argument, format_table, non_negative_int, positive_int

if TYPE_CHECKING:
    import torch

    from ..benchmark import BenchmarkResult

# the backends and precisions are the library's (visionzoo.deploy.runners), checked in `run`: parsing
# imports no torch
BACKEND_HELP = ("eager; optimized (visionzoo.optimize_for_inference); compile (optimized + torch.compile "
                "with freezing); onnxruntime (exported ONNX); pt2 (torch.export program); int8 (int8 ONNX in "
                "onnxruntime). Each non-eager backend is verified against eager first; its setup time is "
                "reported apart")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", nargs="+", required=True, metavar="PATTERN",
                        help="names ('arch' or 'arch.tag'), model folders (a path, local-dir:PATH, "
                             "hf-hub:ORG/NAME) or shell-style wildcards, e.g. 'mobilenetv4_conv_*'")
    parser.add_argument("--img-size", type=positive_int, help="input size (default: each model's tag's size)")
    parser.add_argument("--batch-size", type=positive_int, nargs="+", default=[1, 32], metavar="N",
                        help="one setting per batch size (default: 1 32)")
    parser.add_argument("--precision", nargs="+", default=["fp32"], metavar="fp32|bf16|fp16|int8",
                        help="inference casts model and input; training uses autocast over fp32 weights; "
                             "int8 (static, calibrated) runs in the onnxruntime/int8 backends (onnxruntime "
                             "QDQ) and compile/pt2 (torchao PT2E)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format for model and input")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model (warm-up compiles it)")
    parser.add_argument("--backend", nargs="+", default=["eager"], metavar="BACKEND", help=BACKEND_HELP)
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", action="store_true",
                         help="the tags' published weights (default: random; needed for --val-data)")
    weights.add_argument("--checkpoint", metavar="PATH", help="weights from a local file (one model)")
    parser.add_argument("--val-data", metavar="DIR",
                        help="a labelled set: each row also gets its top-1 and top-1 agreement with eager")
    parser.add_argument("--val-limit", type=positive_int, metavar="N", help="use N images of --val-data")
    parser.add_argument("--calibration", metavar="DIR",
                        help="int8: images to calibrate on (default: the shipped photos, fit for speed only; "
                             "needed with --val-data)")
    parser.add_argument("--train", action="store_true", help="also time a training step (fwd, bwd, SGD step)")
    add_device_argument(parser)
    parser.add_argument("--threads", type=positive_int,
                        help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--warmup", type=non_negative_int, default=5, metavar="N",
                        help="untimed runs first (default 5)")
    parser.add_argument("--runs", type=positive_int, default=20, metavar="N",
                        help="timed runs; figures are their median with the spread (default 20)")
    parser.add_argument("--results-file", metavar="FILE", help="write every result to FILE.csv or FILE.json")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


HEADER = ["model", "size", "batch", "prec", "backend", "format", "params (M)", "GMACs", "infer img/s",
          "latency ms [IQR]", "setup s", "size MB", "top-1", "agree %", "train img/s", "peak MB"]


def result_row(r: BenchmarkResult) -> list[str]:
    """One line of the printed table; a failed setting shows its reason."""
    head = [r.model, str(r.img_size), str(r.batch_size), r.precision, r.backend, r.format,
            _fmt(r.params_m, ".2f"), _fmt(r.gmacs, ".2f")]
    if r.status != "ok":
        return head + [f"FAILED: {r.error}"] + [""] * 7
    latency = f"{r.infer_ms:.2f} [{r.infer_ms_p25:.2f}-{r.infer_ms_p75:.2f}]"
    peak = max(m for m in (r.infer_peak_mem_mb, r.train_peak_mem_mb) if m is not None)
    return head + [_fmt(r.infer_img_per_s, ".1f"), latency, _fmt(r.setup_s, ".1f"),
                   _fmt(r.artifact_mb, ".1f"), _fmt(r.top1, ".2f"), _fmt(r.top1_agreement, ".2f"),
                   _fmt(r.train_img_per_s, ".1f"), f"{peak:.0f}"]


def run(args: argparse.Namespace) -> int:
    import torch

    from ..benchmark import BENCHMARK_PRECISIONS
    from ..deploy.runners import BACKENDS
    from ..errors import UserError
    from ..files import check_writable
    from ..registry import resolve_models
    from ..runtime import resolve_device

    if args.results_file and not args.results_file.lower().endswith((".csv", ".json")):
        raise UserError(f"--results-file {args.results_file}: name the file .csv or .json")
    for backend in args.backend:
        if backend not in BACKENDS:
            raise UserError(f"--backend {backend}: choose from {', '.join(BACKENDS)}")
    for precision in args.precision:
        if precision not in BENCHMARK_PRECISIONS:
            raise UserError(f"--precision {precision}: choose from {', '.join(BENCHMARK_PRECISIONS)}")
    if args.val_data and not (args.pretrained or args.checkpoint):
        raise UserError("--val-data measures accuracy, which needs real weights: add --pretrained or "
                        "--checkpoint PATH")
    if args.val_data and "int8" in args.precision and not args.calibration:
        raise UserError("int8 accuracy needs --calibration DIR (images apart from --val-data)")
    if args.results_file:  # before measuring, not after
        check_writable(args.results_file, "results file")
    device = resolve_device(args.device)
    names = resolve_models(args.model)
    if args.checkpoint and len(names) != 1:
        raise UserError(f"--checkpoint is one model's weights; --model matches {len(names)} models")
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        results = _benchmark_all(names, device, args)
    finally:  # leave the process as it was (the command may run inside another program, or a test)
        torch.set_num_threads(threads)

    print(format_table(HEADER, [result_row(r) for r in results]))
    failed = [r for r in results if r.status != "ok"]
    measure = next((r.memory_measure for r in results if r.memory_measure), "")
    first = results[0]
    where = f"{first.device_name} ({first.cpu_isa}; {first.cpu_features}; native bf16 " \
        f"{'yes' if first.native_bf16 else 'no'}, {first.threads} threads)" if device.type == "cpu" \
        else first.device_name
    print(f"\n{len(results) - len(failed)} of {len(results)} settings measured on {where}; "
          f"median of {args.runs} runs after {args.warmup} warm-up, [IQR] = 25th-75th percentile; "
          f"peak memory: {measure or '-'}" + (f"; wrote {args.results_file}" if args.results_file else ""))
    return 1 if failed else 0


def _progress(result: BenchmarkResult) -> None:
    print("    " + "  ".join(result_row(result)[2:]), file=sys.stderr, flush=True)


def _benchmark_all(names: list[str], device: torch.device, args: argparse.Namespace) -> list[BenchmarkResult]:
    from ..benchmark import Weights, benchmark_model, write_results
    from ..factory import create_model

    weights = Weights(pretrained=args.pretrained, checkpoint_path=args.checkpoint, val_data=args.val_data,
                      val_limit=args.val_limit, calibration=args.calibration)
    results: list[BenchmarkResult] = []
    for index, name in enumerate(names, 1):
        img_size = args.img_size or create_model(name, device="meta").default_img_size[-1]
        print(f"[{index}/{len(names)}] {name} @ {img_size} on {device}", file=sys.stderr, flush=True)
        for backend in args.backend:
            results += benchmark_model(name, img_size, args.batch_size, args.precision, device,
                                       channels_last=args.channels_last, compile=args.compile,
                                       train=args.train, warmup=args.warmup, runs=args.runs,
                                       on_result=_progress, backend=backend, weights=weights)
        if args.results_file:  # after every model, so an interrupted run keeps what it measured
            write_results(args.results_file, results)
    return results
