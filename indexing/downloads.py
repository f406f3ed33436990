"""A dataset's images named by web address, downloaded ahead of a build's decoding: on daemon
threads, in the source's order, a failed download kept as the reason it failed."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import replace

from indexing.errors import BadImage
from indexing.images import WebFile, read_url
from indexing.sources import SourceItem

# A dataset's images named by web address: downloaded on this many threads (each mostly waits on
# the network: 32 at 100 ms an image give 320 images/s), at most this many rows ahead of the
# decoding (64 photos of 4 MB: 256 MB held).
DOWNLOAD_THREADS = 32
DOWNLOADS_AHEAD = 64


def downloaded(items: Iterable[SourceItem]) -> Iterator[SourceItem]:
    """The items in order, each image a dataset names by web address (only the new and changed
    rows reach here) downloaded on DOWNLOAD_THREADS threads, up to DOWNLOADS_AHEAD rows ahead;
    one that could not be had stays a WebFile that says why, and is skipped with that reason
    where the build decodes it (the next build tries it again)."""
    jobs: queue.SimpleQueue[tuple[str, Future[bytes]] | None] = queue.SimpleQueue()
    threads = 0  # started by the first web address: folders need none
    ahead: deque[tuple[SourceItem, Future[bytes] | None]] = deque()
    try:
        for item in items:
            download = None
            if isinstance(item.data, WebFile):
                while threads < DOWNLOAD_THREADS:
                    threading.Thread(target=_download, args=(jobs,), name="download", daemon=True).start()
                    threads += 1
                download = Future()
                jobs.put((item.data.url, download))
            ahead.append((item, download))
            if len(ahead) > DOWNLOADS_AHEAD:
                yield _with_download(*ahead.popleft())
        while ahead:
            yield _with_download(*ahead.popleft())
    finally:
        for _, download in ahead:  # an interrupted build: what has not started, does not
            if download is not None:
                download.cancel()
        for _ in range(threads):
            jobs.put(None)


def _download(jobs: queue.SimpleQueue[tuple[str, Future[bytes]] | None]) -> None:
    """Download the web files `jobs` asks for, until a None. A daemon thread: an interrupted build
    exits at once, not after a slow server's answers (threads of a ThreadPoolExecutor are waited
    for at exit, up to the 30 s timeout of each download under way)."""
    while (job := jobs.get()) is not None:
        url, download = job
        if download.set_running_or_notify_cancel():
            try:
                download.set_result(read_url(url))
            except Exception as exc:  # BadImage, and anything else for the build to raise, not hang on
                download.set_exception(exc)


def _with_download(item: SourceItem, download: Future[bytes] | None) -> SourceItem:
    """`item` with its image's bytes in place of its web address, or the reason they are not."""
    if download is None:
        return item
    try:
        return replace(item, data=download.result())
    except BadImage as exc:
        return replace(item, data=replace(item.data, failed=str(exc)))
