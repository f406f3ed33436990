"""Seekable copies of the videos the app plays, kept on its disk while there is room for them.

A browser seeks in a video by asking for the bytes at that point (HTTP Range requests), which needs
a file of known length whose index comes first. The video route makes such a copy of a video when
it is first played (indexing.video.seekable_copy: its picture and sound as they are, without its
metadata; 22 ms for a 10 MB clip, 0.1–0.2 s for 220 MB, from a local disk) and answers every
request for it from the copy, ranges included. Copies live in a folder of the app's own, readable
by its user alone, removed when the app stops (or, where it was killed, by the next app that makes
copies); the least recently played go when they take more than `room` bytes. A video bigger than
half the room is streamed instead, as it comes, without seeking past what has arrived.

FFmpeg makes the copy in a guard process (indexing.guard): a damaged video that crashed it costs
that video (the visitor is told, and asking again does not try again), not the app. Streaming, for
videos with no room for a copy, runs in the app's process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

from indexing import config
from indexing.errors import BadImage
from indexing.guard import guarded
from indexing.video import seekable_copy


class VideoCopies:
    """The copies (see the module's docstring), made one at a time per video and `at_once` in all."""

    def __init__(self, room: int, at_once: int = 2) -> None:
        self.room = room
        self._lock = threading.Lock()
        self._turns = threading.BoundedSemaphore(at_once)
        self._making: dict[str, threading.Lock] = {}
        self._sizes: OrderedDict[str, int] = OrderedDict()  # least recently played first
        self._folder: Path | None = None
        self._damaged: dict[str, BadImage] = {}  # videos whose copy crashed FFmpeg, by name

    def copy_of(self, path: Path) -> Path | None:
        """The seekable copy of the video at `path`, made now if it is not there yet; None for a
        video bigger than half the room, or one whose copy the disk could not hold (the caller
        streams it). Raises BadImage for a video a browser cannot play, or unreadable, or whose
        copy crashed FFmpeg (then again at once, when asked again, without another try)."""
        try:
            stat = path.stat()
        except OSError:
            return None  # the caller's own read says why
        if stat.st_size > self.room // 2:
            return None
        name = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        with self._lock:
            making = self._making.setdefault(name, threading.Lock())
        with making:  # a second request for the same video waits for the first one's copy
            with self._lock:
                if name in self._damaged:
                    raise self._damaged[name]
                if name in self._sizes:
                    if (copy := self._copy(name)).is_file():
                        self._sizes.move_to_end(name)
                        return copy
                    del self._sizes[name]  # removed behind the app's back (a cleaner of /tmp)
            made: int | None = None
            try:
                with self._turns:
                    made = self._made(path, name)
            finally:
                with self._lock:
                    self._making.pop(name, None)
                    if made is not None:
                        self._sizes[name] = made
                        self._make_room(keep=name)
            return self._copy(name) if made is not None else None

    def _copy(self, name: str) -> Path:
        assert self._folder is not None
        return self._folder / f"{name}.mp4"

    def _made(self, path: Path, name: str) -> int | None:
        """Writes the copy of `path` under `name` (through a temporary name, so that no request
        ever reads half a copy); its size, or None where the disk could not hold it (or the
        copies' folder cannot be made)."""
        try:
            with self._lock:
                folder = self._folder_made()
            fd, temporary = tempfile.mkstemp(suffix=".mp4", dir=folder)
        except OSError:
            return None
        os.close(fd)
        copy = folder / f"{name}.mp4"
        try:
            guarded(seekable_copy, path, Path(temporary), timeout_s=config.VIDEO_COPY_TIMEOUT_S)
            os.replace(temporary, copy)
            return copy.stat().st_size
        except OSError:
            return None
        except BadImage as exc:
            if exc.code != "decoder_crashed":
                raise
            damaged = BadImage(f"a damaged video: {exc}", "video_crashed")
            with self._lock:
                self._damaged[name] = damaged
            raise damaged from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def _make_room(self, keep: str) -> None:
        """Removes the least recently played copies, but `keep`, while all take more than the room."""
        assert self._folder is not None
        total = sum(self._sizes.values())
        for name in list(self._sizes):
            if total <= self.room:
                break
            if name != keep:
                total -= self._sizes.pop(name)
                with contextlib.suppress(FileNotFoundError):
                    (self._folder / f"{name}.mp4").unlink()

    def _folder_made(self) -> Path:
        """The copies' folder, made at the first copy (only its user reads it), and again where it
        went (a cleaner of /tmp), removed at exit; those of apps that were killed before they
        could remove theirs go when it is first made."""
        if self._folder is None or not self._folder.is_dir():
            if self._folder is None:
                _remove_stale()
            self._sizes.clear()  # (none of them is there any more)
            self._folder = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-"))
            weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        return self._folder


_PREFIX = "buscador-videos-"


def _remove_stale() -> None:
    """Removes the copies' folders this user's apps left behind when killed (a `docker stop`, a
    SIGTERM: no exit handler runs): those whose app, named by its process id, is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*-*"):
        pid = folder.name[len(_PREFIX) :].split("-")[0]
        try:
            mine = folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether a process `pid` runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's, or a number no process has: left alone
    return True
