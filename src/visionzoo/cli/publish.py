"""`visionzoo publish RUN_DIR|MODEL[.TAG] --output DIR [--results FILE ...] [--push ORG/NAME]`: a model
folder with its model card, optionally uploaded to the Hugging Face Hub.

    visionzoo validate --model runs/digits/best --data digits/val --results-file val.json
    visionzoo publish runs/digits --output digits-model --results val.json --push me/digits-byobnet
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_DIR|MODEL[.TAG]",
                        help="a `visionzoo train` run folder (its best/ weights, else last/), an arch.tag "
                             "(its published weights), or a model folder")
    parser.add_argument("--output", "-o", required=True, metavar="DIR",
                        help="the model folder to write: config.json, model.safetensors, README.md")
    parser.add_argument("--checkpoint", metavar="PATH", help="other weights for MODEL (a .safetensors/.pth)")
    parser.add_argument("--results", nargs="+", default=[], metavar="FILE",
                        help="JSON results files of `visionzoo validate --results-file`, for the card")
    parser.add_argument("--dataset", metavar="NAME",
                        help="the name of the evaluation data on the card (default: its folder's name)")
    parser.add_argument("--license", metavar="ID", help="the card's licence (default: the weights' tag's)")
    parser.add_argument("--push", metavar="ORG/NAME",
                        help="upload the folder to this Hugging Face Hub repository (needs a token)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output folder")


def run(args: argparse.Namespace) -> int:
    from ..publish import publish

    published = publish(args.source, args.output, checkpoint=args.checkpoint, results=args.results,
                        dataset=args.dataset, license=args.license, push=args.push, overwrite=args.overwrite)
    print(f"wrote {published.folder}")
    if published.url:
        print(f"pushed to {published.url}")
    return 0
