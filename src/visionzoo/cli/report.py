"""`visionzoo report`: regenerate the metrics page and its plots, or the HTML explorer, from the tag data,
offline."""

from __future__ import annotations

import argparse

DEFAULT_OUTPUT = "docs/metrics/2024.md"
DEFAULT_HTML_OUTPUT = "docs/metrics/2024.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--html", action="store_true",
                        help="write the metrics explorer instead: one self-contained HTML page (no server, "
                             "no network) with every registered tag, a sortable table and a plot "
                             f"(default output {DEFAULT_HTML_OUTPUT})")
    parser.add_argument("--output", "-o", default=None, metavar="FILE",
                        help=f"the page to write; plots go next to it (default {DEFAULT_OUTPUT}, "
                             f"with --html {DEFAULT_HTML_OUTPUT})")
    parser.add_argument("--results", nargs="+", default=[], metavar="FILE",
                        help="your own `visionzoo validate` / `visionzoo benchmark` results (.csv or .json): "
                             "own top-1 next to the reported one, and throughput columns and plot")
    parser.add_argument("--no-plots", action="store_true",
                        help="write the markdown page only (no matplotlib needed; the explorer needs none)")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..report.explorer import generate_html
    from ..report.page import generate

    if args.html:
        output = args.output or DEFAULT_HTML_OUTPUT
        if not output.endswith(".html"):
            raise UserError(f"--output {output}: the explorer is an HTML page, name it .html")
        explorer = generate_html(output, args.results)
        yours = sum(c.group == "yours" for c in explorer.columns)
        print(f"wrote {output}: {len(explorer.entries)} tags"
              + (f", {yours} columns of your measurements" if yours else "")
              + (f"; {len(explorer.unregistered)} tags not registered in this build"
                 if explorer.unregistered else ""))
        return 0
    output = args.output or DEFAULT_OUTPUT
    if not output.endswith(".md"):
        raise UserError(f"--output {output}: the page is markdown, name it .md (or pass --html)")
    try:
        page = generate(output, args.results, plots=not args.no_plots)
    except ImportError as error:  # matplotlib missing: the message says how to install it
        raise UserError(str(error)) from error
    rows = len(page.all_rows)
    plots = f" and {len(page.plots)} plots" if page.plots else ""
    print(f"wrote {output}{plots}: {rows} rows, {len(page.corrections)} corrections of the source page"
          + (f"; {len(page.unregistered)} tags not registered in this build" if page.unregistered else ""))
    return 0
