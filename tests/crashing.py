"""A decoder that crashes, as libheif does on some damaged HEICs: for the guard's tests (the
`crashing_children` fixture of conftest.py starts processes that load it)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# An ISO file (a `ftyp` box first, as a HEIC's) of a brand no real decoder knows.
CRASHING = b"\0\0\0\x10ftypcrsh\0\0\0\0" + bytes(64)
# A TIFF's header (its first directory's offset next), then the same mark.
CRASHING_TIFF = b"II*\0\x10\0\0\0crsh" + bytes(64)

# Pillow's opening of a file made to kill its process with SIGSEGV when the file's bytes 8 to 12 are
# "crsh": CRASHING (as libheif's plug-in did on the damaged HEICs), or CRASHING_TIFF.
_SITE = """
import os, signal
from PIL import Image

_open = Image.open

def _crashing_open(fp, *args, **kwargs):
    head = fp.read(16) if hasattr(fp, "read") else b""
    if head:
        fp.seek(0)
    if head[8:12] == b"crsh":
        os.kill(os.getpid(), signal.SIGSEGV)
    return _open(fp, *args, **kwargs)

Image.open = _crashing_open
"""


def site_with_the_crash(folder: Path) -> Path:
    """A folder whose sitecustomize.py makes Pillow crash on CRASHING: on PYTHONPATH, every Python
    started there does."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITE)
    return folder


@dataclass(frozen=True)
class CrashOn:
    """`then(path, *rest)`, except that the process crashes (SIGSEGV) on a file named `name`: a
    native library's call standing in for one that crashes, sent to a guard process (pickled)."""

    name: str
    then: Callable[..., object]

    def __call__(self, path: Path, *rest: object) -> object:
        if path.name == self.name:
            os.kill(os.getpid(), signal.SIGSEGV)
        return self.then(path, *rest)
