"""The training engine on a CUDA GPU: fp16 with the gradient scaler, bf16 with torch.compile, channels-last,
EMA, checkpoint and resume, then the training speed benchmark. A check, not a test: CI has no GPU.

    python benchmarks/train_cuda_check.py [--skip-speed]

Writes the scikit-learn digits as an image folder in a temp dir, trains the test model on it with each
setting, checks accuracy and outputs, and prints one line per check (and the benchmark's table).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

BASE = ["--model", "test_efficientnet", "--num-classes", "10", "--img-size", "32", "--batch-size", "32",
        "--opt", "adamw", "--lr", "4e-3", "--weight-decay", "0.05", "--scale", "0.5", "1", "--hflip", "0",
        "--warmup-epochs", "0.5", "--ema", "0.995", "--ema-warmup", "--workers", "2"]


def _train(args: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "visionzoo", "train", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin",
                               "HF_HUB_OFFLINE": "1"})
    return done.returncode, done.stderr[-1500:] + done.stdout[-500:], time.perf_counter() - start


def _top1(folder: Path) -> float:
    rows = list(csv.DictReader((folder / "summary.csv").open()))
    return float(rows[-1]["eval_top1"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    parser.add_argument("--epochs", default="4")
    options = parser.parse_args()
    from tests.train.conftest import write_digits

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        train, val = write_digits(Path(tmp) / "digits")
        data = ["--data", str(train), "--val-data", str(val), "--device", options.device,
                "--epochs", options.epochs]
        checks = [
            ("fp16 + GradScaler + channels-last", ["--amp", "fp16", "--channels-last"]),
            ("bf16 + compile", ["--amp", "bf16", "--compile"]),
        ]
        for label, extra in checks:
            out = Path(tmp) / label.split()[0]
            rc, log, seconds = _train([*BASE, *data, *extra, "--output", str(out),
                                       "--checkpoint-every", "20"])
            ok = rc == 0 and _top1(out) >= (93 if options.epochs == "4" else 0)
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {label}: rc {rc}, top-1 {_top1(out) if rc == 0 else 'n/a'}, "
                  f"{seconds:.1f}s", flush=True)
            if not ok:
                print(log)
        # resume a finished fp16 run for 0 more epochs: it must load model, EMA, optimizer and scaler state
        rc, log, _ = _train(["--resume", str(Path(tmp) / "fp16")])
        failures += rc != 0
        print(f"{'ok  ' if rc == 0 else 'FAIL'} resume of the fp16 run (scaler state restored): rc {rc}",
              flush=True)
        if rc:
            print(log)
    if not options.skip_speed:
        for flags in ([], ["--amp", "bf16", "--channels-last"]):
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_speed.py"),
                            "--device", options.device,
                            "--steps", "20", "--warmup", "5", "--rounds", "3", *flags])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
