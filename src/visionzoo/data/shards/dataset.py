"""Webdataset shards as an indexed `ImageDataset`: sample i is found by its shard and row, in any order.

Random access keeps every guarantee of the folder datasets: the loaders, samplers, validation and training
read it unchanged, and the training order stays a function of (seed, epoch) instead of the order the shards
stream in. Samples are numbered shard by shard, in the order the spec names the shards, each in tar order.
"""

from __future__ import annotations

import bisect
import io
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import DataError
from ..image_dataset import ImageDataset
from ..imagenet import NUM_CLASSES
from ..labels import ModelClasses, match_labels
from .index import ShardEntry, ShardIndex, cached_scan, neighbour_index, parse_index
from .remote import MissingRemote, RemoteCache, read_text
from .spec import is_url, parent_of, resolve_shards
from .tar import MappedShard

if TYPE_CHECKING:
    from PIL import Image


class ShardDataset(ImageDataset):
    """The samples of `entries` (shards with their keys), labelled `labels` (model class indices).

    Remote shards are read from local copies in `cache`. `classes` names the label indices (None: unnamed).
    Each process maps the shards it reads on first use and keeps them: every local shard (a map holds no file
    descriptor), and as many remote ones as the cache holds (a map keeps a removed copy's disk space).
    """

    def __init__(self, entries: Sequence[ShardEntry], labels: Sequence[int],
                 transform: Callable | None = None, classes: Sequence[str] | None = None,
                 cache: RemoteCache | None = None):
        super().__init__(labels, transform)
        self.classes = tuple(classes) if classes is not None else None
        self.shards = tuple(entry.url for entry in entries)
        self.sizes = tuple(entry.filesize for entry in entries)
        # One string per shard rather than one per sample: at ImageNet-12k's 13M samples, per-sample strings
        # would take a gigabyte in every loader worker that touches them.
        self._keys = tuple("\n".join(entry.keys) for entry in entries)
        self.starts = []
        total = 0
        for entry in entries:
            self.starts.append(total)
            total += entry.nsamples
        if total != len(self.labels):
            raise ValueError(f"{len(self.labels)} labels for {total} samples")
        self.cache = cache or RemoteCache.from_environment()
        remote = [size for url, size in zip(self.shards, self.sizes, strict=True) if is_url(url)]
        self.max_mapped = max(2, self.cache.limit // max(remote)) if remote else len(self.shards)
        self._mapped: OrderedDict[int, MappedShard] = OrderedDict()

    def __getstate__(self) -> dict:
        # Maps do not cross process boundaries by pickling: each loader worker maps its own.
        state = dict(self.__dict__)
        state["_mapped"] = OrderedDict()
        return state

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, row in that shard) of sample `index`."""
        if not 0 <= index < len(self.labels):
            raise IndexError(f"sample {index} of {len(self.labels)}")
        shard = bisect.bisect_right(self.starts, index) - 1
        return shard, index - self.starts[shard]

    def _shard(self, shard: int) -> MappedShard:
        mapped = self._mapped.get(shard)
        if mapped is not None:
            self._mapped.move_to_end(shard)
            return mapped
        url, size = self.shards[shard], self.sizes[shard]
        if is_url(url):
            local = self.cache.local_copy(url, size)
        else:
            local = Path(url)
            _check_size(local, url, size)
        mapped = self._mapped[shard] = MappedShard(local, url, self.shard_keys(shard))
        if len(self._mapped) > self.max_mapped:
            self._mapped.popitem(last=False)[1].close()
        return mapped

    def image_bytes(self, index: int) -> tuple[bytes, str]:
        """The encoded image of sample `index` as stored, and its extension (`.jpg`, ...)."""
        shard, row = self.locate(index)
        return self._shard(shard).image(row)

    def _open(self, index: int) -> Image.Image:
        from PIL import Image

        return Image.open(io.BytesIO(self.image_bytes(index)[0]))

    def encoded(self, index: int) -> bytes:
        return self.image_bytes(index)[0]

    def name(self, index: int) -> str:
        shard, row = self.locate(index)
        return f"{self.shards[shard]}#{self.shard_keys(shard)[row]}"

    def shard_keys(self, shard: int) -> tuple[str, ...]:
        """The sample keys of shard number `shard`, in order."""
        return tuple(self._keys[shard].split("\n")) if self._keys[shard] else ()

    def close(self) -> None:
        """Unmap the shards this process has mapped (they are mapped again on the next read)."""
        while self._mapped:
            self._mapped.popitem()[1].close()


def _check_size(local: Path, url: str, size: int) -> None:
    try:
        found = local.stat().st_size
    except FileNotFoundError:
        raise DataError(f"shard {url} does not exist") from None
    if found != size:
        raise DataError(f"shard {url} is {found} bytes but its index says {size}: it is truncated or changed "
                        "since the index was written; copy it again, or write the index again")


def _read_index(location: str, required: bool) -> ShardIndex | None:
    try:
        text = read_text(location)
    except (FileNotFoundError, MissingRemote):
        if required:
            raise DataError(f"shard index {location} does not exist") from None
        return None
    except OSError as error:
        raise DataError(f"cannot read shard index {location}: {error.strerror or error}") from None
    return parse_index(text, location)


def load_entries(spec: str, cache: RemoteCache) -> tuple[list[ShardEntry], tuple[str, ...] | None]:
    """The shards `spec` names with their keys and labels, from the index `spec` is or the index in each
    shard's folder where they have them, else scanned (once: the scan is cached); and the class names the
    indexes give. A sample count an index gives must match the shard's."""
    listing = resolve_shards(spec)
    given = _read_index(listing.index, required=True) if listing.index is not None else None
    shards = given.shards if given is not None else listing.shards
    if not shards:
        raise DataError(f"no shards in {spec}: expected .tar files (a folder of them, a pattern such as "
                        "train-{000000..000127}.tar, a list file or a shard index)")
    neighbours: dict[str, ShardIndex | None] = {}
    entries, class_lists = [], set()
    for shard in shards:
        folder = parent_of(shard)
        if folder not in neighbours:
            neighbours[folder] = _read_index(neighbour_index(shard), required=False)
        known = [index for index in (given, neighbours[folder])
                 if index is not None and shard in index.entries]
        class_lists |= {index.classes for index in known if index.classes is not None}
        entry = next((index.entries[shard] for index in known if index.entries[shard] is not None), None)
        if entry is None:
            local = cache.local_copy(shard) if is_url(shard) else Path(shard)
            if not is_url(shard) and not local.is_file():
                raise DataError(f"shard {shard} does not exist")
            entry = cached_scan(local, shard, cache.folder / "index")
        elif not is_url(shard):
            _check_size(Path(shard), shard, entry.filesize)
        for index in known:
            if index.counts[shard] != entry.nsamples:
                raise DataError(f"shard {shard} holds {entry.nsamples} samples but {index.location} says "
                                f"{index.counts[shard]}; write the index again")
        entries.append(entry)
    if len(class_lists) > 1:
        raise DataError(f"the shards of {spec} come from indexes with different class names; read one "
                        "dataset at a time")
    return entries, next(iter(class_lists), None)


