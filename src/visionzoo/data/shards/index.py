"""The shard index: how many samples each shard holds, their keys and labels, and the class names.

The index is a `wids` dataset descriptor (webdataset's indexed format: `wids_version`, and a `shardlist` of
`{"url", "nsamples"}` with URLs relative to the index), with fields of ours that wids ignores:

    {"wids_version": 1, "name": "train", "classes": ["cat", "dog"] | null,
     "shardlist": [{"url": "shard-000000.tar", "nsamples": 2, "filesize": 10240,
                    "keys": ["00000000", "00000001"], "labels": [0, 1]}, ...]}

`classes[i]` names the class whose label is `i` (None: the labels are class indices without names).
`visionzoo shard` writes it as `_index.json` next to the shards; a dataset read from shards uses the index
in their folder if there is one, and otherwise scans each shard once (the scan is cached, see `remote.py`).
A wids descriptor without keys and labels counts the samples but its shards are still scanned once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ...files import write_text_atomic
from .spec import INDEX_NAME, is_url, join, parent_of
from .tar import image_extension, member_names, open_shard, sample_key, sample_label

WIDS_VERSION = 1
Label = int | str


@dataclass(frozen=True)
class ShardEntry:
    """One shard: its location (absolute path or URL), size in bytes, and its samples' keys and labels."""

    url: str
    filesize: int
    keys: tuple[str, ...]
    labels: tuple[Label, ...]

    @property
    def nsamples(self) -> int:
        return len(self.keys)

    def to_json(self, url: str) -> dict:
        return {"url": url, "nsamples": self.nsamples, "filesize": self.filesize, "keys": list(self.keys),
                "labels": list(self.labels)}


@dataclass(frozen=True)
class ShardIndex:
    """An index read from `location`: its shards in order (None where the index lacks keys and labels, so
    the shard must be scanned), their sample counts, and the class names."""

    location: str
    shards: tuple[str, ...]
    entries: dict[str, ShardEntry | None]
    classes: tuple[str, ...] | None
    counts: dict[str, int]


def index_json(entries: Sequence[ShardEntry], classes: Sequence[str] | None, name: str, folder: str) -> str:
    """The index of `entries` (URLs written relative to `folder` where they are inside it)."""
    def relative(url: str) -> str:
        if is_url(url) or not url.startswith(folder.rstrip(os.sep) + os.sep):
            return url
        return os.path.relpath(url, folder)

    document = {"wids_version": WIDS_VERSION, "name": name,
                "classes": list(classes) if classes is not None else None,
                "shardlist": [entry.to_json(relative(entry.url)) for entry in entries]}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n"


def write_index(path: Path, entries: Sequence[ShardEntry], classes: Sequence[str] | None, name: str) -> None:
    """Write the index atomically (a kill leaves the previous index or the new one)."""
    write_text_atomic(path, index_json(entries, classes, name, str(path.parent.absolute())))


def _entry(item: object, folder: str, location: str, number: int) -> tuple[str, int, ShardEntry | None]:
    def bad(what: str) -> DataError:
        return DataError(f"{location} is not a shard index: shardlist entry {number} {what}")

    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise bad("has no \"url\"")
    url = join(folder, item["url"])
    count = item.get("nsamples")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise bad("has no sample count (\"nsamples\")")
    keys, labels, size = item.get("keys"), item.get("labels"), item.get("filesize")
    if keys is None and labels is None:
        return url, count, None
    if not (isinstance(keys, list) and isinstance(labels, list) and len(keys) == len(labels) == count
            and isinstance(size, int) and all(isinstance(key, str) for key in keys)
            and all(isinstance(label, int | str) and not isinstance(label, bool) for label in labels)):
        raise bad(f"({item['url']}) needs \"keys\" and \"labels\" lists of its {count} samples and a "
                  "\"filesize\"")
    return url, count, ShardEntry(url, size, tuple(keys), tuple(labels))


def parse_index(text: str, location: str) -> ShardIndex:
    """The index in `text`, read from `location` (its shard URLs are relative to it)."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise DataError(f"{location} is not a shard index: not JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("shardlist"), list):
        raise DataError(f"{location} is not a shard index: it has no \"shardlist\" (write one with "
                        "visionzoo shard)")
    if document.get("datasets"):
        raise DataError(f"{location}: wids sub-datasets (\"datasets\") are not read; list the shards in "
                        "\"shardlist\"")
    classes = document.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise DataError(f"{location} is not a shard index: \"classes\" must be a list of names")
    folder = parent_of(location)
    items = [_entry(item, folder, location, number) for number, item in enumerate(document["shardlist"])]
    names = tuple(classes) if classes is not None else None
    return ShardIndex(location, tuple(url for url, _, _ in items), {url: entry for url, _, entry in items},
                      names, {url: count for url, count, _ in items})


def scan_shard(local: Path, url: str) -> ShardEntry:
    """Read the keys and labels of the shard `url` (whose local copy is `local`).

    Only the label members are read, not the images. Raises DataError naming the shard and key for a
    sample without a label or an image we read, and for a truncated or damaged tar."""
    tar = open_shard(local, url)
    try:
        keys, labels = [], []
        for sample in range(len(tar)):
            key = sample_key(tar, sample)
            extensions = member_names(tar, sample)
            image_extension(extensions, url, key)
            labels.append(sample_label(tar, extensions, url, key))
            keys.append(key)
        if len(set(keys)) != len(keys):
            seen: set[str] = set()
            twice = next(key for key in keys if key in seen or seen.add(key))
            raise DataError(f"shard {url}: sample key {twice} appears twice, apart; give each sample its own "
                            "key")
        return ShardEntry(url, local.stat().st_size, tuple(keys), tuple(labels))
    finally:
        tar.close()


def cached_scan(local: Path, url: str, folder: Path) -> ShardEntry:
    """`scan_shard`, remembered in `folder` for this shard's location, size and modification time."""
    info = local.stat()
    identity = f"{url}\n{info.st_size}\n{info.st_mtime_ns if not is_url(url) else ''}"
    path = folder / f"{hashlib.sha256(identity.encode()).hexdigest()[:32]}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("identity") == identity:
            _, _, entry = _entry(stored["entry"], parent_of(url), str(path), 0)
            if entry is not None:
                return ShardEntry(url, entry.filesize, entry.keys, entry.labels)
    except (OSError, ValueError, KeyError, DataError):
        pass  # not scanned yet, or a damaged cache file: scan again
    entry = scan_shard(local, url)
    try:
        write_text_atomic(path, json.dumps({"identity": identity, "entry": entry.to_json(url)}))
    except OSError:
        pass  # a cache that cannot be written only costs a scan next time
    return entry


def neighbour_index(shard: str) -> str:
    """Where the index of the folder holding `shard` would be."""
    return join(parent_of(shard), INDEX_NAME)
