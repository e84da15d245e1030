"""Training images/s of the visionzoo engine's update step against a plain loop around the reference (timm).

    python benchmarks/train_speed.py [--model mobilenetv4_conv_small vit_betwixt_patch16_reg4_gap_256]
        [--batch-size 32] [--steps 10] [--warmup 2] [--rounds 3] [--amp bf16] [--channels-last]
        [--opt adamw] [--threads N] [--device cpu|cuda]

Ours: the `Run` that `visionzoo train` builds (param groups without decay on norms/biases, the optimiser
factory, label-smoothing cross-entropy, autocast, channels-last), timed through `loop.forward_backward` and
`loop.optimizer_step`, the two calls the training loop makes per update. The reference: `timm.create_model`,
`timm.optim.create_optimizer_v2` (the reference train.py's optimiser path), its label-smoothing loss, the
same autocast and memory format, in the few lines its train.py runs per step. Both take the same uint8
batch (decoding is left out: it is the same work for both) and normalise it on the device. The two are
timed in alternation (who goes first alternating too), `--rounds` times, in one process, and the median
images/s of each is printed.
The reference is a test-only dependency: install it with `pip install -e '.[test]'`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DEFAULT_MODELS = ("mobilenetv4_conv_small", "vit_betwixt_patch16_reg4_gap_256")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_ours(name: str, args: argparse.Namespace, folder: Path):
    """The engine's Run for `name` over a two-image placeholder dataset (the batches come from us)."""
    from PIL import Image

    from visionzoo.runtime import DistributedContext
    from visionzoo.train.build import build_run
    from visionzoo.train.config import TrainConfig

    for label in ("0", "1"):
        (folder / "data" / label).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(folder / "data" / label / "a.png")
    config = TrainConfig(model=name, data=str(folder / "data"), output=str(folder / name), batch_size=1,
                         num_classes=1000, opt=args.opt, lr=1e-3, weight_decay=0.05, amp=args.amp,
                         channels_last=args.channels_last, device=args.device, workers=0)
    return build_run(config, DistributedContext())


def build_reference(name: str, run, args: argparse.Namespace):
    """timm's model, optimiser and loss with the same settings, and a step in its train.py's shape."""
    import timm
    from timm.loss import LabelSmoothingCrossEntropy
    from timm.optim import create_optimizer_v2

    device = run.device
    model = timm.create_model(name, num_classes=1000).to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = create_optimizer_v2(model, args.opt, lr=1e-3, weight_decay=0.05)
    loss_fn = LabelSmoothingCrossEntropy(0.1)
    mean = torch.tensor(run.data.data_config.mean, device=device).view(1, -1, 1, 1) * 255
    std = torch.tensor(run.data.data_config.std, device=device).view(1, -1, 1, 1) * 255
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp, torch.float32)

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        x = (images.to(device).float() - mean) / std
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=args.amp is not None):
            loss = loss_fn(model(x), targets.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def images_per_second(step, images, targets, steps: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(images, targets)
    _sync(device)
    return steps * len(targets) / (time.perf_counter() - start)


def main() -> int:
    from visionzoo.train.loop import forward_backward, optimizer_step

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed updates per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates first, for each")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of ours and the reference")
    parser.add_argument("--amp", choices=("bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--opt", default="adamw")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"batch {args.batch_size}, {args.steps} updates x {args.rounds} rounds, amp {args.amp or 'fp32'}, "
          f"channels_last {args.channels_last}, opt {args.opt}, {torch.get_num_threads()} threads, "
          f"{args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.model:
            torch.manual_seed(0)
            run = build_ours(name, args, Path(tmp))
            size = run.data.data_config.img_size
            images = torch.randint(0, 256, (args.batch_size, 3, *size), dtype=torch.uint8)
            targets = torch.randint(0, 1000, (args.batch_size,))

            def ours(x, y, run=run):
                forward_backward(run, x, y, epoch=0)
                optimizer_step(run, step=0)

            reference = build_reference(name, run, args)
            for step in (ours, reference):
                for _ in range(args.warmup):
                    step(images, targets)
            rates = {"visionzoo": [], "timm loop": []}
            steps = {"visionzoo": ours, "timm loop": reference}
            for round_index in range(args.rounds):
                # who goes first alternates too: neither gets the warmer (or the colder) start every round
                for who in sorted(steps, reverse=bool(round_index % 2)):
                    rates[who].append(images_per_second(steps[who], images, targets, args.steps, run.device))
            line = ", ".join(f"{who} {statistics.median(r):.1f} img/s" for who, r in rates.items())
            print(f"{name} @ {size[0]}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
