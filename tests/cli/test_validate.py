"""`visionzoo validate` and the library's `validate` under it: results per size, reported figures, result
files, errors, and the distributed run."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.images import synset_folder, write_image, write_truncated_jpeg
from visionzoo.cli.main import main
from visionzoo.errors import InputSizeError, UserError
from visionzoo.validation import RESULT_FIELDS, ValidationRow, format_row, validate, write_results

SRC = str(Path(__file__).resolve().parents[2] / "src")
SYNSETS = ["n01440764", "n02123045", "n07920052", "n04485082"]


@pytest.fixture(scope="module")
def val_folder(tmp_path_factory):
    root = synset_folder(tmp_path_factory.mktemp("data") / "val", SYNSETS, per_class=3)
    (root / "n02123045" / "zero.jpg").write_bytes(b"")
    write_truncated_jpeg(root / "n07920052" / "cut.jpg")
    return root


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


def test_each_size_takes_the_crop_its_published_figure_was_measured_with():
    import visionzoo
    from visionzoo.validation import data_config_for_size, evaluation_sizes

    cfg = visionzoo.get_pretrained_cfg("mobilenetv4_conv_small.e2400_r224_in1k")
    with torch.device("meta"):
        model = visionzoo.create_model(cfg.name)
    reported = {r.img_size: r for r in cfg.results}
    assert data_config_for_size(model, 224, None, reported).crop_pct == 0.875
    assert data_config_for_size(model, 256, None, reported).crop_pct == 0.95
    assert data_config_for_size(model, 256, None, {}).crop_pct == 0.95  # the tag's test size and crop
    assert data_config_for_size(model, 288, None, reported).crop_pct == 0.875
    assert data_config_for_size(model, 256, 1.0, reported).crop_pct == 1.0
    assert evaluation_sizes(model, None, use_test_size=False) == [224]
    assert evaluation_sizes(model, None, use_test_size=True) == [256]
    assert evaluation_sizes(model, [256, 224, 256], use_test_size=False) == [256, 224]


def test_progress_is_a_bar_on_a_terminal(monkeypatch):
    import io

    from visionzoo.validation import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = Progress(10, "test_vit @ 160", enabled=True)
    progress.update(4, 2, 1)
    progress.bar.refresh()
    progress.close()
    assert "test_vit @ 160:  50%" in terminal.getvalue() and "5/10" in terminal.getvalue()
    assert "top1 50.00" in terminal.getvalue() and "img/s" in terminal.getvalue()


def test_a_forward_pass_that_fails_at_a_size_becomes_a_one_line_error():
    from visionzoo.validation import check_forward

    class Picky(torch.nn.Module):
        def forward(self, x):
            if x.shape[-1] % 3:
                raise RuntimeError("sizes must be multiples of 3\n(a long traceback-like tail)")
            return x

    check_forward(Picky(), 9, torch.device("cpu"), "picky")
    with pytest.raises(InputSizeError, match=r"^picky cannot take 10x10 inputs "
                                             r"\(sizes must be multiples of 3\); choose another size$"):
        check_forward(Picky(), 10, torch.device("cpu"), "picky")


def test_validate_from_python_returns_the_rows_the_command_writes(checkpoint, val_folder, tmp_path):
    seen = []
    result = validate("test_vit.r160_in1k", val_folder, checkpoint_path=checkpoint, img_sizes=[160, 192],
                      batch_size=3, workers=0, device="cpu", on_row=seen.append)
    assert [row.img_size for row in result.rows] == [160, 192] and list(result.rows) == seen
    first = result.rows[0]
    assert isinstance(first, ValidationRow) and first.count == 12 and first.bad_images == 2
    assert (first.tag, first.weights, first.crop_pct) == ("r160_in1k", str(checkpoint), 0.95)
    assert first.reported_top1 == 40.982 and first.top1_diff == round(first.top1 - 40.982, 4)
    assert result.rows[1].reported_top1 is None  # no published figure at 192
    assert format_row(first).startswith("test_vit.r160_in1k @ 160 (crop_pct 0.95, bicubic): top1 ")
    path = tmp_path / "results.json"
    write_results(path, result)
    document = json.loads(path.read_text())
    assert document == result.to_dict() and list(document["results"][0]) == list(RESULT_FIELDS)


def test_validate_refuses_what_it_cannot_do_before_reading_weights(val_folder, tmp_path):
    missing = tmp_path / "missing.safetensors"  # never read: the checks come first
    with pytest.raises(InputSizeError, match="test_vit takes input sizes that are multiples of 16, not 150"):
        validate("test_vit", val_folder, checkpoint_path=missing, img_sizes=[150], workers=0, device="cpu")
    with pytest.raises(UserError, match="pretrained=True or checkpoint_path"):
        validate("test_vit", val_folder)
    with pytest.raises(UserError, match="amp must be one of bf16, fp16"):
        validate("test_vit", val_folder, checkpoint_path=missing, amp="fp8")
