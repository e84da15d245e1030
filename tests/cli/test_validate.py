"""`visionzoo validate`: results per size, reported figures, result files, errors, and the distributed run
(the library's `validate` under it: tests/test_validation.py)."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.images import synset_folder, write_image
from visionzoo.cli.main import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _validate(capsys, *args):
    code = main(["validate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_result_per_size_with_reported_figures_and_bad_images(capsys, tmp_path, checkpoint, val_folder):
    results = tmp_path / "out" / "results.json"
    code, out, err = _validate(capsys, "--model", "test_vit.r160_in1k", "--checkpoint", checkpoint, "--data",
                               val_folder, "--img-size", 160, 192, "--batch-size", 5, "--workers", 0,
                               "--results-file", results)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("test_vit.r160_in1k @ 160 (crop_pct 0.95, bicubic): top1 ")
    assert "reported top1 40.982 (" in lines[0] and "reported" not in lines[1]
    assert "skipped 2 unreadable image(s)" in err and "zero.jpg" in err and "cut.jpg" in err
    document = json.loads(results.read_text())
    rows = document["results"]
    assert [r["img_size"] for r in rows] == [160, 192]
    assert all(r["count"] == 12 and r["bad_images"] == 2 for r in rows)
    assert rows[0]["reported_top1"] == 40.982 and rows[0]["top1_diff"] == round(rows[0]["top1"] - 40.982, 4)
    assert rows[0]["tag"] == "r160_in1k" and rows[0]["weights"] == str(checkpoint)
    assert sorted(Path(b["image"]).name for b in document["bad_images"]) == ["cut.jpg", "zero.jpg"]
    assert 0 <= rows[0]["top1"] <= rows[0]["top5"] <= 100 and rows[0]["loss"] > 0


def test_csv_results_and_limit(capsys, tmp_path, checkpoint, val_folder):
    results = tmp_path / "results.csv"
    code, out, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint,
                               "--data", val_folder, "--limit", 7, "--crop-pct", 1.0, "--workers", 0,
                               "--results-file", results)
    assert code == 0, err
    (row,) = list(csv.DictReader(results.open()))
    assert (row["img_size"], row["crop_pct"], row["tag"], row["reported_top1"]) == ("160", "1.0", "", "")
    assert int(row["count"]) + int(row["bad_images"]) == 7
    assert len([p for p in row["bad_image_list"].split("; ") if p]) == int(row["bad_images"])


def test_plain_log_lines_when_not_a_terminal(capsys, checkpoint, val_folder):
    code, _, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint, "--data", val_folder,
                             "--batch-size", 4, "--workers", 0)
    assert code == 0
    progress = [line for line in err.splitlines() if line.startswith("test_vit @ 160: ")]
    assert progress and progress[-1].startswith("test_vit @ 160: 14/14 images, ")


def test_strict_makes_an_unreadable_image_fatal(capsys, checkpoint, val_folder):
    code, out, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint,
                               "--data", val_folder, "--strict", "--workers", 0)
    assert code == 2 and out == ""
    last = err.splitlines()[-1]  # after the progress lines
    assert last.startswith("visionzoo validate: error: unreadable image ")
    assert last.endswith("--strict it is skipped)")


@pytest.mark.parametrize("make_data,message", [
    (lambda root: root / "missing", "data path .*missing does not exist"),
    (lambda root: root, "no images found in"),
    (lambda root: synset_folder(root / "cats", ["cat"], 1),
     r"'cat' is not one of the model's ImageNet-1k classes \(named by synset id"),
    (lambda root: synset_folder(root / "far", ["1000"], 1),
     "label 1000 is outside the model's classes 0..999"),
])
def test_data_errors_are_one_line(capsys, tmp_path, checkpoint, make_data, message):
    code, out, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint, "--data",
                               make_data(tmp_path), "--workers", 0)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("visionzoo validate: error: ")
    assert re.search(message, err), err


def test_a_size_the_model_cannot_take_is_a_one_line_error(capsys, checkpoint, val_folder):
    code, _, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint, "--data", val_folder,
                             "--img-size", 150, "--workers", 0)
    assert code == 2 and err.count("\n") == 1
    assert "test_vit takes input sizes that are multiples of 16, not 150; try 160 or 144" in err
    code, _, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint, "--data", val_folder,
                             "--img-size", 8, "--workers", 0)
    assert code == 2 and "test_vit needs inputs of at least 16 pixels (its total stride), not 8" in err


def test_results_file_must_be_json_or_csv(capsys, checkpoint, val_folder):
    code, _, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint, "--data", val_folder,
                             "--results-file", "out.txt")
    assert code == 2 and "--results-file must end in .json or .csv" in err


def _run_validate(command: list[str], results: Path, data: Path, checkpoint: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    args = ["validate", "--model", "test_vit.r160_in1k", "--checkpoint", str(checkpoint), "--data", str(data),
            "--img-size", "160", "176", "--batch-size", "3", "--workers", "0", "--device", "cpu",
            "--results-file", str(results), "--per-class", str(results.with_suffix(".classes.csv"))]
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(results.read_text())
    for row in document["results"]:
        del row["images_per_sec"]
    document["per_class"] = results.with_suffix(".classes.csv").read_text()
    return document


def test_two_process_torchrun_equals_the_single_process_result(tmp_path, checkpoint, val_folder):
    single = _run_validate([sys.executable, "-m", "visionzoo"], tmp_path / "single.json", val_folder,
                           checkpoint)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "visionzoo"]
    sharded = _run_validate(torchrun, tmp_path / "sharded.json", val_folder, checkpoint)
    assert [r["count"] for r in single["results"]] == [12, 12]
    assert single["results"][0]["ece"] is not None and single["per_class"].count("\n") == 1 + 2 * 4
    assert sharded == single  # top-1/5, NLL, ECE and its bins, per-class counts


def test_images_of_other_modes_and_a_labels_file(capsys, tmp_path, checkpoint):
    for i, mode in enumerate(["L", "P", "RGBA", "CMYK"]):
        write_image(tmp_path / "flat" / f"{i}.{'jpg' if mode in ('L', 'CMYK') else 'png'}", mode=mode, seed=i)
    (tmp_path / "labels.txt").write_text("0.jpg,1\n1.png,n01440764\n2.png,3\n3.jpg,4\n")
    code, out, err = _validate(capsys, "--model", "test_vit", "--checkpoint", checkpoint, "--data",
                               tmp_path / "flat", "--labels", tmp_path / "labels.txt", "--workers", 0)
    assert code == 0, err
    assert " on 4 images, " in out
