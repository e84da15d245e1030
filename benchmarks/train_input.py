"""Images/s of the training input path, ours against the reference (timm 1.0.31), same recipe, same JPEGs.

    python benchmarks/train_input.py [--images 384] [--workers 0 1 2] [--rounds 3] [--batch-size 64]

The path: read the file, decode, random-resized crop, flip, RandAugment (where the recipe has it), uint8
collation (the loader, on the CPU cores in training), then normalisation and random erasing of the batch
(on the model's device in training, in both libraries; here on the CPU, timed apart).
Ours: `create_train_transform(..., encoded=True)` on a visionzoo dataset, with the training loader's
per-sample seeds (`SeededSamples`), `collate_samples`, `normalize_batch` and `create_batch_erasing`.
The reference: its `create_loader(..., is_training=True, use_prefetcher=True, device=cpu)` (its
`create_transform` with the same recipe arguments, `fast_collate`, the prefetcher's normalisation and
erasing) on its `ImageDataset`.

The photos: scikit-image's colour photos and the package's deploy/photos, each re-encoded as JPEG
(quality 90) at ImageNet's typical sizes (500x375, 375x500, 500x333), cycled to `--images` files.
Each (recipe, workers) cell is measured in rounds that alternate ours and the reference, in one process,
with one torch thread per process, and reports the median round: images/s of wall time, and images per
CPU-second of every process of the loader (main and workers): the rate per core, which other jobs on a
shared machine move much less than the wall-time rate; last, the per-core ratio with the device steps
counted as CPU work too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from visionzoo import get_pretrained_cfg  # noqa: E402
from visionzoo.data import DataConfig, create_dataset, normalize_batch  # noqa: E402
from visionzoo.data.loader import collate_samples  # noqa: E402
from visionzoo.data.samplers import EpochBatchSampler, SeededSamples  # noqa: E402
from visionzoo.data.train_options import TrainAugmentation  # noqa: E402
from visionzoo.data.train_transforms import create_batch_erasing, create_train_transform  # noqa: E402
from visionzoo.train.resolve import recipe_options  # noqa: E402

SIZES = [(500, 375), (375, 500), (500, 333)]
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
                  "retina", "immunohistochemistry")
# (label, recipe tag, augmentation options over the recipe's)
RECIPES = [
    ("mnv4 e2400", "mobilenetv4_conv_small.e2400_r224_in1k", {}),
    ("resnet a1", "resnet50d.a1_in1k", {}),
    ("resnet a1 + RA m7", "resnet50d.a1_in1k", {"aa": "rand-m7-mstd0.5-inc1"}),
]


def photos() -> list[Image.Image]:
    import skimage.data

    found = []
    for name in SKIMAGE_PHOTOS:
        pixels = getattr(skimage.data, name)()
        found.append(Image.fromarray(pixels[0] if isinstance(pixels, tuple) else pixels).convert("RGB"))
    deploy = Path(__file__).resolve().parents[1] / "src" / "visionzoo" / "deploy" / "photos"
    return found + [Image.open(path).convert("RGB") for path in sorted(deploy.glob("*.jpg"))]


def write_jpegs(root: Path, count: int) -> None:
    """`count` JPEGs in two class folders: each photo centre-cropped to each size's aspect, resized."""
    sources = []
    for photo in photos():
        for width, height in SIZES:
            scale = min(photo.width / width, photo.height / height)
            box_w, box_h = width * scale, height * scale
            left, top = (photo.width - box_w) / 2, (photo.height - box_h) / 2
            sources.append(photo.resize((width, height), Image.BICUBIC, box=(left, top, left + box_w,
                                                                             top + box_h)))
    for i in range(count):
        folder = root / ("n01440764" if i % 2 else "n02123045")
        folder.mkdir(parents=True, exist_ok=True)
        sources[i % len(sources)].save(folder / f"{i:05d}.JPEG", quality=90)


def recipe_augmentation(tag: str, extra: dict) -> tuple[TrainAugmentation, str, DataConfig]:
    """The recipe's augmentation options, its train interpolation, and the tag's normalisation."""
    fields = set(TrainAugmentation.__dataclass_fields__)
    options = TrainAugmentation(**{k: v for k, v in {**recipe_options(tag), **extra}.items() if k in fields})
    cfg = get_pretrained_cfg(tag)
    config = DataConfig(input_size=(3, 224, 224), interpolation=cfg.interpolation, mean=cfg.mean, std=cfg.std)
    return options, options.train_interpolation or cfg.interpolation, config


