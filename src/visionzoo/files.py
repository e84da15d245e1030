"""Files that appear whole or not at all: a temporary name in the same folder, fsync, then rename.

A kill, a full disk or an exception at any moment leaves either the previous file (or folder) or the new
one, never a partial one that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(temporary path)` in the folder of `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make the folder's entries (a rename into it) durable (POSIX; a no-op where folders cannot be
    opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_folder_atomic(path: str | os.PathLike, fill: Callable[[Path], None],
                        overwrite: bool = False) -> None:
    """Create the folder `path` by calling `fill(temporary folder)` beside it, then renaming it into place.

    An existing `path` is replaced only with `overwrite` (FileExistsError otherwise): it is first renamed
    aside and removed once the new folder is in place, so an interruption leaves the old folder, the new
    one, or neither under `path`, never a mixture.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        fill(tmp)
        for entry in tmp.iterdir():
            if entry.is_file():
                with open(entry, "rb+") as f:
                    os.fsync(f.fileno())
        fsync_dir(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)  # put the previous folder back
        raise
    fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
