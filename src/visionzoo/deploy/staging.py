"""Write an exported file whole or not at all: build it in a staging folder beside the target, then rename.

An ONNX file past 2 GB keeps its weights in a side file that the .onnx names. Two files cannot be replaced in
one step, so the side file gets a name of its own per export (`model.onnx.<token>.data`): it is moved in
first (replacing nothing), then the .onnx is renamed over the old one (the switch), then the old side file
is deleted. A kill at any point leaves the old pair or the new pair whole, plus at most an unreferenced side
file, which the next export to that path deletes, with staging folders whose process is gone.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

_STAGE_MARK = ".tmp-"


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # not every platform opens folders
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def onnx_side_files(path: Path) -> set[str]:
    """The external-data file names an ONNX file refers to (empty if it has none or cannot be read)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 -- a missing or foreign file refers to nothing we own
        return set()
    names = set()
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                names.add(entry.value)
    return names


def _rename_side_file(onnx_path: Path, new_name: str) -> None:
    """Point every external tensor of the ONNX file at `new_name` and rename its side file to it."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    old_names = set()
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                old_names.add(entry.value)
                entry.value = new_name
    (old,) = old_names  # torch's exporter writes one side file
    os.replace(onnx_path.parent / old, onnx_path.parent / new_name)
    onnx.save(proto, str(onnx_path))


class StagedFile:
    """`with StagedFile(target) as staged:` write `staged.path`, then `staged.commit()` to put it in place.

    Leaving the block without `commit()` (an error) removes everything staged; the target is untouched.
    """

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        stage = f".{self.target.name}{_STAGE_MARK}{os.getpid()}-{secrets.token_hex(4)}"
        self.folder = self.target.parent / stage
        self.path = self.folder / self.target.name
        self.side_file: Path | None = None
        self.committed = False

    def __enter__(self) -> StagedFile:
        self._clean_leftovers()
        self.folder.mkdir()
        return self

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _clean_leftovers(self) -> None:
        """Staging folders of dead processes, and side files the current target does not refer to."""
        prefix = f".{self.target.name}{_STAGE_MARK}"
        for stale in self.target.parent.glob(f"{prefix}*"):
            pid = stale.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        if self.target.suffix == ".onnx":
            referenced = onnx_side_files(self.target) if self.target.is_file() else set()
            for side in self.target.parent.glob(f"{self.target.name}.*.data"):
                if side.name not in referenced:
                    side.unlink(missing_ok=True)

    def commit(self) -> Path:
        """Move the staged file (and its side file) to the target; returns the target."""
        staged_side = [p for p in self.folder.iterdir() if p.name != self.target.name]
        old_side = onnx_side_files(self.target) if self.target.suffix == ".onnx" and self.target.is_file() \
            else set()
        if staged_side:
            side_name = f"{self.target.name}.{secrets.token_hex(4)}.data"
            _rename_side_file(self.path, side_name)
            _fsync(self.folder / side_name)
            os.replace(self.folder / side_name, self.target.parent / side_name)
            self.side_file = self.target.parent / side_name
        _fsync(self.path)
        os.replace(self.path, self.target)
        _fsync_folder(self.target.parent)
        for name in old_side - ({self.side_file.name} if self.side_file else set()):
            if name.startswith(self.target.name):  # ours; a side file of another name may be shared
                (self.target.parent / name).unlink(missing_ok=True)
        self.committed = True
        return self.target
