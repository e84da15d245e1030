"""`visionzoo models [PATTERN ...] [--pretrained]`: a table of architectures or pretrained tags."""

from __future__ import annotations

import argparse

from .options import format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("patterns", nargs="*", metavar="PATTERN",
                        help="shell-style wildcards, e.g. 'mobilenet*'")
    parser.add_argument("--pretrained", action="store_true", help="one row per published weight (arch.tag)")


def _size(cfg) -> str:
    return "x".join(map(str, cfg.input_size[1:])) if cfg is not None else "-"


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..factory import parameter_count
    from ..registry import get_architecture, get_pretrained_cfg, list_models

    names = list_models(args.patterns, pretrained=args.pretrained)
    if not names:
        kind = "pretrained tag" if args.pretrained else "model"
        raise UserError(f"no {kind} matches {' '.join(args.patterns)!r}; "
                        "run `visionzoo models` to see them all")
    rows = []
    for name in names:
        params = f"{parameter_count(name) / 1e6:.2f}"
        if args.pretrained:
            cfg = get_pretrained_cfg(name)
            top1 = max(cfg.results, key=lambda r: r.img_size, default=None)
            best = f"{top1.top1:.3f} @ {top1.img_size}" if top1 else "-"
            rows.append([name, params, _size(cfg), str(cfg.num_classes), best])
        else:
            cfgs = get_architecture(name).pretrained_cfgs
            tags = ", ".join(c.tag for c in cfgs) or "-"
            rows.append([name, params, _size(cfgs[0] if cfgs else None), tags])
    header = ["model.tag", "params (M)", "input", "classes", "top-1 (best size)"] if args.pretrained \
        else ["model", "params (M)", "input", "tags (default first)"]
    print(format_table(header, rows))
    return 0
