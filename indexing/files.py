"""File helpers: replace a file atomically, and a file's SHA-256 digest."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any


def file_digest(path: Path) -> dict[str, Any]:
    """{"sha256": hex digest, "size": bytes} of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"sha256": h.hexdigest(), "size": path.stat().st_size}


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
