"""Entry point of the `visionzoo` command: dispatches to one module per command.

Each command module defines `add_arguments(parser)` without importing torch, and imports the library in
`run(args) -> int`; so the parser, `--help` and argument errors need no heavy import.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import Interrupted, VisionzooError
from .options import flag

# command name -> summary; the module visionzoo.cli.<name> has add_arguments(parser) and run(args) -> int
COMMANDS = {
    "models": "List architectures or pretrained tags with their parameter counts.",
    "validate": "Top-1/top-5 of a model on a labelled image set, at one or more input sizes.",
    "predict": "The top-K classes a model sees in images.",
    "benchmark": "Measure speed, latency, memory and GMACs of models, per batch size and precision.",
    "export": "Export a model to ONNX, torch.export (pt2) or AOTInductor, verified against the eager model.",
    "quantize": "Quantize a model to int8 (ONNX or pt2), calibrated, verified, with its top-1 drop measured.",
    "publish": "Write a run's or a model's folder (config.json, weights, model card); optionally push it.",
    "shard": "Write a labelled image set as webdataset shards (tar) plus their index.",
    "train": "Train or fine-tune a model on labelled images; one process or torchrun, resumable exactly.",
    "report": "Regenerate the metrics page (docs/metrics/2024.md) and its plots from the tag data.",
    "recipes": "Training recipes of the published tags, with their sources; --show prints one as YAML.",
}


def _command_module(name: str):
    return importlib.import_module(f"visionzoo.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (imports the command modules, not the library)."""
    parser = argparse.ArgumentParser(prog="visionzoo",
                                     description="Image-classification models and their weights.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        _command_module(name).add_arguments(subparsers.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a VisionzooError (a problem with the input) is one line on stderr, exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return _command_module(args.command).run(args)
    except VisionzooError as error:  # the message names arguments by their flags here
        print(f"visionzoo {args.command}: error: {error.naming(flag)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as interrupted:  # Ctrl-C: one line (what was kept), the shell's status for it
        if not isinstance(interrupted, Interrupted):
            print(f"visionzoo {args.command}: interrupted", file=sys.stderr)
        elif interrupted.shown:
            print(f"visionzoo {args.command}: {interrupted.naming(flag)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