def ours(root: Path, options: TrainAugmentation, interpolation: str, config: DataConfig, workers: int,
         batch_size: int):
    """(uint8 batch, its device steps) pairs: our loader as training runs it (per-sample seeds included)."""
    transform = create_train_transform(224, options, config.mean, config.std, normalize=False,
                                       interpolation=interpolation, encoded=True)
    dataset = SeededSamples(create_dataset(root).with_transform(transform), seed=0)
    erasing = create_batch_erasing(options)
    sampler = EpochBatchSampler(len(dataset), batch_size, seed=0, epoch=0)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                                         collate_fn=collate_samples)

    def device_steps(images):
        images = normalize_batch(images, config)
        return erasing(images) if erasing is not None else images

    for batch in loader:
        yield batch.images, device_steps


def reference(root: Path, options: TrainAugmentation, interpolation: str, config: DataConfig, workers: int,
              batch_size: int):
    """(uint8 batch, its device steps) pairs: the reference's loader and its prefetcher's normalisation and
    erasing (run here on the CPU, as its prefetcher runs them on the device)."""
    from timm.data import ImageDataset, create_loader

    prefetcher = create_loader(
        ImageDataset(str(root)), (3, 224, 224), batch_size, is_training=True, re_prob=options.reprob,
        re_mode=options.remode, re_count=options.recount, scale=options.scale, ratio=options.ratio,
        hflip=options.hflip, vflip=options.vflip, color_jitter=options.color_jitter or 0.0,
        auto_augment=options.aa, interpolation=interpolation, mean=config.mean, std=config.std,
        num_workers=workers, device=torch.device("cpu"), use_prefetcher=True, persistent_workers=False)

    def device_steps(images):
        images = images.to(prefetcher.img_dtype).sub_(prefetcher.mean).div_(prefetcher.std)
        return prefetcher.random_erasing(images) if prefetcher.random_erasing is not None else images

    for images, _ in prefetcher.loader:
        yield images, device_steps


def patch_reference_posterize() -> None:
    """The reference's Posterize raises on Pillow >= 10 when a noisy magnitude keeps 0 bits (it stops the
    mnv4 recipe's loader within a few hundred images); give it the black image Pillow < 10 gave, as ours
    does, at the same cost."""
    from timm.data import auto_augment

    original = auto_augment.posterize

    def posterize(img, bits_to_keep, **kwargs):
        return img.point(lambda _: 0) if bits_to_keep <= 0 else original(img, bits_to_keep, **kwargs)

    for name, op in list(auto_augment.NAME_TO_OP.items()):
        if op is original:
            auto_augment.NAME_TO_OP[name] = posterize


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the loader's workers, joined at its end)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def rate(pipeline, *args) -> tuple[float, float, float]:
    """(images/s of wall time after the first batch, which pays for the workers' start; images per CPU
    second of the loader over every process: the rate per core, which other jobs move little; the same with
    the device steps, normalisation and erasing, run here on the CPU)."""
    loader_cpu, device_cpu, count, first = -cpu_seconds(), 0.0, 0, True
    for images, device_steps in pipeline(*args):
        if first:
            start, first = time.perf_counter(), False
        else:
            count += len(images)
        begun = time.process_time()
        device_steps(images)
        device_cpu += time.process_time() - begun
    wall = time.perf_counter() - start
    total = count + len(images)
    loader_cpu += cpu_seconds() - device_cpu
    return count / wall, total / loader_cpu, total / (loader_cpu + device_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=384)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    import timm

    patch_reference_posterize()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "train"
        write_jpegs(root, args.images)
        print(f"{args.images} JPEGs (~500x375, quality 90) from {len(photos())} photos; 224px; batch "
              f"{args.batch_size}; {cpus} CPUs; torch {torch.__version__}, Pillow {Image.__version__}, "
              f"reference timm {timm.__version__}; medians of {args.rounds} alternating rounds\n")
        print("| recipe | workers | ours img/s | reference img/s | ours img/CPU-s | reference img/CPU-s | "
              "ours / reference per core | the same with normalisation + erasing |")
        print("|---|---|---|---|---|---|---|---|")
        for label, tag, extra in RECIPES:
            options, interpolation, config = recipe_augmentation(tag, extra)
            for workers in args.workers:
                results: dict[str, list[tuple[float, float, float]]] = {"ours": [], "reference": []}
                for _ in range(args.rounds):
                    for name, pipeline in (("ours", ours), ("reference", reference)):
                        results[name].append(rate(pipeline, root, options, interpolation, config, workers,
                                                  args.batch_size))
                mine, theirs = ([statistics.median(column) for column in zip(*results[name], strict=True)]
                                for name in ("ours", "reference"))
                print(f"| {label} | {workers} | {mine[0]:.0f} | {theirs[0]:.0f} | {mine[1]:.0f} | "
                      f"{theirs[1]:.0f} | {mine[1] / theirs[1]:.2f}x | {mine[2] / theirs[2]:.2f}x |",
                      flush=True)
        for label, tag, extra in RECIPES:
            options, interpolation, _ = recipe_augmentation(tag, extra)
            print(f"\n{label}: {interpolation}, {options}")


if __name__ == "__main__":
    main()
