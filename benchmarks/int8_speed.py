"""int8 against our best fp32 backend, batch 1 and 8, in one process, alternating, on the speed table's conv
nets (and three transformers for the note).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/int8_speed.py --threads 1 --rounds 5

Per model: the fp32 backends `optimized` (visionzoo.optimize_for_inference) and `onnxruntime` (the exported
ONNX), optionally `compile` (--compile: Inductor, minutes per model), and int8 (onnxruntime static QDQ;
--pt2e also torchao PT2E through Inductor). Speed does not depend on the weights' values, so random weights
are used (BatchNorm statistics of their own activations), calibrated on scikit-image's sample photos, and
int8 is not verified here (random weights' logits are near ties everywhere): its accuracy is measured with
real weights by the tests and `visionzoo quantize --val-data`.
Every backend is built and verified first; then each round times every backend at batch 1 and 8 (the order
reversed every other round, so that drift of a shared machine falls on all alike), and the figure per
backend is the median over rounds of each round's best of `--runs` calls. The table gives int8's speed-up
over the best fp32 backend of that model and batch, and the geometric mean over the conv nets.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

CONV_NETS = ["mobilenetv4_conv_small", "mobilenetv3_large_100", "efficientnet_b0", "mobilenetv1_100",
             "resnet50d", "mobilenet_edgetpu_v2_m", "mobilenetv4_conv_medium"]
TRANSFORMERS = ["vit_betwixt_patch16_reg4_gap_256", "hiera_small_abswin_256", "mambaout_femto"]
BATCHES = (1, 8)


def _best_of(run, x, runs: int) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        run(x)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=CONV_NETS + TRANSFORMERS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also the compile backend (slow to build)")
    parser.add_argument("--pt2e", action="store_true", help="also int8 through torchao PT2E + Inductor")
    parser.add_argument("--output", default="int8_speed.json")
    args = parser.parse_args()

    import torch
    from tests.reference import calibrate_batch_norms_

    import visionzoo
    from visionzoo.deploy.hardware import cpu_info
    from visionzoo.deploy.optimize import default_img_size
    from visionzoo.deploy.runners import build_runner

    torch.set_num_threads(args.threads)
    cpu = cpu_info()
    import skimage.data

    calibration = skimage.data.__path__[0]
    fp32_backends = ["optimized", "onnxruntime"] + (["compile"] if args.compile else [])
    int8_backends = {"int8": "int8"} | ({"int8 pt2e": "compile"} if args.pt2e else {})
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        model = visionzoo.create_model(name).eval()
        size = default_img_size(model)
        calibrate_batch_norms_(model, size)  # activations of a plausible scale for the calibration
        runners, setup = {}, {}
        for backend in fp32_backends + list(int8_backends):
            try:
                if backend in int8_backends:
                    runner = build_runner(int8_backends[backend], model, size, precision="int8",
                                          calibration=calibration, calibration_count=16, verify=False)
                else:
                    runner = build_runner(backend, model, size)
            except Exception as error:  # noqa: BLE001 -- a backend that cannot take the model is reported
                print(f"{name}: {backend} failed: {type(error).__name__}: {str(error)[:200]}",
                      file=sys.stderr)
                continue
            runners[backend], setup[backend] = runner.run, runner.setup_s
        times = {(b, n): [] for b in runners for n in BATCHES}
        inputs = {n: torch.randn(n, 3, *size) for n in BATCHES}
        order = list(runners)
        with torch.no_grad():
            for round_ in range(args.rounds):
                for backend in (order if round_ % 2 == 0 else order[::-1]):
                    for n in BATCHES:
                        runners[backend](inputs[n])  # warm
                        times[(backend, n)].append(_best_of(runners[backend], inputs[n], args.runs))
        row = dict(model=name, img_size=size[0], setup_s={b: round(s, 1) for b, s in setup.items()})
        for n in BATCHES:
            speed = {b: n / statistics.median(times[(b, n)]) for b in runners}
            fp32 = {b: s for b, s in speed.items() if b not in int8_backends}
            best = max(fp32, key=fp32.get)
            row[f"b{n}"] = {b: round(s, 1) for b, s in speed.items()}
            row[f"b{n}_best_fp32"] = best
            for b in int8_backends:
                key = f"b{n}_{b.replace(' ', '_')}_speedup"
                row[key] = round(speed[b] / fp32[best], 3) if b in speed else None
        rows.append(row)
        print(json.dumps(row), flush=True)

    conv = [r for r in rows if r["model"] in CONV_NETS]
    keys = [b.replace(" ", "_") for b in int8_backends]
    print(f"\nCPU: {cpu.model} ({cpu.isa}; {cpu.features}); {args.threads} thread(s); torch "
          f"{torch.__version__}; {args.rounds} alternating rounds, best of {args.runs} per round, median")
    header = ["model", "size"]
    for n in BATCHES:
        header += [f"best fp32 b{n}", "img/s"] + [f"{b} img/s (x)" for b in int8_backends]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join([":---", "---:"] + ([":---", "---:"] + ["---:"] * len(keys)) * len(BATCHES)) + "|")
    for r in rows:
        cells = [r["model"], str(r["img_size"])]
        for n in BATCHES:
            best = r[f"b{n}_best_fp32"]
            cells += [best, f"{r[f'b{n}'][best]:.1f}"]
            for b, key in zip(int8_backends, keys, strict=True):
                ratio = r[f"b{n}_{key}_speedup"]
                cells.append(f"{r[f'b{n}'][b]:.1f} ({ratio:.2f}x)" if ratio else "failed")
        print("| " + " | ".join(cells) + " |")
    for key in keys:
        for n in BATCHES:
            ratios = [r[f"b{n}_{key}_speedup"] for r in conv if r[f"b{n}_{key}_speedup"]]
            if ratios:
                geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
                print(f"conv nets, batch {n}: {key} geomean speed-up over the best fp32 backend "
                      f"{geomean:.2f}x ({len(ratios)} models)")
    Path(args.output).write_text(json.dumps({"cpu": cpu.model, "isa": cpu.isa, "features": cpu.features,
                                             "threads": args.threads, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
