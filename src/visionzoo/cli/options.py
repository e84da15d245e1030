"""Argument types and options shared by the commands, and the table printer.

Nothing here imports torch: every command's arguments are defined without it, so that `visionzoo --help`
and argument errors answer at once. The commands import the library in their `run`.
"""

from __future__ import annotations

import argparse

from ..errors import UserError

# The library's messages name arguments and options as `{name}` (`visionzoo.errors`); the command line shows
# the flag instead: the name with dashes, except for these Python arguments, whose flags are shorter.
ARGUMENT_FLAGS = {
    "checkpoint_path": "--checkpoint",
    "labels_file": "--labels",
    "img_sizes": "--img-size",
    "drop_rate": "--drop",
    "drop_path_rate": "--drop-path",
    "plots": "--plots",  # only ever switched off: {plots=False} is --no-plots
}


def flag(name: str) -> str:
    """The command-line flag of an argument or option a message names (`{lr_base}` -> `--lr-base`;
    `{strict=True}` -> `--strict`, `{plots=False}` -> `--no-plots`): the one mapping every command uses."""
    name, _, value = name.partition("=")
    text = ARGUMENT_FLAGS.get(name, "--" + name.replace("_", "-"))
    return "--no-" + text[2:] if value == "False" else text


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


MODEL_HELP = ("architecture, optionally with its pretrained tag (a bare name means its default tag), or a "
              "model folder: a folder path, local-dir:PATH or hf-hub:ORG/NAME")


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """(--pretrained | --checkpoint PATH); a model folder brings its own weights (see `use_pretrained`)."""
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--pretrained", action="store_true",
                         help="the tag's published weights (Hugging Face cache, or downloaded); "
                              "implied for a model folder")
    weights.add_argument("--checkpoint", metavar="PATH", help="weights from a local .safetensors/.pth file")


EXPORTED_SUFFIXES = (".onnx", ".pt2")  # visionzoo.deploy.metadata.ARTIFACT_SUFFIXES, without importing torch


def add_model_arguments(parser: argparse.ArgumentParser, exported_files: bool = False) -> None:
    """--model NAME[.TAG]|FOLDER [--pretrained | --checkpoint PATH] [--device cpu|cuda[:N]].

    `exported_files`: --model may also name an exported .onnx/.pt2 file (see `check_exported_file`)."""
    extra = "; or an exported model.onnx / model.pt2 (its preprocessing and classes inside)"
    parser.add_argument("--model", required=True, metavar="NAME[.TAG]|FOLDER",
                        help=MODEL_HELP + (extra if exported_files else ""))
    add_weights_arguments(parser)
    add_device_argument(parser)


def use_pretrained(model: str, pretrained: bool, checkpoint: str | None) -> bool:
    """The `pretrained` argument for the library: as given, or True for a model folder named without
    --checkpoint (it brings its own weights). UserError if a registered name comes with no weights."""
    from ..errors import UserError
    from ..registry import parse_model_name

    if pretrained or checkpoint is not None:
        return pretrained
    if parse_model_name(model)[0] is not None:
        return True
    raise UserError(f"give the weights of {model}: --pretrained (its tag's published weights) or "
                    "--checkpoint PATH, or name a model folder (which holds its weights)")


def check_exported_file(args: argparse.Namespace) -> bool:
    """True if --model names an exported .onnx/.pt2 file (its weights inside: --pretrained/--checkpoint
    refused)."""
    exported = args.model.lower().endswith(EXPORTED_SUFFIXES)
    if exported and (args.pretrained or args.checkpoint):
        raise UserError(f"--model {args.model} is an exported file with its weights inside: drop "
                        "--pretrained/--checkpoint")
    return exported


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, a dashed rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
