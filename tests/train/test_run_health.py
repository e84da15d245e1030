"""A run that read nothing or diverged never reports success (issue 19): unreadable training and validation
images are counted and named; an epoch with no readable image, a validation set with none, a loss or
weights that stop being finite stop the run with one line, and nothing after the last good checkpoint is
written."""

import csv
import math

import pytest
import torch
import torch.nn.functional as F

from tests.images import write_image
from visionzoo.cli.main import main
from visionzoo.errors import ConfigError, DataError, TrainingError
from visionzoo.train import TrainConfig, train
from visionzoo.train.checkpoint import load_state
from visionzoo.train.health import check_finite, check_val_outputs

TINY = ["--model", "test_vit", "--num-classes", "2", "--img-size", "32", "--batch-size", "4",
        "--workers", "0", "--epochs", "1", "--opt", "adamw", "--lr", "1e-3"]


def class_folders(root, per_class=8, unreadable=0):
    """Two class folders of `per_class` 32x32 images; the first `unreadable` of each are not images."""
    for c in range(2):
        for i in range(per_class):
            path = write_image(root / f"c{c}" / f"{i}.png", (32, 32), seed=100 * c + i)
            if i < unreadable:
                path.write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("health")
    return {name: class_folders(root / name, unreadable=bad)
            for name, bad in (("good", 0), ("some_bad", 1), ("all_bad", 8))}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("visionzoo train: error: "), err
    return last


def _run_files(output) -> set[str]:
    return {p.name for p in output.iterdir()} if output.exists() else set()


def test_unreadable_training_images_are_counted_and_named(folders, tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folders["some_bad"]), "--val-data", str(folders["good"]),
                 "--output", str(output)]) == 0
    err = capsys.readouterr().err
    assert "note: skipped 2 unreadable training image(s): " in err and "c0/0.png" in err and "c1/0.png" in err
    assert "(2 unreadable images skipped)" in err
    row = next(csv.DictReader((output / "summary.csv").open()))
    assert row["unreadable_images"] == "2" and math.isfinite(float(row["train_loss"]))


def test_unreadable_validation_images_are_named(folders, tmp_path, capsys):
    assert main(["train", *TINY, "--data", str(folders["good"]), "--val-data", str(folders["some_bad"]),
                 "--output", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "note: skipped 2 unreadable validation image(s): " in err and "c1/0.png" in err


def test_an_epoch_that_reads_no_image_stops_the_run(folders, tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folders["all_bad"]), "--val-data", str(folders["good"]),
                 "--output", str(output)]) == 2
    line = _one_line_error(capsys)
    assert "no training image of " in line and "could be read in epoch 1 (16 unreadable, e.g. " in line
    assert line.endswith("check the files of --data")
    # nothing that looks like trained weights
    assert not {"checkpoint.pt", "last", "best", "summary.csv"} & _run_files(output)


def test_a_validation_set_that_reads_no_image_stops_the_run(folders, tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folders["good"]), "--val-data", str(folders["all_bad"]),
                 "--output", str(output)]) == 2
    line = _one_line_error(capsys)
    assert "no image of the validation data" in line and "(16 unreadable, e.g. " in line
    assert line.endswith("check the files of --val-data")
    assert not {"checkpoint.pt", "last", "best", "summary.csv"} & _run_files(output)


@pytest.mark.parametrize("extra, message", [
    (["--lr", "inf"], "--lr must be a finite number, got inf"),
    (["--lr", "nan"], "--lr must be a finite number, got nan"),
    (["--warmup-lr=-inf"], "--warmup-lr must be a finite number, got -inf"),
    (["--opt-betas", "0.9", "nan"], "--opt-betas must be a finite number, got (0.9, nan)"),
])
def test_non_finite_option_values_are_refused_before_the_run(folders, tmp_path, capsys, extra, message):
    output = tmp_path / "run"
    assert main(["train", *TINY, "--data", str(folders["good"]), "--output", str(output), *extra]) == 2
    assert _one_line_error(capsys).endswith(message)
    assert not output.exists()


def test_non_finite_values_from_a_file_or_python_are_refused(tmp_path):
    (tmp_path / "run.yaml").write_text("lr: .inf\n")
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--model", "test_vit", "--data",
                 str(tmp_path), "--output", str(tmp_path / "run")]) == 2
    with pytest.raises(ConfigError, match="^lr must be a finite number, got inf$"):
        TrainConfig(lr=float("inf"))


