"""The app's start-up: load the CLIP model and find, download or build the index to search.

Never raises for a problem a person can fix: it returns an Engine whose `problem` says what to do,
so the app can start and show that message instead of dying with a traceback.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexing import config, places
from indexing.batching import BatchingEmbedder, BatchingTextEncoder
from indexing.catalog import CATALOG
from indexing.embedder import Embedder, TextEncoderLike
from indexing.errors import BuscadorError, DiskError, disk_problem
from indexing.search import Searcher
from indexing.store import MANIFEST
from ui.refresh import FolderWatch, HubWatch, keep_fresh, newer_or_none

log = logging.getLogger(__name__)

# The sample collection shipped with the repository: what a fresh clone serves.
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples"
# The app's K slider goes up to this; the engine allows more (the CLI's bound).
APP_MAX_K = 50
# A replaced index build keeps serving its thumbnails this long (seconds) after a newer one came in.
RETIRED_SECONDS = 120.0


def _text_encoder(name: str | None, batch_queries: bool) -> TextEncoderLike | None:
    name = config.text_model(name)
    if name is None:
        return None
    from indexing.text_encoder import TextEncoder

    try:
        encoder = TextEncoder(name)
    except BuscadorError as exc:
        log.warning("queries in other languages will use CLIP's own text encoder: %s", exc)
        return None
    encoder.ready_towers()  # OpenVINO's, on an x86-64 CPU: a query 2.5× as fast as in torch
    return BatchingTextEncoder(encoder) if batch_queries else encoder


def _warm_up(embedder: Embedder) -> None:
    """Run texts and an image through the model before the first visitor does: the first call of
    each kind chooses its precision (indexing.precision) and prepares the CPU's kernels, which made
    the first image query take 0.45 s against 0.06 s for the next ones (benchmarks/RESULTS.md)."""
    started = time.perf_counter()
    embedder.ready_towers()  # OpenVINO's, on an x86-64 CPU: an image query 2.3×, a text 1.8× as fast
    embedder.embed_texts(["a photo"])  # one query
    embedder.embed_texts(["a photo", "a dog"])  # queries that arrive together
    embedder.embed_pixels(np.zeros((1, embedder.image_size, embedder.image_size, 3), np.uint8))
    log.info("model ready for queries in %.1f s", time.perf_counter() - started)


def _towns_for(searcher: Searcher | None) -> None:
    """Read the towns' names now when `searcher`'s photos say where they were taken, so that the
    first near: query does not wait for them (1.7 s); at once when they were read before."""
    if searcher is not None and searcher.store.manifest.get("places"):
        places.prepare()


def index_tag(searcher: Searcher) -> str:
    """Names an index build in thumbnail URLs, so a browser never shows a stale thumbnail."""
    return str(searcher.store.manifest["files"][CATALOG]["sha256"][:16])


@dataclass
class Engine:
    """What the app serves: a searcher, or the reason there is none (yet).

    `newer` finds a newer build of the served index, or a first one (ui.refresh); `refresh()`
    swaps it in. The build it replaces still serves its own thumbnails for RETIRED_SECONDS, for
    pages that were answered by it a moment before; then `drop_folder` disposes of its folder.
    """

    searcher: Searcher | None
    problem: str | None = None
    # Results at least this similar to a better one are folded into it, unless a visitor says not.
    duplicate_threshold: float = config.DUPLICATE_THRESHOLD
    newer: Callable[[], Searcher | None] | None = None
    # Whether the app shows the original files of an index of a folder (ui.routes): for an index
    # on this machine, not for a pulled one, whose catalog names files on someone else's.
    originals: bool = False
    # Disposes of a replaced build's folder once it is no longer served (a pulled commit's snapshot).
    drop_folder: Callable[[Path], None] | None = None
    _retired: tuple[Searcher, float] | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def follow_builds(self, every: float) -> None:
        """Look for a newer build every `every` seconds on a thread of its own, until `close()`."""
        keep_fresh(self.refresh, every, self._stop)

    def close(self) -> None:
        """Stop looking for newer builds."""
        self._stop.set()

    def refresh(self) -> bool:
        """Serve a newer build of the index if there is one (or a first one, when the app started
        without an index it could serve); whether it did."""
        self._forget_retired()
        searcher = newer_or_none(self.newer) if self.newer else None
        if searcher is None:
            return False
        _towns_for(searcher)  # on this thread, before visitors reach it
        before = self.searcher
        if before is None:
            self.searcher, self.problem = searcher, None
            log.info("now serving the index: %d images", searcher.store.count)
            return True
        if self._retired:  # a second swap within RETIRED_SECONDS: the oldest goes now
            self._let_go(self._retired[0])
        self._retired = (before, time.monotonic())
        self.searcher = searcher
        log.info(
            "now serving the new build of the index: %d images (%d before)",
            searcher.store.count,
            before.store.count,
        )
        return True

    def searcher_for(self, tag: str) -> Searcher | None:
        """The served build named `tag`, or the one it replaced a moment ago."""
        retired = self._retired  # read once: the refresh thread may let go of it meanwhile
        for searcher in (self.searcher, retired[0] if retired else None):
            if searcher is not None and index_tag(searcher) == tag:
                return searcher
        return None

    def _forget_retired(self) -> None:
        retired = self._retired
        if retired and time.monotonic() - retired[1] > RETIRED_SECONDS:
            self._retired = None
            self._let_go(retired[0])

    def _let_go(self, searcher: Searcher) -> None:
        """Dispose of a replaced build's folder (see `drop_folder`), unless it is still served."""
        folder = searcher.store.dir
        if self.drop_folder and (self.searcher is None or self.searcher.store.dir != folder):
            self.drop_folder(folder)


