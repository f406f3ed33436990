"""Downloads ahead of the decoding: every row in the source's order, a failure kept as its reason."""

from __future__ import annotations

import threading
import time

from indexing import downloads
from indexing.errors import BadImage
from indexing.images import WebFile
from indexing.sources import SourceItem


def _item(key: str, data: bytes | WebFile) -> SourceItem:
    return SourceItem(key, key, key, data)


def test_rows_come_in_order_whatever_order_their_downloads_finish_in(monkeypatch):
    running, most = set(), [0]
    lock = threading.Lock()

    def read_url(url: str) -> bytes:
        with lock:
            running.add(url)
            most[0] = max(most[0], len(running))
        time.sleep(0.05 if url.endswith("/0") else 0.01)  # the first is the slowest
        with lock:
            running.discard(url)
        if url.endswith("/3"):
            raise BadImage("could not download it (HTTP 404 Not Found)", "download_failed")
        return url.encode()

    monkeypatch.setattr(downloads, "read_url", read_url)
    items = [_item(f"r{i}", WebFile(f"https://example.com/{i}")) for i in range(8)] + [_item("local", b"x")]
    out = list(downloads.downloaded(items))
    assert [item.key for item in out] == [f"r{i}" for i in range(8)] + ["local"]
    assert [item.data for item in out[:3]] == [
        b"https://example.com/0",
        b"https://example.com/1",
        b"https://example.com/2",
    ]
    assert out[3].data == WebFile(
        "https://example.com/3", failed="could not download it (HTTP 404 Not Found)"
    )
    assert out[-1].data == b"x"
    assert most[0] > 1  # downloaded side by side


def test_a_build_that_stops_early_leaves_the_rows_ahead_undownloaded(monkeypatch):
    asked = []
    monkeypatch.setattr(downloads, "DOWNLOAD_THREADS", 1)

    def read_url(url: str) -> bytes:
        asked.append(url)
        time.sleep(0.01)
        return b"picture"

    monkeypatch.setattr(downloads, "read_url", read_url)
    rows = downloads.downloaded(_item(f"r{i}", WebFile(f"https://example.com/{i}")) for i in range(200))
    assert next(rows).data == b"picture"
    rows.close()  # an interrupted build
    time.sleep(0.3)  # one thread would have fetched about 30 more
    assert len(asked) <= 3  # the rest were cancelled, not fetched
