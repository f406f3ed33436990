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

# A Pillow plug-in that kills its process with SIGSEGV when it opens CRASHING.
_PLUGIN = """
import os, signal
from PIL import Image, ImageFile

class _Crash(ImageFile.ImageFile):
    format = "CRASH"

    def _open(self):
        os.kill(os.getpid(), signal.SIGSEGV)

Image.register_open("CRASH", _Crash, lambda prefix: prefix[4:12] == b"ftypcrsh")
"""


def site_with_the_crash(folder: Path) -> Path:
    """A folder whose sitecustomize.py loads the plug-in: on PYTHONPATH, every Python started loads it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_PLUGIN)
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
