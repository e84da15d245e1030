"""`visionzoo shard`: write a labelled image set as webdataset shards plus their index.

    visionzoo shard imagenet/train --output shards/train --shard-size 1250 --workers 8
    visionzoo validate --model resnet50d.a1_in1k --pretrained --data 'shards/val/shard-{000000..000049}.tar'

The shards read back as the same dataset (same images, labels and order) wherever `--data` is accepted,
from a local folder or a URL; the index keeps the class names.
"""

from __future__ import annotations

import argparse
import os
import sys

from .options import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC",
                        help="the images: class folders, a folder with labels.csv, a labels file, a Hugging "
                             "Face save_to_disk folder, or parquet (folder, file or glob)")
    parser.add_argument("--output", required=True, metavar="DIR", help="a new or empty folder for the shards")
    parser.add_argument("--labels", metavar="FILE", help="'filename,label' lines for a flat folder of images")
    parser.add_argument("--shard-size", type=positive_int, default=1000, metavar="N",
                        help="samples per shard (default: 1000)")
    parser.add_argument("--image-format", choices=("keep", "jpg"), default="keep",
                        help="keep: JPEG/PNG/WebP as they are, other formats as PNG (lossless); "
                             "jpg: re-encode all but JPEGs as JPEG (default: keep)")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="shards written side by side (default: the CPUs, at most 8)")
    parser.add_argument("--prefix", default="shard", help="shard file names: PREFIX-000000.tar, ...")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..data.shards.writer import write_shards

    workers = args.workers or max(1, min(8, len(os.sched_getaffinity(0))))
    with tqdm(unit="img", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        written = write_shards(args.src, args.output, shard_size=args.shard_size,
                               image_format=args.image_format, workers=workers, labels_file=args.labels,
                               prefix=args.prefix, progress=bar.update)
    classes = (f"{len(written.classes)} named classes" if written.classes is not None
               else "labels are class indices")
    first, last = written.shards[0].name, written.shards[-1].name
    pattern = first if len(written.shards) == 1 else \
        f"{args.prefix}-{{{first[-10:-4]}..{last[-10:-4]}}}.tar"
    print(f"wrote {written.samples} samples in {len(written.shards)} shard(s) "
          f"({written.bytes / 2**20:.1f} MiB) "
          f"to {args.output}/{pattern}; {classes}; index {written.index}")
    return 0
