"""A run folder has one writer and survives what stops a run (issue 19): a second run on it is refused
naming the process that holds it; what interrupted writes left is removed on the next start; a full disk
during a checkpoint is one line naming the file, the previous checkpoint intact; Ctrl-C is one line saying
what is kept and the command that resumes it, exit status 130."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from visionzoo.cli.main import main
from visionzoo.errors import Interrupted
from visionzoo.files import LOCK_FILE, FolderLock
from visionzoo.runtime import DistributedContext
from visionzoo.train import checkpoint as checkpoint_module
from visionzoo.train.checkpoint import load_state
from visionzoo.train.engine import interrupted

from .conftest import run_cli
from .test_run_health import TINY, class_folders


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return class_folders(tmp_path_factory.mktemp("folder_data") / "data")


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    output = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--data", str(data), "--output", str(output)]) == 0
    return output


def _last_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_a_second_run_on_a_folder_in_use_is_refused(data, tmp_path, capsys):
    output = tmp_path / "run"
    with FolderLock(output, "run folder"):  # the first run, still going
        assert main(["train", *TINY, "--data", str(data), "--output", str(output)]) == 2
        line = _last_line(capsys)
        assert line == (f"visionzoo train: error: run folder {output} is in use by process {os.getpid()} on "
                        f"{socket.gethostname()}; wait for it to finish or give another folder")
        assert sorted(p.name for p in output.iterdir()) == [LOCK_FILE]  # the second wrote nothing


def test_a_resume_of_a_run_in_use_is_refused(finished_run, capsys):
    before = (finished_run / "checkpoint.pt").read_bytes()
    with FolderLock(finished_run, "run folder"):
        assert main(["train", "--resume", str(finished_run)]) == 2
        assert f"is in use by process {os.getpid()}" in _last_line(capsys)
    assert (finished_run / "checkpoint.pt").read_bytes() == before


def test_a_refused_folder_is_left_as_it_was(data, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["train", *TINY, "--data", str(data), "--output", str(folder)]) == 2
    assert "already holds files; pass --resume" in _last_line(capsys)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]  # no lock file left behind


def test_what_interrupted_writes_left_is_removed_on_resume(finished_run, capsys):
    stale = [finished_run / ".checkpoint.pt.k3j2h1g0.tmp",
             finished_run / "last" / ".model.safetensors.ab12cd34.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 100)
    half_folder = finished_run / ".best.zz99yy88.tmp"  # a model folder being written when killed
    half_folder.mkdir()
    (half_folder / "model.safetensors").write_bytes(b"\0" * 100)
    (finished_run / "notes.tmp").write_text("not ours")
    assert main(["train", "--resume", str(finished_run)]) == 0  # the run had ended: nothing left to train
    err = capsys.readouterr().err
    assert f"removed 3 temporary file(s) that interrupted writes left in {finished_run}" in err
    assert not any(p.exists() for p in [*stale, half_folder]) and (finished_run / "notes.tmp").exists()


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(data, tmp_path, monkeypatch, capsys):
    """The second checkpoint's file is /dev/full: the kernel's ENOSPC through a real torch.save (opened
    plainly: a writer that renames its file into place must never be pointed at a device)."""
    opened = []

    def open_on_full_disk(path, mode="r", *args, **kwargs):
        if os.path.basename(path).startswith(".checkpoint.pt."):
            opened.append(path)
            if len(opened) == 2:
                return open("/dev/full", mode, *args, **kwargs)
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "open", open_on_full_disk, raising=False)
    output = tmp_path / "run"
    args = ["train", *TINY, "--epochs", "2", "--data", str(data), "--output", str(output)]
    assert main(args) == 2
    assert _last_line(capsys) == (f"visionzoo train: error: cannot write {output / 'checkpoint.pt'}: "
                                  "no space left on device; free some space and run again")
    state = load_state(output)  # the first epoch's, whole
    assert (state["epoch"], state["step"]) == (1, 4)
    assert not list(output.rglob("*.tmp"))


def _ctrl_c_as_from_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def test_ctrl_c_says_what_is_kept_and_how_to_resume(data, tmp_path):
    output = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    # the child starts as from a terminal: Ctrl-C neither ignored nor blocked, whatever a library loaded
    # earlier in this test process did to its own signal state (a child inherits both; CI saw one that
    # never received the SIGINT and trained to the end)
    parent_state = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    process = subprocess.Popen([sys.executable, "-m", "visionzoo", "train", *TINY, "--epochs", "200",
                                "--checkpoint-every", "1", "--data", str(data), "--output", str(output)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_ctrl_c_as_from_a_terminal)
    deadline = time.monotonic() + 120
    while not (output / "checkpoint.pt").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, (parent_state, err[-2000:])
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    step = load_state(output)["step"]  # whole, and the one the line names
    assert line == (f"visionzoo train: training interrupted; the last checkpoint in {output} (update {step}) "
                    f"is kept: resume it with `visionzoo train --resume {output}`")
    assert not list(output.rglob("*.tmp"))
    resumed = run_cli(["train", "--resume", str(output), "--epochs", "1"])
    assert resumed.returncode == 2  # a resume is a real one: it refuses to change the run's schedule
    assert "--epochs on resume would change its learning-rate schedule" in resumed.stderr


def test_ctrl_c_before_any_checkpoint_or_under_torchrun(tmp_path):
    assert str(interrupted(tmp_path, None, DistributedContext())) == (
        "training interrupted before its first checkpoint: start it again with overwrite=True (or another "
        "output)")
    group = interrupted(tmp_path / "my run", 12, DistributedContext(rank=1, world_size=4))
    assert not group.shown  # rank 0 says it
    # any number of processes that keeps the global batch resumes it (elastic.py)
    assert str(group).endswith(f"resume it with `torchrun ... -m visionzoo train --resume "
                               f"'{tmp_path}/my run'`")


@pytest.mark.parametrize("command", ["validate", "benchmark", "export", "predict", "train"])
def test_ctrl_c_is_one_line_for_every_command(command, monkeypatch, capsys):
    from visionzoo.cli import main as cli

    module = cli._command_module(command)

    def stopped(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run", stopped)
    argv = {"validate": ["--model", "x", "--data", "d"], "benchmark": ["--model", "x"],
            "export": ["x", "--format", "onnx", "--output", "o.onnx"], "predict": ["i.png", "--model", "x"],
            "train": []}[command]
    assert main([command, *argv]) == 130
    assert capsys.readouterr().err == f"visionzoo {command}: interrupted\n"
    monkeypatch.setattr(module, "run", lambda args: (_ for _ in ()).throw(Interrupted("kept {output}")))
    assert main([command, *argv]) == 130
    assert capsys.readouterr().err == f"visionzoo {command}: kept --output\n"


def _constant_run(data, folder):
    output = folder / "run"
    assert main(["train", *TINY, "--sched", "constant", "--data", str(data), "--output", str(output)]) == 0
    return output


def _edit(args_yaml, key, value):
    lines = args_yaml.read_text().splitlines()
    args_yaml.write_text("\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line
                                   for line in lines) + "\n")


def test_a_resume_applies_the_edits_of_args_yaml_that_can_change(data, tmp_path, capsys):
    output = _constant_run(data, tmp_path)
    _edit(output / "args.yaml", "epochs", 2)
    _edit(output / "args.yaml", "keep", 2)
    capsys.readouterr()
    assert main(["train", "--resume", str(output)]) == 0
    err = capsys.readouterr().err
    assert "resuming with the edit of args.yaml: epochs 1 -> 2" in err
    assert "resuming with the edit of args.yaml: keep 1 -> 2" in err
    assert load_state(output)["epoch"] == 2
    assert "epochs: 2\n" in (output / "args.yaml").read_text()


@pytest.mark.parametrize("key, value, message", [
    ("lr", 0.5, r"args.yaml was edited after the run wrote it \(--lr 0.001 -> 0.5\); a resume cannot change "
                r"--lr, which would make it another run: undo the edit, or start a new run from the file "
                r"with another --output \(see README.md#what-visionzoo-refuses-and-why\)$"),
    ("model", "test_efficientnet", r"\(--model 'test_vit' -> 'test_efficientnet'\)"),
    ("lr", "fast", r"args.yaml: --lr takes a number, got 'fast'$"),
    ("epochs", 1.5, r"args.yaml: --epochs takes a whole number, got 1.5$"),
])
def test_a_resume_refuses_an_edit_it_cannot_apply_and_keeps_it(data, tmp_path, capsys, key, value, message):
    import re

    output = _constant_run(data, tmp_path)
    _edit(output / "args.yaml", key, value)
    edited, checkpoint = (output / "args.yaml").read_text(), (output / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(output)]) == 2
    assert re.search(message, _last_line(capsys))
    # the edit is not overwritten, the run not touched
    assert (output / "args.yaml").read_text() == edited
    assert (output / "checkpoint.pt").read_bytes() == checkpoint


def test_a_resume_refuses_an_unknown_option_in_args_yaml(data, tmp_path, capsys):
    output = _constant_run(data, tmp_path)
    with (output / "args.yaml").open("a") as f:
        f.write("learning_rate: 0.1\n")
    capsys.readouterr()
    assert main(["train", "--resume", str(output)]) == 2
    assert _last_line(capsys).endswith("args.yaml: unknown option 'learning_rate'")
