"""The build pipeline: source → embedder → catalog (checkpointed) → FAISS index + manifest.

Incremental: only new or changed images are embedded, and images gone from the source are
dropped. Resumable: each batch is committed in one transaction, so a build killed at any point
and run again continues where it stopped and ends with the index a clean build gives.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from indexing import config
from indexing.embedder import Embedder
from indexing.errors import BadImage
from indexing.images import thumbnail_jpeg
from indexing.sources import DatasetSource, FolderSource, SourceItem
from indexing.store import Catalog, Row, write_index

T = TypeVar("T")


@dataclass
class BuildSummary:
    """What a build did, for the final report and the manifest."""

    seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image, reason)
    count: int = 0
    index_type: str = ""
    recall_at_10: float = 1.0
    seconds: float = 0.0

    def changes(self) -> dict[str, int]:
        """What this build changed, as recorded in the manifest."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": len(self.skipped),
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = len(self.skipped)
        return data

    def report(self) -> str:
        embedded = self.added + self.updated
        rate = f" ({embedded / self.seconds:.1f} images/s)" if embedded and self.seconds else ""
        kind = (
            self.index_type
            if self.index_type == "flat"
            else f"{self.index_type}, recall@10 {self.recall_at_10:.3f}"
        )
        return (
            f"{self.count} images indexed ({kind}) in {self.seconds:.1f}s{rate}: "
            f"{self.added} new, {self.updated} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {len(self.skipped)} skipped"
        )


@dataclass(frozen=True)
class _Prepared:
    item: SourceItem
    pixels: np.ndarray | None = None
    thumbnail: bytes = b""
    error: str = ""


def build_index(
    source: FolderSource | DatasetSource,
    out_dir: Path,
    embedder: Embedder,
    *,
    batch_size: int = config.BATCH_SIZE,
    index_type: str = "auto",
    workers: int = min(4, os.cpu_count() or 1),
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> BuildSummary:
    """Bring the index in `out_dir` up to date with `source`; returns what was done."""
    started = time.perf_counter()
    warn = warn or (lambda line: tqdm.write(line, file=sys.stderr))
    summary = BuildSummary()
    catalog = Catalog.open_for_build(out_dir, embedder.model_name, embedder.dim)
    try:
        known = catalog.fingerprints()
        if isinstance(source, FolderSource):
            items: Iterable[SourceItem] = source.scan()
            total: int | None = sum(known.get(i.key) != i.fingerprint for i in items)
        else:
            dataset = source.open()
            total = source.total(dataset)
            items = source.scan(dataset)
        seen: set[str] = set()
        unreadable: set[str] = set()  # a previously indexed file may have become unreadable

        def todo() -> Iterator[SourceItem]:
            for item in items:
                seen.add(item.key)
                if known.get(item.key) == item.fingerprint:
                    summary.unchanged += 1
                else:
                    yield item

        def prepare(item: SourceItem) -> _Prepared:
            try:
                img = embedder.load(item.data)
                return _Prepared(item, embedder.pixels(img), thumbnail_jpeg(img))
            except BadImage as exc:
                return _Prepared(item, error=str(exc))

        with tqdm(
            total=total,
            unit="img",
            desc="indexing",
            disable=not progress,
            dynamic_ncols=True,
            file=sys.stderr,
        ) as bar:
            lookahead = 0 if embedder.device == "cpu" else 1
            for batch in _prefetched(_chunks(todo(), batch_size), prepare, workers, lookahead):
                good = [p for p in batch if p.pixels is not None]
                for p in batch:
                    if p.error:
                        summary.skipped.append((p.item.label, p.error))
                        unreadable.add(p.item.key)
                        warn(f"skipped {p.item.label}: {p.error}")
                if good:
                    vectors = embedder.embed_pixels(np.stack([p.pixels for p in good]))
                    catalog.write(
                        Row(p.item.key, p.item.label, p.item.fingerprint, p.item.size, v, p.thumbnail)
                        for p, v in zip(good, vectors, strict=True)
                    )
                    for p in good:
                        if p.item.key in known:
                            summary.updated += 1
                        else:
                            summary.added += 1
                bar.update(len(batch))
        for line in source.warnings:
            warn(f"skipped {line}")
            summary.skipped.append((line, "unreadable"))
        summary.seen = len(seen)
        summary.removed = catalog.delete(set(known) - (seen - unreadable))
        manifest = write_index(
            out_dir, catalog, index_type=index_type, source=source.describe(), changes=summary.changes()
        )
        summary.seconds = time.perf_counter() - started
        summary.count = manifest["count"]
        summary.index_type = manifest["index_type"]
        summary.recall_at_10 = manifest["recall_at_10"]
        return summary
    finally:
        catalog.close()


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prefetched(
    chunks: Iterable[list[SourceItem]],
    prepare: Callable[[SourceItem], _Prepared],
    workers: int,
    lookahead: int,
) -> Iterator[list[_Prepared]]:
    """Decode each batch on `workers` threads (Pillow releases the GIL), `lookahead` batches ahead.

    On a GPU, decoding the next batch while the model runs hides it (lookahead 1). On the CPU the
    model's matrix products already use every core, and decoding beside them makes one core's
    share straggle: decoding a batch with all cores between model calls is faster (measured:
    benchmarks/RESULTS.md), so lookahead is 0 there.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[list[Future[_Prepared]]] = deque()
        for chunk in chunks:
            pending.append([pool.submit(prepare, item) for item in chunk])
            if len(pending) > lookahead:
                yield [f.result() for f in pending.popleft()]
        while pending:
            yield [f.result() for f in pending.popleft()]
