"""`visionzoo train` end to end on the digits: the files a run writes, loading its weights everywhere,
and the one-line errors (existing output, resuming another run, option values named by their flags)."""

import csv
import json

import pytest
import torch
import yaml

import visionzoo
from visionzoo.cli.main import main
from visionzoo.train.checkpoint import load_state

TINY_RUN = ["--model", "test_vit", "--num-classes", "10", "--img-size", "32", "--epochs", "1", "--batch-size",
            "64", "--opt", "adamw", "--lr", "2e-3", "--scale", "0.6", "1", "--hflip", "0", "--workers", "0",
            "--ema", "0.9", "--seed", "1"]


@pytest.fixture(scope="module")
def tiny_run(digits, tmp_path_factory):
    """One epoch of test_vit on the digits (22 updates)."""
    train, val = digits
    output = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", *TINY_RUN, "--data", str(train), "--val-data", str(val),
                 "--output", str(output)]) == 0
    return output


def test_a_run_writes_its_record_and_weights(tiny_run):
    args = yaml.safe_load((tiny_run / "args.yaml").read_text())
    assert args["model"] == "test_vit" and args["num_classes"] == 10 and args["lr"] == 2e-3
    assert args["torch_version"] == str(torch.__version__)
    assert args["visionzoo_version"] == visionzoo.__version__
    assert args["command"].startswith("visionzoo train --model test_vit --data ")
    assert "--num-classes 10 --img-size 32 --scale 0.6 1.0 --hflip 0.0" in args["command"]
    assert args["global_batch"] == 64 and args["world_size"] == 1
    rows = list(csv.DictReader((tiny_run / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["epoch"] == "1" and rows[0]["step"] == "22"
    # twice chance after one epoch (seeds 1-3 give 28-39%, whichever input path draws the crops)
    assert float(rows[0]["eval_top1"]) > 20 and rows[0]["ema_eval_top1"] != ""
    assert (tiny_run / "curves.png").read_bytes().startswith(b"\x89PNG")
    for name in ("last/model.safetensors", "last/ema.safetensors", "best/model.safetensors", "checkpoint.pt"):
        assert (tiny_run / name).is_file(), name
    state = load_state(tiny_run)
    assert (state["step"], state["epoch"], state["position"]) == (22, 1, 0)


def test_the_weights_load_as_they_are(tiny_run, digits, capsys):
    model = visionzoo.create_model("test_vit", checkpoint_path=tiny_run / "last" / "model.safetensors",
                                   num_classes=10, img_size=32)
    assert model.num_classes == 10
    state = load_state(tiny_run)
    assert all(torch.equal(v, state["model"][k]) for k, v in model.state_dict().items())
    # validate and predict find the class count in the file
    rows = list(csv.DictReader((tiny_run / "summary.csv").open()))
    best = max(float(rows[0]["eval_top1"]), float(rows[0]["ema_eval_top1"]))
    capsys.readouterr()
    best_file = str(tiny_run / "best" / "model.safetensors")
    assert main(["validate", "--model", "test_vit", "--checkpoint", best_file, "--data", str(digits[1]),
                 "--img-size", "32", "--workers", "0"]) == 0
    assert f"top1 {best:.3f}" in capsys.readouterr().out
    image = next(digits[1].glob("7/*.png"))
    assert main(["predict", str(image), "--model", "test_vit", "--checkpoint",
                 str(tiny_run / "best" / "model.safetensors"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["topk"]) == 5


def test_an_existing_run_is_not_overwritten(tiny_run, digits, capsys):
    before = (tiny_run / "summary.csv").read_text()
    args = ["train", *TINY_RUN, "--data", str(digits[0]), "--output", str(tiny_run)]
    assert main(args) == 2
    assert "already holds files; pass --resume" in capsys.readouterr().err
    assert (tiny_run / "summary.csv").read_text() == before


def test_overwrite_replaces_only_the_run(digits, tmp_path):
    output = tmp_path / "run"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    (output / "summary.csv").write_text("stale")
    assert main(["train", *TINY_RUN, "--epochs", "1", "--data", str(digits[0]), "--output", str(output),
                 "--overwrite", "--batch-size", "256"]) == 0
    assert (output / "notes.txt").read_text() == "mine"
    assert (output / "summary.csv").read_text().startswith("epoch,step")


@pytest.mark.parametrize("extra, message", [
    (["--model", "test_efficientnet"], "is a run of model='test_vit', not 'test_efficientnet'.*architecture"),
    (["--num-classes", "7"], "is a run of num_classes=10, not 7.*class count"),
    (["--epochs", "5"], "scheduled for 1 epochs"),
])
def test_resume_refuses_another_run(tiny_run, capsys, extra, message):
    import re

    assert main(["train", "--resume", str(tiny_run), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err


def test_resume_from_a_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip")
    assert main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read training checkpoint" in err and "corrupt" in err


def test_options_from_a_config_file_and_flags(digits, tmp_path):
    """LAMB, step schedule with warmup, layer decay, gradient accumulation and clipping, bf16 autocast,
    channels-last and --keep, from a TOML file whose values the flags override."""
    (tmp_path / "run.toml").write_text('model = "test_byobnet"\nopt = "lamb"\nlr = 0.5\nsched = "step"\n'
                                       'decay_epochs = 1\nwarmup_epochs = 0.5\nlayer_decay = 0.8\n'
                                       'grad_accum = 2\nclip_grad = 1.0\nkeep = 2\nnum_classes = 10\n')
    output = tmp_path / "run"
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--lr", "2e-3", "--epochs", "2",
                 "--batch-size", "128", "--img-size", "32", "--amp", "bf16", "--channels-last",
                 "--workers", "0",
                 "--data", str(digits[0]), "--val-data", str(digits[1]), "--output", str(output)]) == 0
    args = yaml.safe_load((output / "args.yaml").read_text())
    assert (args["opt"], args["lr"], args["layer_decay"], args["grad_accum"], args["amp"]) == \
        ("lamb", 2e-3, 0.8, 2, "bf16")
    assert args["global_batch"] == 256
    rows = list(csv.DictReader((output / "summary.csv").open()))
    assert [r["step"] for r in rows] == ["5", "10"]  # 1437 images // 128 = 11 micro-batches -> 5 updates
    assert float(rows[1]["lr"]) == pytest.approx(2e-4)  # one step decay after the first epoch
    assert sorted(p.name for p in output.glob("epoch-*")) == ["epoch-001", "epoch-002"]
    state = load_state(output)
    scales = sorted({g["lr_scale"] for g in state["optimizer"]["param_groups"]})
    assert scales[-1] == 1.0 and scales[0] < 0.8 ** 3  # stem, blocks of four stages, head
    # the run's own record repeats it
    again = tmp_path / "again"
    assert main(["train", "--config", str(output / "args.yaml"), "--epochs", "1",
                 "--output", str(again)]) == 0
    assert yaml.safe_load((again / "args.yaml").read_text())["layer_decay"] == 0.8


@pytest.mark.parametrize("extra, message", [
    ([], "--model, --data and --output must be set"),
    (["--smoothing", "1.5"], "--smoothing must be in [0, 1)"),
    (["--epochs", "2", "--warmup-epochs", "3"],
     "--warmup-epochs + --cooldown-epochs must be at most --epochs (2)"),
    (["--aa", "rand-x9"], "--aa: RandAugment 'rand-x9': unknown section"),
    (["--pretrained", "--checkpoint", "w.safetensors"],
     "--pretrained and --checkpoint both give initial weights"),
    (["--opt", "adamx"], "unknown optimizer 'adamx' (--opt)"),
])
def test_the_library_names_fields_and_the_command_line_its_flags(tmp_path, capsys, extra, message):
    required = ["--model", "test_vit", "--data", str(tmp_path), "--output", str(tmp_path / "run")]
    required = required if extra else []
    assert main(["train", *required, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
