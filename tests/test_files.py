"""Writing files whole or not at all, saying why a write failed, and one writer per folder."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from visionzoo.errors import OutputError
from visionzoo.files import (
    FolderLock,
    atomic_write,
    check_writable,
    remove_stale_temporaries,
    write_text_atomic,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "no space left on device; free some space"),
                                          (errno.EROFS, "read-only file system")])
def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, code, reason):
    target = tmp_path / "results.json"
    write_text_atomic(target, "old")

    def fail(tmp):
        Path(tmp).write_text("half")
        raise OSError(code, os.strerror(code))

    with pytest.raises(OutputError, match=f"cannot write {target}: {reason}"):
        atomic_write(target, fail)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_written_file_gets_the_mode_a_plain_write_would(tmp_path):
    write_text_atomic(tmp_path / "atomic.txt", "x")
    (tmp_path / "plain.txt").write_text("x")  # not the 0600 of the temporary file
    assert (tmp_path / "atomic.txt").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


def test_a_write_where_no_folder_can_be_made_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write .*file/out.csv: .*file is a file, not a folder"):
        write_text_atomic(tmp_path / "file" / "out.csv", "x")


def test_check_writable_before_the_work(tmp_path):
    assert check_writable(tmp_path / "new" / "deeper" / "r.json") == tmp_path / "new" / "deeper" / "r.json"
    with pytest.raises(OutputError, match="results file .* is a folder; give a file name"):
        check_writable(tmp_path, "results file")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is not a writable folder"):
        check_writable(tmp_path / "file" / "r.json")


def test_stale_temporaries_are_ours_only(tmp_path):
    (tmp_path / "last").mkdir()
    stale = [tmp_path / ".checkpoint.pt.a1b2c3.tmp", tmp_path / "last" / ".model.safetensors.x9y8.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 10)
    (tmp_path / "user.tmp").write_text("not ours: no leading dot")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert (tmp_path / "user.tmp").exists() and not any(p.exists() for p in stale)


def test_one_writer_per_folder_until_released(tmp_path):
    with FolderLock(tmp_path / "run", "run folder"):
        with pytest.raises(OutputError, match=f"run folder .*run is in use by process {os.getpid()}"):
            FolderLock(tmp_path / "run", "run folder")
    FolderLock(tmp_path / "run").release()  # free again


def test_the_lock_of_a_killed_process_is_released(tmp_path):
    code = ("import sys, time; from visionzoo.files import FolderLock; "
            f"lock = FolderLock({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=SRC))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"in use by process {holder.pid}"):
            FolderLock(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    FolderLock(tmp_path).release()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write(target, lambda tmp: open(tmp, "w").write("old"))

    def half_write(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt  # a kill while writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_write)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]  # no temporary left behind
