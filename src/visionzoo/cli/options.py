"""Argument types and options shared by the commands, and the table printer.

Nothing here imports torch: every command's arguments are defined without it, so that `visionzoo --help`
and argument errors answer at once. The commands import the library in their `run`.
"""

from __future__ import annotations

import argparse

from ..errors import UserError


def _int_at_least(minimum: int, text: str, meaning: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise argparse.ArgumentTypeError(f"must be {meaning}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    return _int_at_least(1, text, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer of 0 or more."""
    return _int_at_least(0, text, "0 or more")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """--device cpu|cuda[:N] (parsed by `visionzoo.runtime.resolve_device` when the command runs)."""
    parser.add_argument("--device", default=None, metavar="cpu|cuda[:N]",
                        help="where the model runs (default: cuda if available, else cpu)")


def add_model_arguments(parser: argparse.ArgumentParser, exported_files: bool = False) -> None:
    """--model NAME[.TAG] (--pretrained | --checkpoint PATH) [--device cpu|cuda[:N]].

    `exported_files`: --model may also name an exported .onnx/.pt2 file, which needs no weights option (the
    command checks that one is given otherwise)."""
    parser.add_argument("--model", required=True, metavar="NAME[.TAG]",
                        help="architecture, optionally with its pretrained tag "
                             "(a bare name means its default tag)"
                             + ("; or an exported model.onnx / model.pt2 (preprocessing and classes read "
                                "from it)" if exported_files else ""))
    weights = parser.add_mutually_exclusive_group(required=not exported_files)
    weights.add_argument("--pretrained", action="store_true",
                         help="the tag's published weights (Hugging Face cache, or downloaded)")
    weights.add_argument("--checkpoint", metavar="PATH", help="weights from a local .safetensors/.pth file")
    add_device_argument(parser)


def check_weights_given(args: argparse.Namespace) -> None:
    """For commands whose --model may be an exported file: an architecture needs --pretrained/--checkpoint."""
    exported = args.model.lower().endswith((".onnx", ".pt2"))
    if exported and (args.pretrained or args.checkpoint):
        raise UserError(f"--model {args.model} is an exported file with its weights inside: drop "
                        "--pretrained/--checkpoint")
    if not exported and not (args.pretrained or args.checkpoint):
        raise UserError(f"--model {args.model} needs its weights: --pretrained or --checkpoint PATH")


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
