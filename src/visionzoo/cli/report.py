"""`visionzoo report`: regenerate the metrics page and its plots from the tag data, offline."""

from __future__ import annotations

import argparse

DEFAULT_OUTPUT = "docs/metrics/2024.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default=DEFAULT_OUTPUT, metavar="FILE.md",
                        help=f"the page to write; plots go next to it (default {DEFAULT_OUTPUT})")
    parser.add_argument("--results", nargs="+", default=[], metavar="FILE",
                        help="your own `visionzoo validate` / `visionzoo benchmark` results (.csv or .json): "
                             "own top-1 next to the reported one, and throughput columns and plot")
    parser.add_argument("--no-plots", action="store_true", help="write the page only (no matplotlib needed)")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..report.page import generate

    if not args.output.endswith(".md"):
        raise UserError(f"--output {args.output}: the page is markdown, name it .md")
    try:
        page = generate(args.output, args.results, plots=not args.no_plots)
    except ImportError as error:  # matplotlib missing: the message says how to install it
        raise UserError(str(error)) from error
    rows = len(page.all_rows)
    plots = f" and {len(page.plots)} plots" if page.plots else ""
    print(f"wrote {args.output}{plots}: {rows} rows, {len(page.corrections)} corrections of the source page"
          + (f"; {len(page.unregistered)} tags not registered in this build" if page.unregistered else ""))
    return 0
