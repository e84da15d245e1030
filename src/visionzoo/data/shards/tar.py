"""One shard opened for random access with `wids` (webdataset's indexed reader), checked whole first.

`wids` memory-maps the tar and lists its members; a sample is the run of members sharing a key
(`{key}.jpg`, `{key}.cls`, ...). It does not notice a file cut short (it yields the part of the last member
that is there), so `open_shard` checks that every member lies inside the file and that the tar's
end-of-archive block follows the last one: a shard copied part way is refused instead of read as fewer or
damaged samples.
"""

from __future__ import annotations

import contextlib
import json
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DataError

if TYPE_CHECKING:
    from wids.wids import IndexedTarSamples

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")  # in order of preference when a sample has several
LABEL_EXTENSIONS = (".cls", ".json")
BLOCK = 512  # a tar header, and the unit members are padded to
INSTALL_HINT = "pip install 'visionzoo[shards]'"


def _integrity_problem(members: list[tuple[str, int, int]], local: Path, size: int) -> str | None:
    """Why the tar whose members are (name, header offset, data size) is not whole, or None."""
    end = 0
    for name, offset, length in members:
        end = offset + BLOCK + length
        if end > size:
            return f"its member {name} needs {end} bytes but the file has {size}"
        end = -(-end // BLOCK) * BLOCK
    with open(local, "rb") as handle:
        handle.seek(end)
        marker = handle.read(BLOCK)
    if marker != bytes(BLOCK):
        after = f"after {members[-1][0]}" if members else "at its start"
        return f"no end-of-archive block {after}"
    return None


def open_shard(local: Path, shown: str) -> IndexedTarSamples:
    """The shard at `local` (named `shown` in errors) opened with wids, after checking it is whole.

    Raises DataError for a missing, empty, damaged or truncated file."""
    try:
        from wids.wids import IndexedTarSamples
    except ImportError:
        raise DataError(f"reading webdataset shards needs wids: {INSTALL_HINT}") from None
    try:
        size = local.stat().st_size
    except FileNotFoundError:
        raise DataError(f"shard {shown} does not exist") from None
    if size < BLOCK:
        raise DataError(f"shard {shown} is not a tar file ({size} bytes, less than one tar header); write or "
                        "copy it again")
    try:
        # wids prints a warning for each member without an extension; on stdout it would mix with results
        with contextlib.redirect_stdout(sys.stderr):
            tar = IndexedTarSamples(path=str(local))
    except struct.error:  # wids reads each header whole
        raise DataError(f"shard {shown} is truncated or damaged: it ends inside a tar header; copy or write "
                        "it again") from None
    except (ValueError, UnicodeDecodeError, IndexError, AssertionError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"shard {shown} is not a readable tar file ({reason}); it is damaged or truncated: "
                        "copy or write it again") from None
    members = tar.reader.by_index  # (name, offset, size) of each regular file, as wids parsed them
    problem = _integrity_problem(members, local, size)
    if problem is None and len(tar.reader.by_name) != len(members):
        seen: set[str] = set()
        twice = next(name for name, _, _ in members if name in seen or seen.add(name))
        problem = f"it holds {twice} twice"
    if problem is not None:
        tar.close()
        raise DataError(f"shard {shown} is truncated or damaged: {problem}; copy or write it again")
    return tar


def member_names(tar: IndexedTarSamples, sample: int) -> dict[str, int]:
    """Extension (lower case, with its dot) -> member number, for sample number `sample`."""
    from wids.wids import splitname

    names = tar.reader.by_index
    return {splitname(names[i][0])[1].lower(): i for i in tar.samples[sample]}


def sample_key(tar: IndexedTarSamples, sample: int) -> str:
    from wids.wids import splitname

    return splitname(tar.reader.by_index[tar.samples[sample][0]][0])[0]


def member_bytes(tar: IndexedTarSamples, member: int) -> bytes:
    return tar.reader.get_file(member)[1].getvalue()


def image_extension(extensions, shown: str, key: str) -> str:
    """The sample's image member: the first of `IMAGE_EXTENSIONS` it has; DataError naming what it has."""
    found = next((ext for ext in IMAGE_EXTENSIONS if ext in extensions), None)
    if found is None:
        has = ", ".join(sorted(extensions)) or "nothing"
        raise DataError(f"shard {shown}: sample {key} has no image in a format shards carry "
                        f"({', '.join(IMAGE_EXTENSIONS)}); it has {has}")
    return found


def parse_label(extension: str, data: bytes, shown: str, key: str) -> int | str:
    """The label of a sample from its `.cls` (an integer) or `.json` (a "label" field) member."""
    where = f"shard {shown}: sample {key}"
    try:
        text = data.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise DataError(f"{where}: {key}{extension} is not UTF-8 text") from None
    if extension == ".cls":
        try:
            return int(text)
        except ValueError:
            raise DataError(f"{where}: {key}.cls holds {text[:40]!r}, not an integer class index") from None
    try:
        meta = json.loads(text)
    except ValueError as error:
        raise DataError(f"{where}: {key}.json is not JSON ({error})") from None
    label = meta.get("label") if isinstance(meta, dict) else None
    if isinstance(label, bool) or not isinstance(label, int | str) or label == "":
        got = "no \"label\" field" if label is None else f"label {label!r}"
        raise DataError(f"{where}: {key}.json has {got}; give an integer class index or a class name")
    return label


def sample_label(tar: IndexedTarSamples, extensions: dict[str, int], shown: str, key: str) -> int | str:
    """The label of a sample whose members are `extensions`; DataError if it has none."""
    for extension in LABEL_EXTENSIONS:
        if extension in extensions:
            return parse_label(extension, member_bytes(tar, extensions[extension]), shown, key)
    raise DataError(f"shard {shown}: sample {key} has no label: add {key}.cls (a class index) or {key}.json "
                    "with a \"label\" field")


class MappedShard:
    """A shard's images for random access: the file memory-mapped and, per sample, where its image lies in
    it (as wids listed the members), in a few bytes per sample.

    wids' own reader keeps its whole member listing (most of a megabyte for a thousand samples) and takes tens
    of milliseconds to build it, so a process could keep few shards open, and sampling across many shards
    would rebuild one for nearly every sample. This keeps the listing's result only, and no file descriptor
    (a map stays valid after its file is closed), so a process can keep every shard of a dataset open.
    """

    def __init__(self, local: Path, shown: str, keys: tuple[str, ...]):
        import mmap

        import numpy as np

        tar = open_shard(local, shown)
        try:
            found = [sample_key(tar, sample) for sample in range(len(tar))]
            if tuple(found) != keys:
                first = next((i for i, (a, b) in enumerate(zip(found, keys, strict=False)) if a != b),
                             min(len(found), len(keys)))
                raise DataError(f"shard {shown} changed since its index was written ({len(found)} samples, "
                                f"the index says {len(keys)}; sample {first} differs); write the index again")
            starts, lengths, self.extensions = [], [], []
            for sample, key in enumerate(keys):
                extensions = member_names(tar, sample)
                extension = image_extension(extensions, shown, key)
                _, offset, length = tar.reader.by_index[extensions[extension]]
                starts.append(offset + BLOCK)
                lengths.append(length)
                self.extensions.append(extension)
        finally:
            tar.close()
        with open(local, "rb") as handle:
            self.data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        self.starts, self.lengths = np.asarray(starts, np.int64), np.asarray(lengths, np.int64)
        if self.starts.size and int(self.starts[-1] + self.lengths[-1]) > len(self.data):
            self.close()
            raise DataError(f"shard {shown} changed while it was opened; run again")

    def image(self, sample: int) -> tuple[bytes, str]:
        """The encoded image of row `sample` and its extension."""
        start = int(self.starts[sample])
        return self.data[start:start + int(self.lengths[sample])], self.extensions[sample]

    def close(self) -> None:
        self.data.close()