def test_a_diverging_run_stops_at_the_update_and_writes_no_weights(folders, tmp_path, capsys):
    output = tmp_path / "run"
    assert main(["train", *TINY, "--opt", "sgd", "--lr", "1e30", "--data", str(folders["good"]),
                 "--val-data", str(folders["good"]), "--output", str(output)]) == 2
    line = _one_line_error(capsys)
    assert "training diverged in epoch 1: the loss stopped being finite at update " in line
    assert "no checkpoint had been written; start a new run with a lower --lr, or with --clip-grad" in line
    assert "README.md#what-visionzoo-refuses-and-why" in line
    assert not {"checkpoint.pt", "last", "best", "summary.csv"} & _run_files(output)


def _nan_after(calls: int):
    """Cross-entropy, NaN from the micro-batch after `calls`."""
    seen = []

    def criterion(logits, targets):
        seen.append(1)
        loss = F.cross_entropy(logits, targets)
        return loss * float("nan") if len(seen) > calls else loss

    return criterion


def test_divergence_keeps_the_last_good_checkpoint(folders, tmp_path):
    """4 updates an epoch, a checkpoint after each: update 7 diverges, update 6's checkpoint stays."""
    output = tmp_path / "run"
    config = TrainConfig(model="test_vit", num_classes=2, img_size=32, batch_size=4, workers=0, epochs=3,
                         opt="adamw", lr=1e-3, checkpoint_every=1, data=str(folders["good"]),
                         val_data=str(folders["good"]), output=str(output))
    diverged = (r"^training diverged in epoch 2: the loss stopped being finite at update 7 .*; the last "
                r"checkpoint in .* \(update 6\) is kept; start a new run with a lower lr, or with clip_grad")
    with pytest.raises(TrainingError, match=diverged):
        train(config, criterion=_nan_after(6))
    state = load_state(output)
    assert (state["step"], state["epoch"], state["position"]) == (6, 1, 2)
    assert all(t.isfinite().all() for t in state["model"].values())
    from safetensors.torch import load_file

    last = load_file(output / "last" / "model.safetensors")
    assert all(torch.equal(t, state["model"][k]) for k, t in last.items())
    rows = list(csv.DictReader((output / "summary.csv").open()))
    assert [r["epoch"] for r in rows] == ["1"]  # epoch 2 was never reported


def test_weights_that_stop_being_finite_are_caught_before_they_are_saved(tmp_path):
    model = torch.nn.Linear(2, 2)
    no_bad_loss = torch.full((), -1, dtype=torch.int64)
    check_finite(no_bad_loss, model, step=3, epoch=0, lr=0.1, output=str(tmp_path), saved_step=None)
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(TrainingError, match=r"the weights stopped being finite by update 3 .*; no checkpoint "
                                            r"had been written"):
        check_finite(no_bad_loss, model, step=3, epoch=0, lr=0.1, output=str(tmp_path), saved_step=None)


def test_a_validation_loss_that_is_not_finite_means_outputs_that_are_not(tmp_path):
    check_val_outputs(2.5, step=4, epoch=1, lr=0.1, output=str(tmp_path), saved_step=4)
    with pytest.raises(TrainingError, match=r"in epoch 2: the model's outputs on the validation data are not "
                                            r"finite after update 8 .*\(update 4\) is kept"):
        check_val_outputs(math.nan, step=8, epoch=1, lr=0.1, output=str(tmp_path), saved_step=4)


def test_a_run_on_unreadable_data_raises_in_python(folders, tmp_path):
    config = TrainConfig(model="test_vit", num_classes=2, img_size=32, batch_size=4, workers=0, epochs=1,
                         data=str(folders["all_bad"]), output=str(tmp_path / "run"))
    with pytest.raises(DataError, match=r"check the files of data$"):
        train(config)


@pytest.mark.heavy
def test_an_unreadable_micro_batch_under_torchrun_still_meets_its_peers(tmp_path):
    """Batches of one image, one of them unreadable: its rank has nothing to learn from in that micro-batch
    while its peer does; it must still take part in the gradient all-reduce (it used to wait forever)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data = class_folders(tmp_path / "data", per_class=4)
    (data / "c1" / "2.png").write_bytes(b"not an image")
    output = tmp_path / "run"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    launched = subprocess.run(
        ["timeout", "300", sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
         "2", "-m", "visionzoo", "train", *TINY, "--batch-size", "1", "--data", str(data), "--output",
         str(output)],
        env=env, capture_output=True, text=True)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert launched.stderr.count("note: skipped 1 unreadable training image(s): ") == 1  # rank 0 says it
    row = next(csv.DictReader((output / "summary.csv").open()))
    assert row["unreadable_images"] == "1" and math.isfinite(float(row["train_loss"]))
    assert load_state(output)["step"] == 4
