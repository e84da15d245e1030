"""Where the shards of a dataset are: the ways a user names them, resolved to a list of shard locations.

A shard location is an absolute local path or a URL. The forms (each local or a URL, except the folder):
- a brace pattern, `shards/train-{000000..000127}.tar` (one shard is a pattern with no braces);
- a list file: one shard per line, relative to the list's own folder ('#' comments and blank lines skipped);
- a folder holding `.tar` files (all of them, in name order) and no other dataset layout, or one with a
  shard index; a URL ending in `/` is a folder whose index (`_index.json`) lists them;
- a shard index (`.json`, see `index.py`): the shards it lists.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ...errors import DataError
from .remote import is_url, read_text

INDEX_NAME = "_index.json"
SHARD_SUFFIX = ".tar"
LIST_SUFFIXES = (".txt", ".list", ".shards")

def _local(text: str) -> str:
    return urlsplit(text).path if text.startswith("file://") else text


def parent_of(location: str) -> str:
    """The folder (or URL folder) holding `location`."""
    if is_url(location):
        parts = urlsplit(location)
        return urlunsplit(parts._replace(path=posixpath.dirname(parts.path), query="", fragment=""))
    return os.path.dirname(location)


def join(folder: str, name: str) -> str:
    """`name` relative to `folder` (absolute names and URLs are kept as they are)."""
    if is_url(name) or os.path.isabs(name):
        return name
    if is_url(folder):
        parts = urlsplit(folder)
        return urlunsplit(parts._replace(path=posixpath.normpath(posixpath.join(parts.path or "/", name))))
    return os.path.abspath(os.path.join(folder, _local(name)))


def _list_file_lines(path: Path) -> list[str] | None:
    """The shard lines of a list file, or None if `path` is not one (e.g. a labels file)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return lines if lines and all(line.endswith(SHARD_SUFFIX) for line in lines) else None


def is_shard_spec(text: str) -> bool:
    """True if `text` names webdataset shards (rather than another layout `create_dataset` reads)."""
    if is_url(text) or text.endswith(SHARD_SUFFIX) or text.endswith(".json"):
        return True
    path = Path(_local(text))
    if path.is_dir():
        if (path / INDEX_NAME).is_file():
            return True
        # A folder of another layout may hold a stray tar (the archive ImageNet's class folders came from):
        # it is shards only if nothing else is there.
        entries = [entry for entry in os.scandir(path) if not entry.name.startswith(".")]
        others = any(entry.is_dir() or entry.name.endswith((".parquet", ".arrow", ".csv", ".txt", ".json"))
                     for entry in entries)
        return not others and any(entry.name.endswith(SHARD_SUFFIX) and entry.is_file() for entry in entries)
    return path.suffix in LIST_SUFFIXES and path.is_file() and _list_file_lines(path) is not None


@dataclass(frozen=True)
class ShardList:
    """The shards a spec names, in order, and the index the spec itself is (a `.json` spec), if any."""

    shards: tuple[str, ...]
    index: str | None = None


def _expand(pattern: str) -> list[str]:
    from braceexpand import braceexpand

    try:
        return list(braceexpand(pattern))
    except Exception as error:  # an unbalanced or malformed pattern
        raise DataError(f"shard pattern {pattern!r} cannot be expanded ({error}); write ranges as "
                        "{000000..000127}") from None


def resolve_shards(text: str) -> ShardList:
    """The shard locations `text` names (see the module docstring); the list and index files are read
    where needed (`read_text` fetches a URL). Raises DataError for a missing file or folder."""
    if text.endswith(".json"):
        return ShardList((), index=text if is_url(text) else os.path.abspath(_local(text)))
    if is_url(text) and text.endswith("/"):  # a remote folder cannot be listed: its index says what it holds
        return ShardList((), index=text + INDEX_NAME)
    path = Path(_local(text))
    if not is_url(text) and path.is_dir():
        names = sorted(entry.name for entry in os.scandir(path)
                       if entry.name.endswith(SHARD_SUFFIX) and entry.is_file())
        if not names and (path / INDEX_NAME).is_file():
            return ShardList((), index=str((path / INDEX_NAME).absolute()))
        return ShardList(tuple(str((path / name).absolute()) for name in names))
    if text.endswith(SHARD_SUFFIX):
        return ShardList(tuple(join(os.getcwd(), shard) for shard in _expand(text)))
    if not is_url(text) and not path.exists():
        raise DataError(f"data path {path} does not exist")
    lines = _list_file_lines(path) if not is_url(text) else [
        line.strip() for line in read_text(text).splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise DataError(f"shard list {text} lists no .tar files")
    folder = parent_of(text if is_url(text) else str(path.absolute()))
    return ShardList(tuple(join(folder, shard) for line in lines for shard in _expand(line)))
