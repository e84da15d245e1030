"""Images/s of reading a dataset in random order from class folders and from webdataset shards, side by side.

    python benchmarks/shard_read.py [--images 1024] [--shard-size 128] [--rounds 3] [--threads 1]

Writes synthetic ImageNet-like JPEGs (those of `data_pipeline.py`) as class folders, shards them with
`visionzoo shard`'s library call, then reads every sample in one random permutation (as training does) in
this process: decode to RGB only (`image`, the cost the storage adds to), and with the evaluation transform
(`eval`). Folder and shards alternate within each round; the best round of each is reported, with the
shards/folder ratio. Also: the one-time costs, shard writing and mapping each shard in a fresh reader.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from data_pipeline import write_folder  # noqa: E402

from visionzoo.data import DataConfig, create_dataset, create_transform, write_shards  # noqa: E402


def read_rate(dataset, order: list[int]) -> float:
    start = time.perf_counter()
    for index in order:
        sample = dataset[index]
        assert sample.error is None, sample.error
    return len(order) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = DataConfig(input_size=(3, 224, 224), crop_pct=0.875, interpolation="bicubic")
    with tempfile.TemporaryDirectory() as tmp:
        folder, output = Path(tmp) / "train", Path(tmp) / "shards"
        write_folder(folder, args.images)
        start = time.perf_counter()
        written = write_shards(folder, output, shard_size=args.shard_size)
        write_s = time.perf_counter() - start
        print(f"{args.images} synthetic JPEGs in {len(written.shards)} shards of {args.shard_size}; "
              f"writing took {write_s:.2f} s ({args.images / write_s:.0f} img/s, one process)")
        datasets = {"folder": create_dataset(folder), "shards": create_dataset(output)}
        start = time.perf_counter()
        fresh = create_dataset(output)
        for shard in range(len(fresh.shards)):
            fresh.image_bytes(fresh.starts[shard])
        per_shard = 1000 * (time.perf_counter() - start) / len(fresh.shards)
        print(f"mapping a shard in a fresh reader: {per_shard:.1f} ms ({args.shard_size} samples), once per "
              "shard per loader worker")
        order = torch.randperm(args.images, generator=torch.Generator().manual_seed(0)).tolist()
        for mode, transform in (("image", None), ("eval", create_transform(config, normalize=False))):
            best = {name: 0.0 for name in datasets}
            for _ in range(args.rounds):
                for name, dataset in datasets.items():
                    best[name] = max(best[name], read_rate(dataset.with_transform(transform), order))
            print(f"{mode}: folder {best['folder']:.0f} img/s, shards {best['shards']:.0f} img/s, "
                  f"shards/folder {best['shards'] / best['folder']:.2f}")


if __name__ == "__main__":
    main()
