"""Export every architecture to ONNX and pt2 at its default size and verify each against eager.

    python benchmarks/export_sweep.py [--models PATTERN ...] [--tags] [--formats onnx pt2]
        [--output FILE.json]

The test suite does this for every architecture (tests/deploy/test_export.py); `--tags` does it for every
published tag, which the suite does not: each tag with its own head and input size (nothing is downloaded).
Tags whose models are the same graph (architecture, config, head and input size alike; only the weights
differ) are exported once, and the row names them all. Weights are random, norms and layer scales perturbed
so that no branch hides behind an identity, BatchNorm statistics recomputed on random images (as training
leaves them: see tests/reference.py).
Prints one line per (model, format) with the export time and the verification figures; exit status 1 if any
export or verification failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.reference, for randomise_


def _distinct_graphs(names: list[str]) -> dict[str, list[str]]:
    """The first name of each group of names whose models are the same graph -> the group's names."""
    import visionzoo

    groups: dict[str, list[str]] = {}
    first_of: dict[tuple, str] = {}
    for name in names:
        with torch.device("meta"):
            model = visionzoo.create_model(name)
        cfg = model.pretrained_cfg
        key = (repr(model.config), model.num_classes, tuple(cfg.input_size) if cfg is not None else None)
        first = first_of.setdefault(key, name)
        groups.setdefault(first, []).append(name)
    return groups


def main() -> int:
    from tests.reference import calibrate_batch_norms_, randomise_

    import visionzoo
    from visionzoo.deploy.export import ExportError, ExportSpec, load_exported, write_artifact
    from visionzoo.deploy.optimize import default_img_size
    from visionzoo.deploy.verify import compare, verification_inputs

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["*"], metavar="PATTERN")
    parser.add_argument("--formats", nargs="+", choices=("onnx", "pt2", "aoti"), default=["onnx", "pt2"])
    parser.add_argument("--tags", action="store_true", help="every published tag matching, not every arch")
    parser.add_argument("--output", default="export_sweep.json")
    args = parser.parse_args()
    names = [n for pattern in args.models for n in visionzoo.list_models(pattern, pretrained=args.tags)]
    rows, failed, started = [], 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for name, covered in _distinct_graphs(names).items():
            torch.manual_seed(0)
            model = visionzoo.create_model(name).eval()
            randomise_(model)
            img_size = default_img_size(model)
            calibrate_batch_norms_(model, img_size)
            for fmt in args.formats:
                path = Path(folder) / f"{name}.{'onnx' if fmt == 'onnx' else 'pt2'}"
                start = time.perf_counter()
                try:
                    write_artifact(model, ExportSpec(fmt, img_size), path)
                    seconds = time.perf_counter() - start
                    verification = compare(model, load_exported(path, fmt),
                                           verification_inputs(model, img_size, fixed_batch=1))
                except (ExportError, RuntimeError, ValueError) as error:
                    failed += 1
                    rows.append(dict(model=name, tags=covered, format=fmt, ok=False,
                                     error=str(error).splitlines()[0]))
                    print(f"{name} {fmt}: FAILED {rows[-1]['error']}", flush=True)
                    continue
                failed += not verification.passed
                rows.append(dict(model=name, tags=covered, format=fmt, img_size=img_size,
                                 ok=verification.passed, export_s=seconds,
                                 rel_diff=max(c.rel_diff for c in verification.comparisons),
                                 top1_agree=all(c.top1_agree == c.count for c in verification.comparisons)))
                also = f" (also {', '.join(covered[1:])})" if len(covered) > 1 else ""
                print(f"{name}{also} {fmt} {img_size[0]}x{img_size[1]}: export {seconds:.1f}s; "
                      + "; ".join(verification.lines()), flush=True)
                for extra in path.parent.glob(f"{path.name}*"):
                    extra.unlink()
            del model
    Path(args.output).write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                                             "seconds": time.perf_counter() - started, "rows": rows},
                                            indent=1) + "\n")
    tags = sum(len(r["tags"]) for r in rows if r["ok"])
    print(f"{len(rows) - failed} of {len(rows)} exports verified, covering {tags} (name, format) pairs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
