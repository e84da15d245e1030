"""`visionzoo benchmark`: progress, the table, results files, failures and one-line errors (nothing timed)."""

import csv

import torch

import visionzoo.benchmark as benchmark
from visionzoo.cli.main import main

FAST = ["--warmup", "0", "--runs", "1", "--threads", "1", "--device", "cpu"]


def test_benchmark_prints_progress_and_table_and_writes_csv(tmp_path, capsys):
    out_file = tmp_path / "bench.csv"
    code = main(["benchmark", "--model", "test_vit", "--batch-size", "1", "2", "--precision", "fp32", "bf16",
                 "--train", "--results-file", str(out_file)] + FAST)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[1/1] test_vit @ 160 on cpu" in err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["model", "size", "batch"]
    assert sum(line.startswith("test_vit  160") for line in lines) == 4
    assert "4 of 4 settings measured" in out and "peak memory: cpu peak RSS" in out
    rows = list(csv.DictReader(out_file.open()))
    assert [(r["batch_size"], r["precision"], r["status"]) for r in rows] == [
        ("1", "fp32", "ok"), ("2", "fp32", "ok"), ("1", "bf16", "ok"), ("2", "bf16", "ok")]
    assert all(float(r["train_img_per_s"]) > 0 for r in rows)


def test_a_failing_model_is_reported_and_the_others_are_measured(tmp_path, capsys, monkeypatch):
    measure = benchmark.measure_inference

    def fails_at_384(name, img_size, *args):
        if img_size == 384:
            raise torch.OutOfMemoryError("out of memory")
        return measure(name, img_size, *args)

    monkeypatch.setattr(benchmark, "measure_inference", fails_at_384)
    code = main(["benchmark", "--model", "vit_betwixt_patch16_reg4_gap_384", "test_vit", "--batch-size", "1",
                 "--results-file", str(tmp_path / "r.json")] + FAST)
    out, err = capsys.readouterr()
    assert code == 1
    assert "FAILED: OutOfMemoryError: out of memory" in out
    assert "1 of 2 settings measured" in out
    assert "[2/2] test_vit @ 160" in err
    assert (tmp_path / "r.json").read_text().count('"status": "ok"') == 1


def test_img_size_applies_to_every_model(capsys):
    assert main(["benchmark", "--model", "test_vit", "--batch-size", "1", "--img-size", "96"] + FAST) == 0
    assert "test_vit  96" in capsys.readouterr().out


def test_user_errors_are_one_line_with_the_fix(capsys, monkeypatch, tmp_path):
    cases = [
        (["--model", "test_vitt"], "did you mean test_vit"),
        (["--model", "zzz_*"], "no model matches 'zzz_*'; run `visionzoo models`"),
        (["--model", "test_vit", "--results-file", str(tmp_path / "r.txt")], "name the file .csv or .json"),
        (["--model", "test_vit", "--device", "tpu"], "use cpu or cuda"),
        # refused before any measuring
        (["--model", "test_vit", "--results-file", str(tmp_path / "dir.csv")],
         "is a folder; give a file name"),
        (["--model", "test_vit", "--results-file", str(tmp_path / "r.txt" / "r.csv")],
         "is not a writable folder"),
    ]
    (tmp_path / "r.txt").write_text("a file")
    (tmp_path / "dir.csv").mkdir()
    for args, message in cases:
        assert main(["benchmark"] + args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("visionzoo benchmark: error:") and message in err and "\n" not in err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["benchmark", "--model", "test_vit", "--device", "cuda"]) == 2
    assert "torch sees no CUDA device; use cpu" in capsys.readouterr().err


def test_backends_are_verified_timed_and_recorded_with_the_cpu(tmp_path, capsys):
    import json

    from visionzoo.cli import benchmark as benchmark_cli

    assert not hasattr(benchmark_cli, "BACKENDS")  # one list, in the library
    out_file = tmp_path / "bench.json"
    code = main(["benchmark", "--model", "test_byobnet", "--batch-size", "2", "--img-size", "64",
                 "--backend", "eager", "optimized", "onnxruntime", "--results-file", str(out_file)] + FAST)
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out_file.read_text())["results"]
    assert [r["backend"] for r in rows] == ["eager", "optimized", "onnxruntime"]
    assert rows[0]["setup_s"] is None and all(r["setup_s"] > 0 for r in rows[1:])
    assert all(r["cpu_isa"] and r["native_bf16"] in (True, False) and r["torch_version"] for r in rows)
    assert rows[2]["onnxruntime_version"] and rows[2]["format"] == "onnx" and rows[2]["artifact_mb"] > 0
    assert all(r["cpu_features"] for r in rows)
    assert "native bf16" in out and "1 threads" in out


def test_val_data_gives_each_row_its_top1_and_agreement_with_eager(tmp_path, capsys):
    import json
    import os
    import shutil

    from safetensors.torch import save_file

    import visionzoo
    from tests.cli.test_real_photos import PHOTOS, VALIDATION_SET

    for i, (photo, synset) in enumerate(VALIDATION_SET):
        (tmp_path / "val" / synset).mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(PHOTOS, photo), tmp_path / "val" / synset / f"{i}_{photo}")
    torch.manual_seed(0)
    checkpoint = tmp_path / "byob.safetensors"
    save_file(visionzoo.create_model("test_byobnet").state_dict(), checkpoint)
    out_file = tmp_path / "bench.json"
    base = ["benchmark", "--model", "test_byobnet", "--img-size", "64", "--batch-size", "2", *FAST,
            "--checkpoint", str(checkpoint), "--val-data", str(tmp_path / "val")]
    assert main([*base, "--backend", "eager", "onnxruntime", "int8", "--precision", "fp32", "int8",
                 "--calibration", PHOTOS, "--results-file", str(out_file)]) == 1  # eager and onnx fp32
    rows = {(r["backend"], r["precision"]): r for r in json.loads(out_file.read_text())["results"]}
    eager, onnx, int8 = rows["eager", "fp32"], rows["onnxruntime", "fp32"], rows["int8", "int8"]
    assert rows["eager", "int8"]["status"] == "failed"  # eager runs fp32/bf16: said in the row
    assert "the eager backend runs fp32, bf16, not int8" in rows["eager", "int8"]["error"]
    assert rows["int8", "fp32"]["status"] == "failed"  # the int8 backend is int8 only: not mislabelled
    assert eager["top1_agreement"] == 100.0 and eager["val_images"] == 7
    assert eager["weights"] == str(checkpoint)
    assert onnx["top1"] == eager["top1"] and onnx["top1_agreement"] == 100.0 and onnx["format"] == "onnx"
    assert int8["format"] == "onnx" and int8["top1"] is not None and 0 <= int8["top1_agreement"] <= 100
    assert int8["artifact_mb"] < onnx["artifact_mb"] and "first conv" in int8["float_ops"]
    assert "top-1" in capsys.readouterr().out
    for extra, message in ((["--backend", "int8", "--precision", "int8"], "needs --calibration"),
                           (["--backend", "tensorrt"], "--backend tensorrt: choose from eager")):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    assert main(["benchmark", "--model", "test_byobnet", "--val-data", str(tmp_path / "val")]) == 2
    assert "needs real weights: add --pretrained or --checkpoint" in capsys.readouterr().err
