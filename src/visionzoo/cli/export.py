"""`visionzoo export MODEL[.TAG]|FOLDER [--pretrained | --checkpoint PATH] --format onnx|pt2|aoti
--output FILE`.

Writes the artifact, then (unless --no-verify) runs it on real photos and random batches against the eager
model and prints the figures; exit status 1 if they are beyond the tolerance.
"""

from __future__ import annotations

import argparse

from .options import MODEL_HELP, add_weights_arguments, use_pretrained

FORMATS = ("onnx", "pt2", "aoti")  # kept equal to visionzoo.deploy.export.FORMATS (a test checks)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL[.TAG]|FOLDER", help=MODEL_HELP)
    add_weights_arguments(parser)
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="onnx (onnxruntime), pt2 (torch.export.save) or aoti (AOTInductor package)")
    parser.add_argument("--output", "-o", required=True, metavar="FILE",
                        help="where to write (.onnx or .pt2)")
    parser.add_argument("--img-size", type=_positive, metavar="N",
                        help="input size (default: the tag's, or the model folder's)")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=_positive, default=1, metavar="N",
                       help="fixed batch size (default 1)")
    batch.add_argument("--dynamic-batch", action="store_true", help="any batch size (1 to 4096)")
    parser.add_argument("--opset", type=_positive, default=None, metavar="N",
                        help="ONNX opset (default 18: fully covered by onnxruntime's CPU kernels)")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with the eager model")


def run(args: argparse.Namespace) -> int:
    from ..deploy.export import DEFAULT_OPSET, ExportError, ExportSpec, export_model, load_exported
    from ..deploy.optimize import default_img_size
    from ..deploy.verify import compare, verification_inputs
    from ..errors import UserError
    from ..factory import create_model

    if args.opset is not None and args.format != "onnx":
        raise UserError(f"--opset applies to ONNX only, not to --format {args.format}")
    if args.format == "onnx" and not args.output.endswith(".onnx"):
        raise UserError(f"--output {args.output}: name an ONNX file .onnx")
    if args.format in ("pt2", "aoti") and not args.output.endswith(".pt2"):
        raise UserError(f"--output {args.output}: name a {args.format} file .pt2")
    # a fixed-size model is built at the export size (its position embedding resampled on load)
    pretrained = use_pretrained(args.model, args.pretrained, args.checkpoint)
    model = create_model(args.model, pretrained=pretrained, checkpoint_path=args.checkpoint,
                         img_size=args.img_size).eval()
    img_size = (args.img_size, args.img_size) if args.img_size else default_img_size(model)
    spec = ExportSpec(args.format, img_size, batch_size=args.batch_size, dynamic_batch=args.dynamic_batch,
                      opset=args.opset or DEFAULT_OPSET, in_chans=model.config.in_chans)
    try:
        path = export_model(model, spec, args.output)
    except ExportError as error:
        raise UserError(str(error)) from None
    batch = "dynamic batch" if spec.dynamic_batch else f"batch {spec.batch_size}"
    side_file = path.with_name(path.name + ".data")
    weights = f"; weights in {side_file}" if args.format == "onnx" and side_file.is_file() else ""
    print(f"wrote {path} ({args.format}, {img_size[0]}x{img_size[1]}, {batch}{weights})")
    if args.no_verify:
        return 0
    try:
        run_artifact = load_exported(path, args.format)
    except ExportError as error:
        raise UserError(f"{error} (or pass --no-verify)") from None
    inputs = verification_inputs(model, img_size, spec.in_chans,
                                 fixed_batch=None if spec.dynamic_batch else spec.batch_size)
    verification = compare(model, run_artifact, inputs)
    print("\n".join(verification.lines()))
    return 0 if verification.passed else 1
