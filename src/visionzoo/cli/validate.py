"""`visionzoo validate`: top-1/top-5 of a model on a labelled image set, at one or more input sizes.

    visionzoo validate --model NAME[.TAG]|FOLDER [--pretrained | --checkpoint PATH] --data PATH \
        [--img-size N ...]
    visionzoo validate ... --eval-set imagenet-a --data imagenet-a/   # the set's layout and label rule
    visionzoo validate --model NAME[.TAG] --pretrained --data PATH --backend int8 --calibration DIR
    visionzoo validate --model model.onnx --data PATH      # an exported file, preprocessed as it records
    torchrun --nproc-per-node 4 -m visionzoo validate ...     # the same result, sharded over 4 processes

Where the tag has a published result on the set at a size, the row shows it and the difference; unless
--crop-pct is given, that size is preprocessed with the crop_pct and interpolation the published figure was
measured with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.eval_sets import EVAL_SETS
from ..runtime import LOW_PRECISIONS
from .options import add_model_arguments, check_exported_file, non_negative_int, positive_int, use_pretrained


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, exported_files=True)
    parser.add_argument("--data", required=True, metavar="PATH",
                        help="class folders named as the model's classes (synsets n01440764/... for "
                             "ImageNet, a fine-tune's own names) or by index, a folder with labels.csv, "
                             "a labels file, a Hugging Face save_to_disk folder, parquet shards "
                             "(folder, file or glob), or webdataset shards (a .tar pattern such as "
                             "'val-{000000..000049}.tar', a list file or a folder; local or URL)")
    parser.add_argument("--labels", metavar="FILE", help="'filename,label' lines for a flat folder of images")
    parser.add_argument("--eval-set", choices=list(EVAL_SETS), metavar="NAME",
                        help="the named set --data is, scored by its own label rule and compared with its "
                             f"published figures: {', '.join(EVAL_SETS)} (default: labelled images of "
                             "any layout, compared with the ImageNet figures)")
    parser.add_argument("--no-class-subset", dest="class_subset", action="store_false",
                        help="imagenet-a/-r: score all 1000 classes instead of the set's 200 "
                             "(no published figure compares)")
    parser.add_argument("--per-class", metavar="FILE.csv",
                        help="write per-class accuracy and image counts as CSV")
    parser.add_argument("--img-size", type=positive_int, nargs="+", metavar="N",
                        help="input sizes to evaluate at, one result each (default: the tag's)")
    parser.add_argument("--crop-pct", type=float, metavar="F",
                        help="fraction of the resized image kept by the centre crop (default: the tag's)")
    parser.add_argument("--use-test-size", action="store_true",
                        help="without --img-size: the tag's test_input_size (and test_crop_pct) "
                             "where it has one")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N")
    parser.add_argument("--workers", type=non_negative_int, default=None, metavar="N",
                        help="decoding processes per rank "
                             "(default: the CPUs, shared by the ranks, at most 8)")
    parser.add_argument("--amp", choices=LOW_PRECISIONS, help="autocast the forward pass to this dtype")
    parser.add_argument("--channels-last", action="store_true", help="NHWC memory format")
    parser.add_argument("--limit", type=positive_int, metavar="N",
                        help="evaluate N images spread over the data")
    parser.add_argument("--results-file", metavar="FILE",
                        help="write the results as JSON (.json) or CSV (.csv)")
    parser.add_argument("--results-format", choices=("visionzoo", "reference"), default="visionzoo",
                        help="reference: a CSV in the reference project's results columns (model, top1, "
                             "top1_err, top5, top5_err, param_count, img_size, crop_pct, interpolation)")
    parser.add_argument("--strict", action="store_true", help="stop at the first unreadable image")
    parser.add_argument("--backend", default="eager", metavar="BACKEND",
                        help="eager, optimized, compile, onnxruntime, pt2 or int8: the model deployed that "
                             "way, next to eager on the same images, with their top-1 agreement (CPU)")
    parser.add_argument("--calibration", metavar="DIR",
                        help="--backend int8: images to calibrate on (apart from --data)")
    parser.add_argument("--calibration-count", type=positive_int, default=200, metavar="N",
                        help="calibration images used (default 200, spread over the folder)")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..files import check_writable
    from ..runtime import close_distributed, init_distributed, resolve_device
    from ..validation import format_row, validate, write_per_class, write_results

    if args.results_file and Path(args.results_file).suffix not in (".json", ".csv"):
        raise UserError(f"--results-file must end in .json or .csv, got {args.results_file}")
    reference_format = args.results_format == "reference"
    if reference_format and not (args.results_file or "").endswith(".csv"):
        raise UserError("--results-format reference writes CSV: give --results-file FILE.csv")
    if args.per_class and not args.per_class.endswith(".csv"):
        raise UserError(f"--per-class writes CSV: name the file .csv, not {args.per_class}")
    for path, what in ((args.results_file, "results file"), (args.per_class, "per-class file")):
        if path:
            check_writable(path, what)  # before the evaluation, not after it
    if args.crop_pct is not None and not 0 < args.crop_pct <= 4:
        raise UserError(f"--crop-pct must be in (0, 4], got {args.crop_pct}")
    exported = check_exported_file(args)
    pretrained = False if exported else use_pretrained(args.model, args.pretrained, args.checkpoint)
    context = init_distributed(resolve_device(args.device).type)
    try:
        result = validate(args.model, args.data, pretrained=pretrained, checkpoint_path=args.checkpoint,
                          img_sizes=args.img_size, crop_pct=args.crop_pct, use_test_size=args.use_test_size,
                          labels_file=args.labels, batch_size=args.batch_size, workers=args.workers,
                          amp=args.amp, channels_last=args.channels_last, device=args.device,
                          limit=args.limit, strict=args.strict, progress=True, distributed=context,
                          on_row=lambda row: print(format_row(row), flush=True), eval_set=args.eval_set,
                          class_subset=args.class_subset, per_class=args.per_class is not None,
                          backend=args.backend, calibration=args.calibration,
                          calibration_count=args.calibration_count)
    finally:
        close_distributed()
    if context.is_main:
        bad = result.bad_images
        if bad:
            shown = "; ".join(f"{b['image']} ({b['error']})" for b in bad[:10])
            more = f"; ... {len(bad) - 10} more" if len(bad) > 10 else ""
            print(f"skipped {len(bad)} unreadable image(s): {shown}{more}", file=sys.stderr)
        if args.results_file:
            write_results(args.results_file, result, reference_format=reference_format)
        if args.per_class:
            write_per_class(args.per_class, result)
    return 0
