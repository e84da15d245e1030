"""`visionzoo train` reading webdataset shards over HTTP: the same run, to the last bit, as from the class
folders the shards were written from (the same samples, labels and order)."""

import csv
import shutil

from safetensors.torch import load_file

from tests.http_server import serve_folder
from visionzoo.cli.main import main
from visionzoo.data.shards.writer import write_shards

RUN = ["--model", "test_vit", "--num-classes", "10", "--img-size", "32", "--epochs", "1",
       "--batch-size", "16", "--opt", "adamw", "--lr", "2e-3", "--workers", "0", "--seed", "3"]


def _subset(source, target, per_class):
    for label in range(10):
        (target / str(label)).mkdir(parents=True)
        for path in sorted((source / str(label)).iterdir())[:per_class]:
            shutil.copy(path, target / str(label) / path.name)
    return target


def test_training_from_shards_over_http_is_the_folder_run(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONZOO_SHARD_CACHE", str(tmp_path / "shard-cache"))
    train = _subset(digits[0], tmp_path / "folders" / "train", per_class=8)
    val = _subset(digits[1], tmp_path / "folders" / "val", per_class=3)
    write_shards(train, tmp_path / "served" / "train", shard_size=16)
    write_shards(val, tmp_path / "served" / "val", shard_size=16)
    assert main(["train", *RUN, "--data", str(train), "--val-data", str(val),
                 "--output", str(tmp_path / "from-folders")]) == 0
    with serve_folder(tmp_path / "served") as (base, requests):
        assert main(["train", *RUN, "--data", f"{base}/train/shard-{{000000..000004}}.tar",
                     "--val-data", f"{base}/val/", "--output", str(tmp_path / "from-shards")]) == 0
    assert "/train/shard-000004.tar" in requests and "/val/shard-000001.tar" in requests
    expected = load_file(tmp_path / "from-folders" / "last" / "model.safetensors")
    weights = load_file(tmp_path / "from-shards" / "last" / "model.safetensors")
    assert weights.keys() == expected.keys()
    assert all(weights[name].equal(expected[name]) for name in expected)

    def summary(run):
        rows = list(csv.DictReader((tmp_path / run / "summary.csv").open()))
        return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_sec")} for row in rows]

    assert summary("from-shards") == summary("from-folders")
    assert summary("from-shards")[0]["step"] == "5"
