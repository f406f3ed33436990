"""Keeps a running app on the newest build of its index, without a restart.

A local index folder that a build has written again (its manifest, which a build writes last, has
changed and no build holds the folder), or a newer commit of the Hub repository the index was
pulled from, is opened beside the index being served and swapped in once it is ready: visitors
never wait for it, and one that cannot be opened (another model, unfinished, mixed files) is
logged and left alone while the served index keeps answering.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from indexing.errors import BuscadorError, DiskError, disk_problem
from indexing.search import Searcher
from indexing.store import MANIFEST, build_running

log = logging.getLogger(__name__)

# Opens the index in a folder, with a fetcher for the thumbnail shards it lacks (a pulled index).
Opener = Callable[[Path, Callable[[str], Path | None] | None], Searcher]


class FolderWatch:
    """Finds a new build written into a local index folder."""

    def __init__(self, folder: Path, open_index: Opener) -> None:
        self.folder = folder
        self.open_index = open_index
        self.seen = _stamp(folder / MANIFEST)

    def __call__(self) -> Searcher | None:
        """The folder's index, opened, when a build has finished writing it since the last look."""
        stamp = _stamp(self.folder / MANIFEST)
        if stamp is None or stamp == self.seen or build_running(self.folder):
            return None  # unchanged, or a build is still writing it: look again next time
        self.seen = stamp  # a build that cannot be opened is reported once, not at every look
        return self.open_index(self.folder, None)


class HubWatch:
    """Finds a newer commit of the Hub repository an index was pulled from, and pulls it."""

    def __init__(self, repo: str, revision: str | None, open_index: Opener) -> None:
        self.repo = repo
        self.revision = revision
        # The commit served; a pulled index's folder in the Hub cache is named after it.
        self.commit: str | None = None
        self.open_index = open_index

    def __call__(self) -> Searcher | None:
        """The index of the repository's newest commit, pulled and opened, when there is a newer one."""
        from indexing.hub import latest_commit, pull_index, thumbnail_fetcher

        if self.commit is not None and self.revision == self.commit:
            return None  # pinned to a commit: nothing newer can come
        commit = latest_commit(self.repo, revision=self.revision)
        if commit == self.commit:
            return None
        folder = pull_index(self.repo, revision=commit)  # a failed pull is tried again next time
        self.commit = commit  # one that cannot be opened is reported once, not at every look
        return self.open_index(folder, thumbnail_fetcher(self.repo, folder))


def keep_fresh(refresh: Callable[[], object], every: float, stop: threading.Event) -> None:
    """Calls `refresh` every `every` seconds on a daemon thread until `stop` is set (never when
    `every` is 0)."""
    if every <= 0:
        return

    def loop() -> None:
        while not stop.wait(every):
            try:
                refresh()
            except Exception:  # a bug here must not stop the app from looking again later
                log.exception("looking for a newer index failed")

    threading.Thread(target=loop, name="index-refresh", daemon=True).start()


def newer_or_none(watch: Callable[[], Searcher | None]) -> Searcher | None:
    """`watch()`, with a problem (the Hub unreachable, a build that cannot be served) logged and
    taken as "nothing newer to serve"."""
    try:
        return watch()
    except BuscadorError as exc:
        log.warning("a newer index could not be opened, still serving the one before: %s", exc)
    except DiskError as exc:  # a full disk while pulling, a catalog the disk failed to read
        log.warning("a newer index could not be opened, still serving the one before: %s", disk_problem(exc))
    return None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written again (atomically: a new inode), or None if absent."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
