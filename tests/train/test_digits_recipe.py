"""A recipe-driven run of the digits end-to-end test: `--recipe test_models_r160` (RandAugment
`rand-m3-inc1-mstd101`, AdamW, grad clip 5, channels-last), with mixup/cutmix and random erasing on, still
reaches the 95% val top-1 bar; and so does the same run under `torchrun --nproc-per-node 2` with
`--aug-repeats 2`.

Overridden for the tiny data, and why: the model and classes (test_efficientnet, 10 digits) and the size
(32 px, the digits' fixture); epochs (1600 -> 10, 16 with repeats: about a minute of training on 2 CPU
cores; an epoch with 2 repeats holds half as many distinct images, so it needs more of them) and batch
(1024 -> 32 global); lr 4e-3, warmup, weight decay 0.05 and EMA 0.995 (the digits test's scratch settings,
the recipe's lr being unpublished); no flips and a 0.5-1 crop scale (a flipped or tiny crop of a digit is
another digit or none); `--amp none` (the recipe's fp16 is for GPUs). The recipe has cutmix 0 and no
mixup or erasing; `--mixup 0.2 --cutmix 1.0 --reprob 0.25` (the MobileNetV4 template's values) turn them on,
as the test is of those pieces.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from visionzoo.cli.main import main

RECIPE = ["--recipe", "test_models_r160", "--model", "test_efficientnet", "--num-classes", "10",
          "--img-size", "32", "--amp", "none", "--lr", "4e-3", "--weight-decay", "0.05", "--scale", "0.5",
          "1", "--hflip", "0", "--warmup-epochs", "0.5", "--ema", "0.995", "--ema-warmup", "--mixup", "0.2",
          "--cutmix", "1.0", "--reprob", "0.25", "--workers", "0"]


def _final_top1(folder: Path) -> tuple[float, float]:
    last = list(csv.DictReader((folder / "summary.csv").open()))[-1]
    return float(last["eval_top1"]), float(last["ema_eval_top1"])


def _check_recipe_record(folder: Path, repeats: float) -> None:
    args = yaml.safe_load((folder / "args.yaml").read_text())
    assert args["recipe"] == "test_models_r160"
    assert (args["aa"], args["clip_grad"], args["channels_last"]) == ("rand-m3-inc1-mstd101", 5.0, True)
    assert (args["mixup"], args["cutmix"], args["reprob"], args["aug_repeats"]) == (0.2, 1.0, 0.25, repeats)


@pytest.mark.heavy
def test_recipe_run_with_randaugment_mixup_cutmix_erasing_reaches_95_percent(digits, tmp_path):
    output = tmp_path / "run"
    assert main(["train", *RECIPE, "--epochs", "10", "--batch-size", "32", "--data", str(digits[0]),
                 "--val-data", str(digits[1]), "--output", str(output)]) == 0
    _check_recipe_record(output, 0)
    final, ema = _final_top1(output)
    assert max(final, ema) >= 95.0, (final, ema)  # reached 96.7 (EMA 97.2) when written


@pytest.mark.heavy
def test_recipe_run_under_torchrun_with_repeated_augmentation(digits, tmp_path):
    output = tmp_path / "two"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    launched = subprocess.run(
        ["timeout", "400", sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc-per-node", "2", "-m", "visionzoo", "train", *RECIPE, "--epochs", "16", "--batch-size", "16",
         "--aug-repeats", "2",
         "--data", str(digits[0]), "--val-data", str(digits[1]), "--output", str(output)],
        env=env, capture_output=True, text=True)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stdout.count("best eval top-1") == 1
    assert {"args.yaml", "summary.csv", "curves.png", "checkpoint.pt", "best", "last"} <= {
        p.name for p in output.iterdir()}
    _check_recipe_record(output, 2)
    args = yaml.safe_load((output / "args.yaml").read_text())
    assert (args["world_size"], args["global_batch"]) == (2, 32)
    rows = list(csv.DictReader((output / "summary.csv").open()))
    # 1,437 training images, rounded down to 1,280 per epoch, 640 per rank: 40 batches of 16
    assert int(rows[0]["step"]) == 40 and len(rows) == 16
    final, ema = _final_top1(output)
    assert max(final, ema) >= 95.0, (final, ema)  # reached 96.1 (EMA 96.1) when written