def model_labels(entries: Sequence[ShardEntry], classes: Sequence[str] | None, model: ModelClasses,
                 where: str) -> tuple[list[int], tuple[str, ...] | None]:
    """(model class index of each sample, the names of those indices where known), matched to the model's
    classes as any dataset's labels are (`labels.py`).

    A label is an integer (the position in the index's `classes` where the index names them, else a class
    index) or a name."""
    starts, values, total = [], [], 0
    for entry in entries:
        starts.append(total)
        total += len(entry.keys)
        for key, value in zip(entry.keys, entry.labels, strict=True):
            if classes is not None and isinstance(value, int):
                if not 0 <= value < len(classes):
                    raise DataError(f"shard {entry.url}: sample {key}: label {value} is not one of the "
                                    f"index's {len(classes)} classes 0..{len(classes) - 1}")
                value = classes[value]
            values.append(value)

    def sample(i: int) -> str:
        entry = bisect.bisect_right(starts, i) - 1
        return f"shard {entries[entry].url}: sample {entries[entry].keys[i - starts[entry]]}"

    return match_labels(values, model, sample, declared=classes, source=where)


def shard_dataset(spec: str, classes: ModelClasses | int = NUM_CLASSES, transform: Callable | None = None,
                  cache: RemoteCache | None = None) -> ShardDataset:
    """The webdataset shards `spec` names (see `spec.py`), labelled for a model of `classes` (its classes,
    or its class count: 1000 are ImageNet-1k's).

    Raises DataError for missing, truncated or damaged shards, a sample without a label or an image we
    read, and labels the model cannot take, each naming the shard and sample key."""
    cache = cache or RemoteCache.from_environment()
    entries, index_classes = load_entries(spec, cache)
    model = classes if isinstance(classes, ModelClasses) else ModelClasses.default(classes)
    labels, names = model_labels(entries, index_classes, model, spec)
    if not labels:
        raise DataError(f"the shards of {spec} hold no samples")
    remote = sum(entry.filesize for entry in entries if is_url(entry.url))
    if remote > cache.limit:
        print(f"warning: the remote shards of {spec} ({remote / 2**30:.1f} GiB) do not fit in the shard "
              f"cache ({cache.limit / 2**30:.1f} GiB in {cache.folder}), so some are downloaded again in "
              "every epoch; raise VISIONZOO_SHARD_CACHE_LIMIT", file=sys.stderr)
    return ShardDataset(entries, labels, transform, names, cache)