def start(
    *,
    index_dir: str | os.PathLike[str] | None = None,
    model: str | None = None,
    index_repo: str | None = None,
    revision: str | None = None,
    sample_dir: Path = SAMPLE_DIR,
    batch_queries: bool = False,
    text_model: str | None = None,
    follow_builds: bool = False,
) -> Engine:
    """Load the model and the index: pulled from the Hub when $INDEX_REPO is set, else local.

    A missing local index is built from the sample collection when it is there (with a progress
    bar on the console), so a fresh clone works with one command. With `batch_queries`, queries
    that arrive together share the model's forward passes (`indexing.batching`), as a server wants.
    A second text encoder for other languages (`text_model`, else $TEXT_MODEL) is loaded beside
    CLIP; if it cannot be, the app starts without it and says so in its log. With `follow_builds`,
    a thread looks for a newer build of the index every $INDEX_CHECK_SECONDS and serves it
    (`Engine.refresh`); without, `refresh()` does it when called.
    """
    local = config.index_dir(index_dir)
    repo = config.index_repo(index_repo)
    revision = config.index_revision(revision)
    try:
        every = config.index_check_seconds(pulled=repo is not None) if follow_builds else 0.0
        engine = Engine(None, duplicate_threshold=config.duplicate_threshold())
        embedder = Embedder(model)
    except BuscadorError as exc:
        log.error("%s", exc)
        return Engine(None, str(exc))
    _warm_up(embedder)
    served = BatchingEmbedder(embedder) if batch_queries else embedder
    text_encoder = _text_encoder(text_model, batch_queries)

    def open_index(folder: Path, fetch_shard: Callable[[str], Path | None] | None) -> Searcher:
        return Searcher.open(folder, served, max_k=APP_MAX_K, text_encoder=text_encoder, fetch=fetch_shard)

    try:
        if repo:
            from indexing.hub import drop_other_pulls, drop_pulled, pull_index, thumbnail_fetcher

            engine.newer = watch = HubWatch(repo, revision, open_index)
            engine.drop_folder = drop_pulled
            local = pull_index(repo, revision=revision)  # from the cache when the Hub is unreachable
            watch.commit = local.name
            engine.searcher = open_index(local, thumbnail_fetcher(repo, local))  # shards come when shown
            drop_other_pulls(local)  # what earlier runs served, if the cache outlives the app
        else:
            if not (local / MANIFEST).exists() and sample_dir.is_dir():
                from indexing.build import build_index
                from indexing.sources import FolderSource

                print(
                    f"No index at {local}: indexing the sample collection in {sample_dir} first.", flush=True
                )
                print(build_index(FolderSource(sample_dir), local, embedder).report(), flush=True)
            engine.newer = FolderWatch(local, open_index)
            engine.originals = True
            engine.searcher = open_index(local, None)  # no index there: says what to do
    except BuscadorError as exc:
        engine.problem = str(exc)
    except DiskError as exc:
        engine.problem = disk_problem(exc)
    if engine.problem and engine.newer and every:
        engine.problem += " (this page will serve the index as soon as there is one it can open)"
    if engine.problem:
        log.error("%s", engine.problem)
    else:
        threading.Thread(target=_towns_for, args=(engine.searcher,), name="towns", daemon=True).start()
    engine.follow_builds(every)
    return engine
