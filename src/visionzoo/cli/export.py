"""`visionzoo export MODEL[.TAG]|FOLDER [--pretrained | --checkpoint PATH] --format onnx|pt2|aoti
--output FILE`.

The library's `export_model` does the work: it writes under a temporary name, runs the artifact on real
photos and random batches against the eager model (unless --no-verify), and renames it into place only then.
Exit status 1 if the figures are beyond the tolerance (nothing written).
"""

from __future__ import annotations

import argparse

from .options import MODEL_HELP, add_weights_arguments, positive_int, use_pretrained

# the formats are the library's (visionzoo.deploy.export.FORMATS); named here only in the help text, so that
# parsing imports no torch
FORMAT_HELP = "onnx (onnxruntime), pt2 (torch.export.save) or aoti (AOTInductor package)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL[.TAG]|FOLDER", help=MODEL_HELP)
    add_weights_arguments(parser)
    parser.add_argument("--format", required=True, metavar="FORMAT", help=FORMAT_HELP)
    parser.add_argument("--output", "-o", required=True, metavar="FILE",
                        help="where to write (.onnx or .pt2)")
    parser.add_argument("--img-size", type=positive_int, metavar="N",
                        help="input size (default: the tag's, or the model folder's)")
    batch = parser.add_mutually_exclusive_group()
    batch.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                       help="fixed batch size (default 1)")
    batch.add_argument("--dynamic-batch", action="store_true", help="any batch size (1 to 4096)")
    parser.add_argument("--opset", type=positive_int, default=None, metavar="N",
                        help="ONNX opset, 18 or newer (default 18: covered by onnxruntime's CPU kernels)")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with the eager model")


def run(args: argparse.Namespace) -> int:
    from ..deploy.export import FORMATS, check_export_size, check_opset, check_output_path, export_model
    from ..deploy.verify import VerificationError
    from ..errors import UserError
    from ..factory import create_model

    if args.format not in FORMATS:
        raise UserError(f"--format {args.format}: choose one of {', '.join(FORMATS)}")
    if args.opset is not None and args.format != "onnx":
        raise UserError(f"--opset applies to ONNX only, not to --format {args.format}")
    # before reading any weights: the path, the opset, the size
    check_output_path(args.output, args.format)
    if args.opset is not None:
        check_opset(args.opset)
    if args.img_size is not None:
        check_export_size(args.model, args.img_size)
    # a fixed-size model is built at the export size (its position embedding resampled on load)
    pretrained = use_pretrained(args.model, args.pretrained, args.checkpoint)
    model = create_model(args.model, pretrained=pretrained, checkpoint_path=args.checkpoint,
                         img_size=args.img_size).eval()
    source = str(args.checkpoint) if args.checkpoint else None
    try:
        result = export_model(model, args.output, args.format, img_size=args.img_size,
                              batch_size=args.batch_size, dynamic_batch=args.dynamic_batch, opset=args.opset,
                              verify=not args.no_verify, source=source)
    except VerificationError as error:
        if error.verification is not None:
            print("\n".join(error.verification.lines()))
        print(f"not written: {error}")
        return 1
    meta = result.metadata
    batch = "dynamic batch" if args.dynamic_batch else f"batch {args.batch_size}"
    weights = f"; weights in {result.side_file}" if result.side_file is not None else ""
    print(f"wrote {result.path} ({args.format}, {meta.img_size[0]}x{meta.img_size[1]}, {batch}{weights}; "
          f"preprocessing and {meta.num_classes} class names recorded)")
    if result.verification is not None:
        print("\n".join(result.verification.lines()))
    return 0
