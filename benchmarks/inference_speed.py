"""Inference speed on this CPU: the reference's eager model against ours (eager, optimized, compiled, ORT).

    python benchmarks/inference_speed.py [--models NAME[@SIZE] ...] [--batch-sizes 1 8] [--threads N]
        [--rounds 5] [--runs 10] [--output inference_speed.json]

Everything runs in one process. Per model and batch size, the variants are built once (setup and compile times
recorded apart), checked against the reference's outputs, then timed in `--rounds` alternating rounds of
`--runs` calls each, so that a change in the machine's load hits every variant alike; a variant's figure is
the median over all its timed calls. The reference is timed in NCHW and, for conv nets, also channels-last;
its faster layout is the baseline. Our best backend over that baseline is the speed-up; the geometric means
over the models at each batch size close the table. fp32 throughout. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from pathlib import Path

import torch

MODELS = ["mobilenetv4_conv_small", "mobilenetv1_100", "mobilenetv3_large_100", "efficientnet_b0",
          "mobilenet_edgetpu_v2_m", "convnext_zepto_rms", "mobilenetv4_conv_medium@256",
          "mobilenetv4_hybrid_medium@256", "resnet50d", "mambaout_femto", "hiera_small_abswin_256",
          "vit_betwixt_patch16_reg4_gap_256"]
OURS = ("eager", "optimized", "compile", "onnxruntime")


def _models(name: str, img_size: int | None):
    """The reference model (random weights) and ours with the same weights, both eval."""
    import timm

    import visionzoo
    from visionzoo.registry import get_architecture

    fixed = get_architecture(name).model_cls.fixed_input_size
    kwargs = {"img_size": img_size} if img_size and fixed else {}
    torch.manual_seed(0)
    reference = timm.create_model(name, **kwargs).eval()
    ours = visionzoo.create_model(name, **kwargs).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    for model in (reference, ours):
        model.requires_grad_(False)
    return reference, ours


def _variants(reference, ours, x: torch.Tensor, backends) -> tuple[dict, dict]:
    """name -> step, and name -> setup seconds."""
    from visionzoo.deploy import prefers_channels_last
    from visionzoo.deploy.backends import build_backend

    steps, setup = {"reference": lambda: reference(x)}, {}
    if prefers_channels_last(ours):
        reference_cl = copy.deepcopy(reference).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        steps["reference channels-last"] = lambda: reference_cl(x_cl)
    for backend in backends:
        if backend == "eager":
            steps["eager"] = lambda: ours(x)
        else:
            steps[backend], setup[backend] = build_backend(backend, ours, x)
    return steps, setup


def _time_alternating(steps: dict, rounds: int, runs: int) -> dict[str, float]:
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    with torch.no_grad():
        for step in steps.values():  # warm-up, once each
            step()
            step()
        for _ in range(rounds):
            for name, step in steps.items():
                for _ in range(runs):
                    start = time.perf_counter()
                    step()
                    seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def _environment(threads: int) -> dict:
    import timm

    import visionzoo
    from visionzoo.deploy import cpu_info
    from visionzoo.deploy.backends import onnxruntime_version

    cpu = cpu_info()
    return dict(cpu=cpu.model, isa=cpu.isa, native_bf16=cpu.native_bf16, threads=threads,
                torch=torch.__version__, visionzoo=visionzoo.__version__, timm=timm.__version__,
                onnxruntime=onnxruntime_version())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, metavar="NAME[@SIZE]")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--backends", nargs="+", choices=OURS, default=list(OURS))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10, help="timed calls per variant per round")
    parser.add_argument("--output", default="inference_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # tiny random-init values must not time denormal arithmetic
    environment = _environment(args.threads)
    print(" | ".join(f"{k} {v}" for k, v in environment.items()), flush=True)

    rows = []
    for entry in args.models:
        name, _, size = entry.partition("@")
        reference, ours = _models(name, int(size) if size else None)
        from visionzoo.deploy.optimize import default_img_size

        img_size = (int(size), int(size)) if size else default_img_size(ours)
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, *img_size, generator=torch.Generator().manual_seed(0))
            try:
                steps, setup = _variants(reference, ours, x, args.backends)
                latency = _time_alternating(steps, args.rounds, args.runs)
            except Exception as error:  # noqa: BLE001 -- record the failure, go on with the next model
                rows.append(dict(model=entry, batch=batch, error=f"{type(error).__name__}: {error}"[:300]))
                print(f"{entry} b{batch}: FAILED {rows[-1]['error']}", flush=True)
                continue
            baseline = min(v for k, v in latency.items() if k.startswith("reference"))
            ours_best = min((k for k in latency if not k.startswith("reference")), key=latency.get)
            row = dict(model=entry, img_size=img_size[0], batch=batch,
                       ms={k: 1e3 * v for k, v in latency.items()}, setup_s=setup,
                       best=ours_best, speedup=baseline / latency[ours_best], **environment)
            rows.append(row)
            print(f"{entry} b{batch}: " + "  ".join(f"{k} {v:.2f} ms" for k, v in row["ms"].items())
                  + "  | setup " + "  ".join(f"{k} {v:.1f}s" for k, v in setup.items())
                  + f"  | best {ours_best} {row['speedup']:.2f}x", flush=True)
        del reference, ours

    summary = {}
    for batch in args.batch_sizes:
        speedups = [r["speedup"] for r in rows if r["batch"] == batch and "speedup" in r]
        if speedups:
            summary[f"geomean_speedup_b{batch}"] = math.exp(statistics.fmean(math.log(s) for s in speedups))
            summary[f"slower_than_reference_b{batch}"] = [r["model"] for r in rows
                                                         if r["batch"] == batch and r.get("speedup", 1) < 1]
    print(json.dumps(summary, indent=1))
    Path(args.output).write_text(json.dumps({"environment": environment, "command": vars(args), "rows": rows,
                                             "summary": summary}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
