"""Entry point of the `visionzoo` command: dispatches to one module per command."""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> module under visionzoo.cli; each module has add_arguments(parser) and run(args) -> int
COMMANDS = {
    "models": "List architectures or pretrained tags with their parameter counts.",
    "validate": "Top-1/top-5 of a model on a labelled image set, at one or more input sizes.",
    "predict": "The top-K classes a model sees in images.",
    "benchmark": "Measure speed, latency, memory and GMACs of models, per batch size and precision.",
    "train": "Train or fine-tune a model on labelled images; one process or torchrun, resumable exactly.",
    "report": "Regenerate the metrics page (docs/metrics/2024.md) and its plots from the tag data.",
}


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visionzoo", description="Image-classification models and their weights.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"visionzoo.cli.{name}")
        module.add_arguments(subparsers.add_parser(name, help=summary, description=summary))
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..registry import UnknownModelError
    from ..weights import CheckpointError

    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"visionzoo.cli.{args.command}")
    try:
        return module.run(args)
    except (UserError, UnknownModelError, CheckpointError, FileNotFoundError, ValueError, TypeError) as error:
        print(f"visionzoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
