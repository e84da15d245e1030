"""Hugging Face `datasets` on disk: a `save_to_disk` folder (Arrow files listed in state.json) or parquet
shards, with an `image` column (the `Image` feature: encoded bytes, or a path) and a `label` column.

Read with pyarrow alone (the optional `hf` extra), so evaluating such a dataset does not need the
`datasets` library. Labels are matched to the model's classes as `labels.py` says: a `ClassLabel`'s names
(stored with the data) by name where the model has every one of them (ImageNet synsets, a fine-tune's
classes), else its integers as class indices; string labels as names or indices.
"""

from __future__ import annotations

import bisect
import glob
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .image_dataset import ImageDataset
from .labels import ModelClasses, match_labels

if TYPE_CHECKING:
    from PIL import Image

IMAGE_COLUMN = "image"
LABEL_COLUMN = "label"


def find_arrow_files(path: Path) -> list[Path]:
    """The data files of a `save_to_disk` folder, or the parquet shards under a folder (sorted); [] if
    none."""
    state = path / "state.json"
    if state.is_file():
        try:
            files = [path / f["filename"] for f in json.loads(state.read_text())["_data_files"]]
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{state} is not a Hugging Face datasets state file: {error}") from None
        return files
    return sorted(path.rglob("*.parquet"))


def _require_pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DataError("reading Hugging Face datasets or parquet needs pyarrow: "
                        "pip install 'visionzoo[hf]'") from None


class ArrowShard:
    """One Arrow or parquet file, opened lazily in the process that reads it (loader workers included)."""

    def __init__(self, path: Path):
        self.path = path
        self._table = None  # Arrow: the whole memory-mapped table; parquet: (row-group index, its table)
        self._parquet = None
        self._group_starts: list[int] | None = None

    def close(self) -> None:
        """Drop the open file; the next read reopens it (in whichever process makes it)."""
        self._table = None
        self._parquet = None

    def __getstate__(self) -> dict:
        # File handles do not cross process boundaries; each worker reopens the file.
        return {"path": self.path, "_table": None, "_parquet": None, "_group_starts": None}

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix == ".parquet"

    def arrow_table(self):
        if self._table is None:
            import pyarrow as pa

            with pa.memory_map(str(self.path)) as source:
                try:
                    self._table = pa.ipc.open_stream(source).read_all()
                except pa.ArrowInvalid:
                    self._table = pa.ipc.open_file(source).read_all()
        return self._table

    def parquet_file(self):
        if self._parquet is None:
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetFile(str(self.path))
            metadata = self._parquet.metadata
            starts, total = [], 0
            for group in range(metadata.num_row_groups):
                starts.append(total)
                total += metadata.row_group(group).num_rows
            self._group_starts = starts
        return self._parquet

    def schema(self):
        return self.parquet_file().schema_arrow if self.is_parquet else self.arrow_table().schema

    def column(self, name: str) -> list:
        if self.is_parquet:
            return self.parquet_file().read(columns=[name]).column(name).to_pylist()
        return self.arrow_table().column(name).to_pylist()

    def image_cell(self, row: int):
        """The image column's value at `row`: a dict with 'bytes'/'path', or raw bytes."""
        if not self.is_parquet:
            return self.arrow_table().column(IMAGE_COLUMN)[row].as_py()
        parquet = self.parquet_file()
        group = bisect.bisect_right(self._group_starts, row) - 1
        # Loader workers read consecutive rows: keep the last row group instead of re-reading it per image.
        if self._table is None or self._table[0] != group:
            self._table = (group, parquet.read_row_group(group, columns=[IMAGE_COLUMN]))
        return self._table[1].column(IMAGE_COLUMN)[row - self._group_starts[group]].as_py()


def _stored_label_names(schema) -> list[str] | None:
    """The `ClassLabel` names that `datasets` keeps in the schema metadata, if any."""
    metadata = (schema.metadata or {}).get(b"huggingface")
    if not metadata:
        return None
    try:
        feature = json.loads(metadata)["info"]["features"][LABEL_COLUMN]
    except (ValueError, KeyError, TypeError):
        return None
    names = feature.get("names") if isinstance(feature, dict) else None
    return list(names) if names else None


class ArrowImageDataset(ImageDataset):
    """Rows of Arrow/parquet files with `image` and `label` columns, in file order."""

    def __init__(self, files: list[Path], classes: ModelClasses, transform: Callable | None = None):
        self.shards = [ArrowShard(path) for path in files]
        values, self.starts, declared = [], [], None
        for shard in self.shards:
            names = shard.schema().names
            for column in (IMAGE_COLUMN, LABEL_COLUMN):
                if column not in names:
                    raise DataError(f"{shard.path} has no {column!r} column "
                                    f"(its columns: {', '.join(names)})")
            stored_names = _stored_label_names(shard.schema())
            by_name = stored_names is not None and (
                classes.from_data or (classes.names is not None and set(stored_names) <= set(classes.names)))
            declared = stored_names if by_name else declared
            self.starts.append(len(values))
            for row, value in enumerate(shard.column(LABEL_COLUMN)):
                if value is None:
                    raise DataError(f"{shard.path} row {row}: no label (an unlabelled split cannot be used)")
                if by_name and isinstance(value, int) and 0 <= value < len(stored_names):
                    value = stored_names[value]
                values.append(value)
            shard.close()  # forked loader workers then open their own handles instead of sharing this one
        labels, class_names = match_labels(values, classes, self._row_name, declared=declared,
                                           source=str(files[0].parent))
        super().__init__(labels, transform, class_names)

    def _locate(self, index: int) -> tuple[ArrowShard, int]:
        shard = bisect.bisect_right(self.starts, index) - 1
        return self.shards[shard], index - self.starts[shard]

    def _open(self, index: int) -> Image.Image:
        from PIL import Image

        shard, row = self._locate(index)
        cell = shard.image_cell(row)
        if isinstance(cell, dict):
            if cell.get("bytes"):
                return Image.open(io.BytesIO(cell["bytes"]))
            if cell.get("path"):
                return Image.open(shard.path.parent / cell["path"])
            raise ValueError("image cell has neither bytes nor a path")
        if isinstance(cell, bytes):
            return Image.open(io.BytesIO(cell))
        raise ValueError(f"image cell of type {type(cell).__name__} is not an encoded image")

    def name(self, index: int) -> str:
        shard, row = self._locate(index)
        return f"{shard.path}#{row}"

    def _row_name(self, index: int) -> str:
        shard, row = self._locate(index)
        return f"{shard.path} row {row}"


def arrow_files(path: str | os.PathLike) -> list[Path]:
    """The Arrow/parquet files of a `save_to_disk` folder, a folder of parquet shards, a parquet file or a
    glob of them; DataError if none match or one is missing."""
    _require_pyarrow()
    text = os.fspath(path)
    if any(ch in text for ch in "*?["):
        files = [Path(p) for p in sorted(glob.glob(text))]
        if not files:
            raise DataError(f"no file matches {text}")
    elif Path(text).is_file():
        files = [Path(text)]
    else:
        files = find_arrow_files(Path(text))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"dataset file {missing[0]} is missing")
    return files


def arrow_dataset(path: str | os.PathLike, classes: ModelClasses,
                  transform: Callable | None = None) -> ArrowImageDataset:
    """The Arrow/parquet dataset at `path` (see `arrow_files`)."""
    dataset = ArrowImageDataset(arrow_files(path), classes, transform)
    if len(dataset) == 0:
        raise DataError(f"no rows in {os.fspath(path)}")
    return dataset
