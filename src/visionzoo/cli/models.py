"""`visionzoo models [PATTERN ...] [--pretrained]`: a table of architectures or pretrained tags."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("patterns", nargs="*", metavar="PATTERN", help="shell-style wildcards, e.g. 'mobilenet*'")
    parser.add_argument("--pretrained", action="store_true", help="one row per published weight (arch.tag)")


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _size(cfg) -> str:
    return "x".join(map(str, cfg.input_size[1:])) if cfg is not None else "-"


def _page_params(cfg, measured_m: float) -> str:
    """The 2024 page's parameter figure for this tag, flagged where it disagrees with the measured count."""
    from ..report.corrections import params_agree

    printed = next((figure.params for figure in cfg.page if figure.params), None)
    if printed is None:
        return "-"
    return printed if params_agree(printed, measured_m) else f"{printed} (wrong)"


def run(args: argparse.Namespace) -> int:
    from ..factory import parameter_count
    from ..registry import get_architecture, list_models

    names = list_models(args.patterns, pretrained=args.pretrained)
    if not names:
        from .main import UserError

        raise UserError(f"no {'pretrained tag' if args.pretrained else 'model'} matches {' '.join(args.patterns)!r}; "
                        "run `visionzoo models` to see them all")
    rows = []
    for name in names:
        architecture = get_architecture(name)
        params = f"{parameter_count(name) / 1e6:.2f}"
        if args.pretrained:
            from ..registry import get_pretrained_cfg

            cfg = get_pretrained_cfg(name)
            top1 = max(cfg.results, key=lambda r: r.img_size, default=None)
            best = f"{top1.top1:.3f} @ {top1.img_size}" if top1 else "-"
            rows.append([name, params, _size(cfg), str(cfg.num_classes), best, _page_params(cfg, float(params))])
        else:
            cfgs = architecture.pretrained_cfgs
            rows.append([name, params, _size(cfgs[0] if cfgs else None), ", ".join(c.tag for c in cfgs) or "-"])
    header = ["model.tag", "params (M)", "input", "classes", "top-1 (best size)", "2024 page params"] \
        if args.pretrained \
        else ["model", "params (M)", "input", "tags (default first)"]
    print(format_table(header, rows))
    return 0
