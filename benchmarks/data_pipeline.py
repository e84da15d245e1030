"""Images/s of the evaluation data pipeline alone (no model), and where the time goes.

    python benchmarks/data_pipeline.py [--images 512] [--workers 0 1 2] [--batch-size 64] [--img-size 224]

Writes a synthetic ImageNet-like folder to a temp dir (JPEGs of ImageNet-val's typical sizes, photo-like
content, quality 90), then:
1. times each stage for one image in this process (decode, RGB, resize, crop + to uint8 tensor), and
2. times the whole loader (decode, preprocess, uint8 collation, and the batch normalisation that runs on
   the model's device) for each worker count, after one warm-up pass, with the CPU time it used.
The per-stage times say what bounds the pipeline: with W workers on W free cores it cannot beat
W / (per-image time); on a shared machine the CPU ms/img of the 0-worker run is the contention-free figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from visionzoo.data import DataConfig, create_dataset, create_loader, create_transform, normalize_batch  # noqa: E402

# Typical ImageNet validation sizes (width, height): most are 500x375 or 375x500, some larger.
SIZES = [(500, 375), (375, 500), (500, 333), (640, 480), (500, 500), (800, 600)]


def photo_like(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Smooth shapes plus mild noise: compresses and decodes like a photo, unlike pure noise."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [127 + 60 * np.sin(x / rng.uniform(10, 60) + rng.uniform(0, 6)) *
                np.cos(y / rng.uniform(10, 60) + rng.uniform(0, 6)) for _ in range(3)]
    pixels = np.stack(channels, -1) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_folder(root: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    synsets = ["n01440764", "n02123045", "n07920052", "n04485082"]
    for i in range(count):
        folder = root / synsets[i % len(synsets)]
        folder.mkdir(parents=True, exist_ok=True)
        photo_like(SIZES[i % len(SIZES)], rng).save(folder / f"{i:05d}.JPEG", quality=90)


def stage_times(files: list[Path], config: DataConfig, repeats: int = 3) -> dict[str, float]:
    """Median milliseconds per image of each preprocessing stage, in this process."""
    steps = create_transform(config, normalize=False).transforms  # ToRGB, resize, crop, to uint8 tensor
    stages = {"decode": [], "resize": [], "crop+tensor": []}
    for _ in range(repeats):
        for path in files:
            start = time.perf_counter()
            image = Image.open(path)
            image.load()
            image = steps[0](image)
            decoded = time.perf_counter()
            image = steps[1](image)
            resized = time.perf_counter()
            steps[3](steps[2](image))
            done = time.perf_counter()
            stages["decode"].append(decoded - start)
            stages["resize"].append(resized - decoded)
            stages["crop+tensor"].append(done - resized)
    return {name: 1000 * statistics.median(values) for name, values in stages.items()}


def loader_rate(root: Path, config: DataConfig, workers: int, batch_size: int) -> tuple[float, float]:
    """(images/s of wall time, CPU milliseconds per image of this process: all of them when workers == 0)."""
    dataset = create_dataset(root).with_transform(create_transform(config, normalize=False))
    for _ in range(2):  # the first pass warms the page cache and the worker start-up
        loader = create_loader(dataset, batch_size, workers)
        start, cpu_start = time.perf_counter(), time.process_time()
        count = 0
        for batch in loader:
            normalize_batch(batch.images, config)
            count += len(batch.targets)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return count / elapsed, 1000 * cpu / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--crop-pct", type=float, default=0.875)
    parser.add_argument("--interpolation", default="bicubic")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = DataConfig(input_size=(3, args.img_size, args.img_size), crop_pct=args.crop_pct,
                        interpolation=args.interpolation)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "val"
        write_folder(root, args.images)
        print(f"{args.images} synthetic JPEGs, {args.img_size}px crop_pct {args.crop_pct} "
              f"{args.interpolation}, "
              f"batch {args.batch_size}, {cpus} CPUs, torch {torch.__version__}, Pillow {Image.__version__}")
        stages = stage_times(sorted(root.rglob("*.JPEG"))[:64], config)
        total = sum(stages.values())
        print("per image, one process: " + ", ".join(f"{k} {v:.2f} ms" for k, v in stages.items())
              + f"; total {total:.2f} ms -> at most {1000 / total:.0f} img/s per worker")
        for workers in args.workers:
            rate, cpu_ms = loader_rate(root, config, workers, args.batch_size)
            where = "all work in this process" if workers == 0 else "main process only"
            print(f"loader, {workers} worker(s): {rate:.0f} img/s ({cpu_ms:.2f} CPU ms/img, {where})")


if __name__ == "__main__":
    main()
