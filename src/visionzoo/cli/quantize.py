"""`visionzoo quantize MODEL[.TAG] (--pretrained | --checkpoint PATH) --calibration DIR --output FILE`.

Static int8 through maintained engines: onnxruntime's QDQ quantizer (--format onnx, the default) or torchao's
PT2E X86InductorQuantizer (--format pt2). Prints what stayed in float and why, the calibration method, the
reduce-range choice for this CPU, the agreement with fp32 on the shipped photos and the calibration images,
and with --val-data the top-1 drop. Exit status 1 (nothing written) when verification fails or the drop is
beyond --max-drop.
"""

from __future__ import annotations

import argparse

from .options import positive_int


def _points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be top-1 points between 0 and 100, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL[.TAG]",
                        help="architecture, optionally with its pretrained tag")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--pretrained", action="store_true", help="the tag's published weights")
    weights.add_argument("--checkpoint", metavar="PATH", help="weights from a local .safetensors/.pth file")
    parser.add_argument("--calibration", required=True, metavar="DIR",
                        help="images to calibrate on (searched recursively), apart from any --val-data")
    parser.add_argument("--calibration-count", type=positive_int, default=200, metavar="N",
                        help="calibration images used, spread over the folder (default 200)")
    parser.add_argument("--output", "-o", required=True, metavar="FILE",
                        help="where to write (.onnx or .pt2)")
    parser.add_argument("--format", default="onnx", metavar="onnx|pt2",
                        help="onnx (onnxruntime static QDQ, default) or pt2 (torchao PT2E, for "
                             "torch.compile)")
    parser.add_argument("--img-size", type=positive_int, metavar="N", help="input size (default: the tag's)")
    parser.add_argument("--batch-size", type=positive_int, metavar="N",
                        help="a fixed batch size (default: any batch size)")
    parser.add_argument("--val-data", metavar="DIR", help="a labelled set: measure the top-1 drop on it")
    parser.add_argument("--val-limit", type=positive_int, metavar="N", help="use N images of --val-data")
    parser.add_argument("--max-drop", type=_points, metavar="POINTS",
                        help="refuse to write if top-1 on --val-data drops by more (exit status 1)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the agreement check with fp32 on the photos and calibration images")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..deploy.export import check_export_size, check_output_path
    from ..deploy.quantize import QUANTIZE_FORMATS, AccuracyDrop, QuantizationError, quantize_model
    from ..deploy.verify import Verification
    from ..errors import UserError
    from ..factory import create_model

    if args.format not in QUANTIZE_FORMATS:
        raise UserError(f"--format {args.format}: int8 is written as {' or '.join(QUANTIZE_FORMATS)}")
    if args.max_drop is not None and not args.val_data:
        raise UserError("--max-drop needs --val-data: the drop is measured on a labelled set")
    check_output_path(args.output, args.format)  # before any work
    if args.img_size is not None:
        check_export_size(args.model, args.img_size)
    model = create_model(args.model, pretrained=args.pretrained, checkpoint_path=args.checkpoint,
                         img_size=args.img_size).eval()
    try:
        result = quantize_model(model, args.output, args.calibration, args.format,
                                calibration_count=args.calibration_count, img_size=args.img_size,
                                batch_size=args.batch_size, verify=not args.no_verify, val_data=args.val_data,
                                max_drop=args.max_drop, source=None if args.pretrained else args.checkpoint,
                                val_limit=args.val_limit)
    except QuantizationError as error:
        if isinstance(error.detail, Verification):
            print("\n".join(error.detail.lines()))
        elif isinstance(error.detail, AccuracyDrop):
            print(error.detail.line())
        print(f"not written: {error}")
        return 1
    q = result.metadata.quantization
    size = result.metadata.img_size
    print(f"wrote {result.path} (int8 {args.format}, {size[0]}x{size[1]}, "
          f"{'any batch' if args.batch_size is None else f'batch {args.batch_size}'})")
    print(f"engine: {q.engine}; calibration: {q.calibration_method} on {q.calibration_images} images; "
          f"weights per-channel; reduce_range {'on' if q.reduce_range else 'off'}: {q.reduce_range_reason}")
    print("kept in float: " + ("; ".join(q.float_ops) or "nothing"))
    if result.verification is not None:
        print("\n".join(result.verification.lines()))
    if result.accuracy is not None:
        print(result.accuracy.line())
    if result.speedup is not None:
        threads = torch.get_num_threads()
        where = f"onnxruntime on this CPU, {threads} thread(s), batch {args.batch_size or 1}"
        if result.speedup < 1:
            print(f"speed: int8 is SLOWER than fp32 here ({result.speedup:.2f}x, {where}): for speed, keep "
                  "this model in fp32 on this CPU")
        else:
            print(f"speed: int8 is {result.speedup:.2f}x fp32 ({where})")
    return 0
