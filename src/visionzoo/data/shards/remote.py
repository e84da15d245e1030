"""Remote shards, copied to a local cache folder that is kept under a size limit (least recently used first).

A shard is read by random access, so it is read from a whole local copy: downloaded once into the cache and
opened from there by every loader worker. `http(s)://` is read with the standard library; any other URL
scheme (`s3://`, `gs://`, `hf://`, ...) through `fsspec`, where that protocol's package is installed.

Where and how much: `VISIONZOO_SHARD_CACHE` (default `~/.cache/visionzoo/shards`, under `XDG_CACHE_HOME`
where set) and `VISIONZOO_SHARD_CACHE_LIMIT` (bytes, or with a K/M/G/T suffix in binary units; default
200G), or `RemoteCache(folder, limit)` in the library. The scans of shards that came without an index are
cached under the same folder (`index/`), outside the limit (they are small).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import DataError, UserError
from ...files import atomic_write

CACHE_ENV = "VISIONZOO_SHARD_CACHE"
LIMIT_ENV = "VISIONZOO_SHARD_CACHE_LIMIT"
DEFAULT_LIMIT = "200G"
TIMEOUT_S = 60
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str, what: str = LIMIT_ENV) -> int:
    """'200G', '512M', '1.5T' or a byte count -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise UserError(f"{what}={text!r} is not a size; give bytes or a size such as 200G or 512M")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    """True for a URL other than `file://` (which names a local file)."""
    return bool(_URL.match(text)) and not text.startswith("file://")


def default_cache_folder() -> Path:
    """`VISIONZOO_SHARD_CACHE`, else the visionzoo cache folder's `shards/`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "visionzoo" / "shards"


class MissingRemote(DataError):
    """A URL that names nothing (HTTP 404, no such object)."""


def _open_url(url: str):
    """A readable binary stream of `url` and its length if known; DataError naming the URL on failure."""
    if urlsplit(url).scheme in ("http", "https"):
        import urllib.error
        import urllib.request

        try:
            response = urllib.request.urlopen(url, timeout=TIMEOUT_S)  # noqa: S310 (the scheme is checked)
        except urllib.error.HTTPError as error:
            kind = MissingRemote if error.code == 404 else DataError
            raise kind(f"cannot read {url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DataError(f"cannot read {url}: {reason}") from None
        length = response.headers.get("Content-Length")
        return response, int(length) if length and length.isdigit() else None
    try:
        import fsspec

        opened = fsspec.open(url, "rb").open()
    except FileNotFoundError:
        raise MissingRemote(f"cannot read {url}: no such file") from None
    except ImportError as error:
        raise DataError(f"reading {url} needs a package for its protocol: {error}") from None
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {url}: {error}") from None
    return opened, getattr(opened, "size", None)


def _copy(url: str, stream, expected: int | None, destination: str) -> None:
    import http.client

    written = 0
    with open(destination, "wb") as out:
        while True:
            try:
                chunk = stream.read(1 << 20)
            except (OSError, http.client.HTTPException) as error:
                raise DataError(f"reading {url} failed part way ({error or type(error).__name__}); "
                                "run again") from None
            if not chunk:
                break
            out.write(chunk)  # a write failure (full disk) is atomic_write's OutputError naming the file
            written += len(chunk)
    if expected is not None and written != expected:
        raise DataError(f"reading {url} stopped after {written} of its {expected} bytes; run again")


def read_bytes(url: str) -> bytes:
    """The whole content of a (small) remote file."""
    stream, expected = _open_url(url)
    with stream:
        data = stream.read()
    if expected is not None and len(data) != expected:
        raise DataError(f"reading {url} stopped after {len(data)} of its {expected} bytes; run again")
    return data


def read_text(location: str) -> str:
    """The UTF-8 text of a local file or URL."""
    if not is_url(location):
        return Path(location.removeprefix("file://")).read_text(encoding="utf-8-sig")
    try:
        return read_bytes(location).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{location} is not UTF-8 text") from None


@contextlib.contextmanager
def _flock(path: Path):
    import fcntl

    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class RemoteCache:
    """Local copies of remote shards in `folder`, at most `limit` bytes of them: after a download the least
    recently used copies are removed until the rest fit (never the one just fetched). Safe to share between
    processes and runs: a download holds a lock on its file, and a copy being read stays readable after its
    removal (POSIX keeps an open file until it is closed)."""

    folder: Path
    limit: int

    @classmethod
    def from_environment(cls) -> RemoteCache:
        """The cache `VISIONZOO_SHARD_CACHE` and `VISIONZOO_SHARD_CACHE_LIMIT` describe (or the defaults)."""
        return cls(default_cache_folder(), parse_size(os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT))

    def path_of(self, url: str) -> Path:
        """Where the copy of `url` lives: a hash of the URL (shards of many datasets share names) and the
        URL's file name, for people looking at the folder."""
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return self.folder / f"{digest}-{posixpath.basename(urlsplit(url).path) or 'shard'}"

    def local_copy(self, url: str, size: int | None = None) -> Path:
        """The local copy of `url`, downloaded if missing (or of another size than `size`, the index's)."""
        path = self.path_of(url)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"cannot create the shard cache {self.folder} ({error.strerror}); set "
                            f"{CACHE_ENV} to a writable folder") from None
        with _flock(path.with_name(path.name + ".lock")):
            if path.is_file() and (size is None or path.stat().st_size == size):
                os.utime(path)  # the modification time is the recency the eviction goes by
                return path
            stream, expected = _open_url(url)
            with stream:
                atomic_write(path, lambda tmp: _copy(url, stream, expected, tmp))
        if size is not None and path.stat().st_size != size:
            got = path.stat().st_size
            path.unlink()
            raise DataError(f"shard {url} is {got} bytes but its index says {size}: the shard changed since "
                            "the index was written; write the index again (visionzoo shard)")
        self.evict(keep=path)
        return path

    def copies(self) -> list[Path]:
        """The shard copies in the cache (not locks, temporaries or the index scans)."""
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir()
                if p.is_file() and not p.name.endswith((".lock", ".tmp")) and not p.name.startswith(".")]

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove the least recently used copies until the cache holds at most `limit` bytes; returns them."""
        removed = []
        with _flock(self.folder / ".evict.lock"):
            entries = []
            for path in self.copies():
                with contextlib.suppress(FileNotFoundError):
                    info = path.stat()
                    entries.append((info.st_mtime_ns, path, info.st_size))
            total = sum(size for _, _, size in entries)
            for _, path, size in sorted(entries, key=lambda entry: entry[0]):
                if total <= self.limit:
                    break
                if path == keep:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
                total -= size
        return removed
