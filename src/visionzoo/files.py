"""Files we write appear whole or not at all, and a folder we write into has one writer.

`atomic_write` writes under a temporary name in the target's folder, fsyncs and renames: a kill at any
moment leaves the previous file or the new one, never a torn one. `FolderLock` holds an exclusive lock on a
folder for a writer's life (released by the kernel if the process dies). `remove_stale_temporaries` deletes
what interrupted writes left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OutputError

LOCK_FILE = ".visionzoo.lock"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(temporary path)` in the folder of `path`, fsync, then rename over `path`.

    An operating-system failure (a full disk, no permission, a read-only file system) raises OutputError
    naming the file; the temporary file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from None
    try:
        # mkstemp makes the file private (0600); the file it becomes gets the mode a plain open() would give
        os.chmod(tmp, 0o666 & ~_umask())
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise OutputError(_cannot_write(path, error)) from None
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the process's umask means setting it: set it straight back
    os.umask(mask)
    return mask


def _cannot_write(path: Path, error: OSError) -> str:
    blocking = next((p for p in path.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        return f"cannot write {path}: {blocking} is a file, not a folder"
    reason = os.strerror(error.errno) if error.errno else str(error)
    advice = "; free some space and run again" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"cannot write {path}: {reason.lower()}{advice}"


def _fsync_dir(folder: Path) -> None:
    # The rename itself is durable only once the folder's entry is on disk (POSIX).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def check_writable(path: str | os.PathLike, what: str = "output file") -> Path:
    """Raise OutputError now, before any work, if a file could not be written at `path` later: its folder
    cannot be created or written, or `path` is a folder."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder; give a file name")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {what} {path}: {folder} is not a writable folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"cannot write {what} {path}: permission denied")
    return path


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files interrupted `atomic_write`s left in `folder` and its subfolders (only
    ours: `.NAME.XXXXXXXX.tmp`); returns what was removed. Call it only while holding the folder's lock."""
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


class FolderLock:
    """An exclusive lock on `folder` (a lock file in it, `flock`), held until `release()` or the process
    ends, whatever the way it ends.

    A second writer is refused with OutputError naming the process that holds the lock.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        import fcntl

        self.path = Path(folder) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            raise OutputError(f"{what} {folder} is in use by process {holder}; wait for it to finish or "
                              "give another folder") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def write_folder_atomic(path: str | os.PathLike, fill: Callable[[Path], None],
                        overwrite: bool = False) -> None:
    """Create the folder `path` by calling `fill(temporary folder)` beside it, then renaming it into place.

    An existing `path` is replaced only with `overwrite` (FileExistsError otherwise): it is first renamed
    aside and removed once the new folder is in place, so an interruption leaves the old folder, the new
    one, or neither under `path`, never a mixture.
    """
    import shutil

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as error:
        raise OutputError(_cannot_write(path, error)) from None
    old = None
    try:
        fill(tmp)
        for entry in tmp.iterdir():
            if entry.is_file():
                with open(entry, "rb+") as f:
                    os.fsync(f.fileno())
        _fsync_dir(tmp)
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
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
