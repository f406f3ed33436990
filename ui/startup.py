"""The app's start-up: load the CLIP model and find, download or build the index to search.

Never raises for a problem a person can fix: it returns an Engine whose `problem` says what to do,
so the app can start and show that message instead of dying with a traceback.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexing import config
from indexing.batching import BatchingEmbedder, BatchingTextEncoder
from indexing.embedder import Embedder, TextEncoderLike
from indexing.errors import BuscadorError, DiskError, disk_problem
from indexing.search import Searcher
from indexing.store import MANIFEST

log = logging.getLogger(__name__)

# The sample collection shipped with the repository: what a fresh clone serves.
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples"
# The app's K slider goes up to this; the engine allows more (the CLI's bound).
APP_MAX_K = 50


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
    return BatchingTextEncoder(encoder) if batch_queries else encoder


def _warm_up(embedder: Embedder) -> None:
    """Run texts and an image through the model before the first visitor does: the first call of
    each kind chooses its precision (indexing.precision) and prepares the CPU's kernels, which made
    the first image query take 0.45 s against 0.06 s for the next ones (benchmarks/RESULTS.md)."""
    started = time.perf_counter()
    embedder.embed_texts(["a photo"])  # one query
    embedder.embed_texts(["a photo", "a dog"])  # queries that arrive together
    embedder.embed_pixels(np.zeros((1, embedder.image_size, embedder.image_size, 3), np.uint8))
    log.info("model ready for queries in %.1f s", time.perf_counter() - started)


@dataclass(frozen=True)
class Engine:
    """What the app serves: a searcher, or the reason there is none."""

    searcher: Searcher | None
    problem: str | None = None
    # Results at least this similar to a better one are folded into it, unless a visitor says not.
    duplicate_threshold: float = config.DUPLICATE_THRESHOLD


def start(
    *,
    index_dir: str | os.PathLike[str] | None = None,
    model: str | None = None,
    index_repo: str | None = None,
    revision: str | None = None,
    sample_dir: Path = SAMPLE_DIR,
    batch_queries: bool = False,
    text_model: str | None = None,
) -> Engine:
    """Load the model and the index: pulled from the Hub when $INDEX_REPO is set, else local.

    A missing local index is built from the sample collection when it is there (with a progress
    bar on the console), so a fresh clone works with one command. With `batch_queries`, queries
    that arrive together share the model's forward passes (`indexing.batching`), as a server wants.
    A second text encoder for other languages (`text_model`, else $TEXT_MODEL) is loaded beside
    CLIP; if it cannot be, the app starts without it and says so in its log.
    """
    local = config.index_dir(index_dir)
    repo = config.index_repo(index_repo)
    fetch = None
    try:
        if repo:
            from indexing.hub import pull_index, thumbnail_fetcher

            local = pull_index(repo, revision=config.index_revision(revision))
            fetch = thumbnail_fetcher(repo, local)  # thumbnail shards come when first shown
        embedder = Embedder(model)
        if not repo and not (local / MANIFEST).exists():
            if not sample_dir.is_dir():
                raise BuscadorError(
                    f"no index at {local}. Build one: python -m indexing build YOUR_FOLDER --out {local}"
                )
            from indexing.build import build_index
            from indexing.sources import FolderSource

            print(f"No index at {local}: indexing the sample collection in {sample_dir} first.", flush=True)
            print(build_index(FolderSource(sample_dir), local, embedder).report(), flush=True)
        _warm_up(embedder)
        served = BatchingEmbedder(embedder) if batch_queries else embedder
        searcher = Searcher.open(
            local,
            served,
            max_k=APP_MAX_K,
            text_encoder=_text_encoder(text_model, batch_queries),
            fetch=fetch,
        )
        return Engine(searcher, duplicate_threshold=config.duplicate_threshold())
    except BuscadorError as exc:
        log.error("%s", exc)
        return Engine(None, str(exc))
    except DiskError as exc:
        problem = disk_problem(exc)
        log.error("%s", problem)
        return Engine(None, problem)
