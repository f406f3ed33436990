"""File helpers: replace a file atomically, a file's SHA-256 digest, and a folder's sidecar files."""

from __future__ import annotations

import functools
import hashlib
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def sidecars_in(folder: str | os.PathLike[str], suffix: str) -> dict[str, str]:
    """The names of the files in `folder` whose names end with `suffix` (case aside), by their
    lowercase names: listed once per version of the folder (its modification time, one stat),
    so that looking up each photo's sidecar (Takeout's JSON, an editor's XMP) lists no folder
    again, and asks for no name the folder does not have (on a NAS, network round trips)."""
    try:
        version = os.stat(folder).st_mtime_ns
    except OSError:
        return {}
    return _listed(str(folder), suffix, version)


@functools.lru_cache(maxsize=64)
def _listed(folder: str, suffix: str, version: int) -> dict[str, str]:
    """`sidecars_in(folder, suffix)` as the folder was at modification time `version`."""
    try:
        with os.scandir(folder) as entries:
            return {
                entry.name.lower(): entry.name for entry in entries if entry.name.lower().endswith(suffix)
            }
    except OSError:
        return {}


def file_digest(path: Path, size: int | None = None) -> dict[str, Any]:
    """{"sha256": hex digest, "size": bytes} of a file, or of its first `size` bytes (fewer where
    it is shorter), read in 1 MB blocks."""
    h = hashlib.sha256()
    left = math.inf if size is None else size
    with path.open("rb") as f:
        while left and (block := f.read(int(min(1 << 20, left)))):
            h.update(block)
            left -= len(block)
        return {"sha256": h.hexdigest(), "size": f.tell()}


def replace_atomically(path: Path, write: Callable[[Path], object], *, durable: bool = True) -> None:
    """Write `path` through a temporary file beside it, then rename it into place.

    Readers see the old file or the new one, never half of one. The temporary name is unique
    per writer, so threads or processes writing the same path do not trip over each other.
    `durable` syncs the data to disk before the rename (skip it for caches).
    """
    tmp = _new_file_beside(path)
    try:
        write(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _new_file_beside(path: Path) -> Path:
    """A new empty file with a unique temporary name in `path`'s folder, with the permissions any
    new file gets there (the umask's: tempfile's would be owner-only, and an index built by one
    user could not be served by another)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
