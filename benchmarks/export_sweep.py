"""Export every architecture to ONNX and pt2 at its default size and verify each against eager.

    python benchmarks/export_sweep.py [--models PATTERN ...] [--tags] [--formats onnx pt2]
        [--output FILE.json]

The test suite exports one or two architectures per family (tests/deploy/test_export.py); this is the full
sweep, too slow for the suite on 2 cores (the SO400M towers alone take minutes and several GB). Weights are
random, with BatchNorm statistics and layer scales perturbed so that no branch hides behind an identity.
`--tags` goes over every published tag instead (each with its own head and input size, no download).
Prints one line per (architecture, format) with the export time and the verification figures; exit status 1
if any export or verification failed.
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


def main() -> int:
    from tests.reference import randomise_

    import visionzoo
    from visionzoo.deploy.export import ExportError, ExportSpec, export_model, load_exported
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
    rows, failed = [], 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            model = visionzoo.create_model(name).eval()
            randomise_(model)
            img_size = default_img_size(model)
            for fmt in args.formats:
                path = Path(folder) / f"{name}.{'onnx' if fmt == 'onnx' else 'pt2'}"
                start = time.perf_counter()
                try:
                    export_model(model, ExportSpec(fmt, img_size), path)
                    seconds = time.perf_counter() - start
                    verification = compare(model, load_exported(path, fmt),
                                           verification_inputs(model, img_size, fixed_batch=1))
                except (ExportError, RuntimeError, ValueError) as error:
                    failed += 1
                    rows.append(dict(model=name, format=fmt, ok=False, error=str(error).splitlines()[0]))
                    print(f"{name} {fmt}: FAILED {rows[-1]['error']}", flush=True)
                    continue
                failed += not verification.passed
                rows.append(dict(model=name, format=fmt, ok=verification.passed, export_s=seconds,
                                 rel_diff=max(c.rel_diff for c in verification.comparisons)))
                print(f"{name} {fmt} {img_size[0]}x{img_size[1]}: export {seconds:.1f}s; "
                      + "; ".join(verification.lines()), flush=True)
                for extra in path.parent.glob(f"{path.name}*"):
                    extra.unlink()
            del model
    Path(args.output).write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"{len(rows) - failed} of {len(rows)} exports verified")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
