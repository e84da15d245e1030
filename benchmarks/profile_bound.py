"""What bounds a model's CPU inference: time per operator, and its FLOP rate against this CPU's GEMM peak.

    python benchmarks/profile_bound.py MODEL [--batch-size 8] [--img-size N] [--threads N] [--optimized]

First measures the CPU's float32 GEMM rate (a 2048^3 matmul, the best of several runs, with the same threads)
in torch and in onnxruntime;
then profiles the model's forward (eager, or `--optimized`: BatchNorms folded, channels-last) with
torch.profiler and prints, per operator, its share of the time, its FLOPs where the profiler counts them
(matmul, linear, convolution), and their rate as a fraction of the GEMM peak. An operator at a small fraction
of the peak with a large share of the time is memory- or overhead-bound; near the peak, compute-bound.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

PEAK_SIZE = 2048


def _peak_gemm_gflops(step, runs: int) -> float:
    """GFLOP/s of `step`, one PEAK_SIZE^3 float32 matmul, from its fastest of `runs` calls after a warm-up."""
    step()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return 2 * PEAK_SIZE**3 / best / 1e9


def gemm_peak_gflops(runs: int = 10) -> float:
    """This CPU's float32 matmul rate with torch's current threads (GFLOP/s, best of `runs`)."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    return _peak_gemm_gflops(lambda: a @ b, runs)


def onnxruntime_gemm_gflops(threads: int, runs: int = 10) -> float:
    """The same matmul in onnxruntime (its own MLAS kernels), GFLOP/s; 0 if onnxruntime is missing."""
    try:
        import numpy as np
        import onnxruntime
        from onnx import TensorProto, helper
    except ImportError:
        return 0.0
    shape = [PEAK_SIZE, PEAK_SIZE]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "ab"],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, shape)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    feeds = {n: np.random.default_rng(0).standard_normal(shape, dtype=np.float32) for n in "ab"}
    return _peak_gemm_gflops(lambda: session.run(None, feeds), runs)


def main() -> None:
    import visionzoo
    from visionzoo.deploy import optimize_for_inference
    from visionzoo.deploy.optimize import default_img_size

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--img-size", type=int)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--optimized", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    peak = gemm_peak_gflops()
    print(f"float32 GEMM on {args.threads} threads: torch {peak:.1f} GFLOP/s, "
          f"onnxruntime {onnxruntime_gemm_gflops(args.threads):.1f} GFLOP/s (% of peak below: of torch's)")

    model = visionzoo.create_model(args.model).eval()
    img_size = (args.img_size, args.img_size) if args.img_size else default_img_size(model)
    x = torch.randn(args.batch_size, 3, *img_size)
    if args.optimized:
        model = optimize_for_inference(model, img_size)
    with torch.no_grad():
        model(x)
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            for _ in range(args.runs):
                model(x)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.model} batch {args.batch_size} at {img_size[0]}x{img_size[1]}: "
          f"{total / 1e3 / args.runs:.1f} ms per forward (profiled)")
    print(f"{'operator':<36} {'time %':>7} {'ms/fwd':>8} {'GFLOP/fwd':>10} {'GFLOP/s':>8} {'of peak':>8}")
    for event in sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]:
        seconds = event.self_cpu_time_total / 1e6
        flops = event.flops or 0
        rate = flops / seconds / 1e9 if flops else 0.0
        print(f"{event.key[:36]:<36} {100 * event.self_cpu_time_total / total:>6.1f}% "
              f"{1e3 * seconds / args.runs:>8.2f} {flops / 1e9 / args.runs:>10.3f} "
              + (f"{rate:>8.1f} {100 * rate / peak:>7.0f}%" if flops else f"{'-':>8} {'-':>8}"))


if __name__ == "__main__":
    main()
