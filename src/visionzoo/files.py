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
import re
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OutputError, VisionzooError

LOCK_FILE = ".visionzoo.lock"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(temporary path)` in the folder of `path`, fsync, then rename over `path`.

    An operating-system failure (a full disk, no permission, a read-only file system) raises OutputError
    naming the file, also where the writer wrapped it in its own error (see `_system_error`); the temporary
    file is removed.
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
        system = _system_error(error)
        if system is not None:
            raise OutputError(_cannot_write(path, system)) from None
        raise
    _fsync_dir(path.parent)


_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _system_error(error: BaseException) -> OSError | None:
    """The operating-system error behind a failed write: `error` itself, the error it was raised from or
    during (torch.save turns a failed write of a file object into a RuntimeError), or the errno a Rust
    library's message ends with (safetensors: "... No space left on device (os error 28)")."""
    seen = set()
    while error is not None and id(error) not in seen and not isinstance(error, VisionzooError):
        seen.add(id(error))
        if isinstance(error, OSError):
            return error
        found = _RUST_OS_ERROR.search(str(error)) if isinstance(error, Exception) else None
        if found:
            return OSError(int(found[1]), os.strerror(int(found[1])))
        error = error.__cause__ or error.__context__
    return None


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
    """Delete what interrupted writes left in `folder` and its subfolders (only ours: the files and folders
    `.NAME.XXXXXXXX.tmp` of `atomic_write` and `write_folder_atomic`, and a replaced folder
    `.NAME.XXXXXXXX.old`, put back where a kill came between its two renames); returns what was removed.
    Call it only while holding the folder's lock."""
    import shutil

    removed = []
    for path in sorted(Path(folder).rglob(".*.old")):
        if path.is_dir() and _STALE.fullmatch(path.name):
            original = path.with_name(_STALE.fullmatch(path.name)[1])
            if not original.exists():
                os.replace(path, original)
            else:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    for path in sorted(Path(folder).rglob(".*.tmp")):
        if not _STALE.fullmatch(path.name):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        elif path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


# what `tempfile.mkstemp/mkdtemp(prefix=".NAME.", suffix=...)` name: the name, 8 random characters
_STALE = re.compile(r"\.(.+)\.[a-z0-9_]{8}\.(?:tmp|old)")


# The descriptors of the locks this process holds. A forked child (a data-loading worker, a shard writer's
# pool) closes its copies at once: a lock is held by its own process only, and a holder killed with kill -9
# frees it at once, not when its last worker notices.
_HELD: set[int] = set()


def _drop_inherited_locks() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_locks)


class FolderLock:
    """An exclusive lock on `folder` (a lock file in it, `flock`), held until `release()` or this process
    ends, whatever the way it ends (not by the processes it forks).

    A second writer is refused with OutputError naming the process that holds the lock.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        import fcntl

        self.path = Path(folder) / LOCK_FILE
        self._fd = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(_cannot_write(self.path, error)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise OutputError(f"{what} {folder} is in use by process {holder}; wait for it to finish or "
                              "give another folder") from None
        self._fd = fd
        _HELD.add(fd)
        # who holds it, for the message of the next writer (the host too: the folder may be shared)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}".encode(), 0)

    def release(self) -> None:
        if self._fd is not None and self._fd in _HELD:  # (in a forked child it is already closed)
            _HELD.discard(self._fd)
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
        if path.exists() and _exchange(tmp, path):
            old = tmp  # the previous folder, swapped out in one step
        else:
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.rmdir(old)
                os.replace(path, old)
            os.replace(tmp, path)
    except BaseException as error:
        if old is not tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old is not tmp and not path.exists():
            os.replace(old, path)  # put the previous folder back
        system = _system_error(error)
        if system is not None:
            raise OutputError(_cannot_write(path, system)) from None
        raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE), so that no moment leaves `b` missing;
    False where the system or file system cannot (the caller then renames twice, and a kill between the
    renames leaves `.NAME.XXXXXXXX.old`, which `remove_stale_temporaries` puts back)."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
