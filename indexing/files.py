"""File helpers: replace a file atomically, and a file's SHA-256 digest."""

from __future__ import annotations

import hashlib
import os
import tempfile
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
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
