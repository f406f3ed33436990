"""The build pipeline: source → embedder → catalog (checkpointed) → FAISS index + manifest.

Incremental: only new or changed images are embedded, and images gone from the source are
dropped. Resumable: each batch is committed in one transaction, so a build killed at any point
and run again continues where it stopped and ends with the index a clean build gives.
"""

from __future__ import annotations

import itertools
import json
import queue
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    BrokenExecutor,
    Future,
    ThreadPoolExecutor,
)
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from indexing import config, guard, headers, heif
from indexing.camera_raw import named_raw
from indexing.catalog import Row
from indexing.changes import (
    Diff,
    kept_note,
    left_out,
    listed,
    nothing_found,
    one_collection,
    refuse_absent,
    unlisted,
)
from indexing.decoding import (
    Decoded,
    JpegFile,
    header_facts,
    prepare_for_model,
    prepare_several,
    read_and_hash,
)
from indexing.downloads import downloaded
from indexing.embedder import Crops, EmbedderLike
from indexing.errors import BadImage, BuscadorError
from indexing.gpu_decoding import GpuDecoder, nvjpeg, nvjpeg_encoder
from indexing.header_pass import (
    HEADERS_READER,
    HeadersAhead,
    UnreadRows,
    header_wanted,
    read_headers,
    reread,
    when_and_where,
)
from indexing.images import thumbnail_jpeg
from indexing.progress import progress_bar
from indexing.sources import (
    Shard,
    Source,
    SourceItem,
)
from indexing.store import VECTORS, Writer, open_for_build, write_index
from indexing.thumbnails import shard_ids

# Where a build's time goes: waiting for decoded images, the model, waiting for the disk (vectors,
# thumbnails and catalog rows are written beside the model), reading headers (when and where
# each photo was taken), the FAISS index.
STAGES = ("decode", "embed", "write", "headers", "index")
# Images a decode process takes at a time: a pool's per-task costs in this process (handing work
# out, taking results back) are about 0.5 ms, a third of what feeds a GPU at 1,000 images/s.
PROCESS_CHUNK = 4
# Images a decode process reads at a time for a build decoding on the GPU: reading, hashing and
# checking a JPEG's header takes a process well under a millisecond, and at the GPU's rate the
# parent's costs a task weigh more. 4 and 16 measured alike on an H200 (816 and 817 images/s in
# one run, benchmarks/RESULTS.md, eighteenth session); 8 is between.
GPU_CHUNK = 8


@dataclass
class BuildSummary:
    """What a build did, for the final report and the manifest."""

    seen: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    reused: int = 0  # new or changed images whose content was already embedded
    moved: int = 0  # images moved or renamed in their folder: the same content under a new key
    retold: int = 0  # unchanged images whose XMP sidecar changed: when and where read again
    reread: int = 0  # headers read again once: the index was read by an older header reader
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image, reason)
    count: int = 0
    index_type: str = ""
    recall_at_10: float = 1.0
    warning: str = ""  # e.g. an approximate index that could not reach the recall floor
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    decoding: str = ""  # where images were decoded: threads, processes or gpu
    model: str = ""  # the image model's precision and runtime in this build, e.g. "bf16 in OpenVINO"

    def changes(self) -> dict[str, int]:
        """What this build changed, as recorded in the manifest."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": len(self.skipped),
            "reused": self.reused,
            "moved": self.moved,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | self.changes()

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        """Add the time the block takes to `stage`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stages[stage] += time.perf_counter() - started

    def report(self) -> str:
        embedded = self.added + self.updated
        rate = f" ({embedded / self.seconds:.1f} images/s)" if embedded and self.seconds else ""
        kind = (
            self.index_type
            if self.index_type == "flat"
            else f"{self.index_type}, recall@10 {self.recall_at_10:.3f}"
        )
        stages = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.stages.items())
        model = f", model {self.model}" if self.model else ""
        return (
            f"{self.count} image{'' if self.count == 1 else 's'} indexed ({kind}) "
            f"in {self.seconds:.1f}s{rate}: "
            f"{self.added} new, {self.updated} changed, {self.unchanged} unchanged, "
            + (f"{self.moved} moved, " if self.moved else "")
            + f"{self.removed} removed, {len(self.skipped)} skipped, {self.reused} reused"
            + (f", {self.retold} with an edited sidecar read again" if self.retold else "")
            + (
                f"\n{self.reread} headers read again, once: this version reads more in them"
                if self.reread
                else ""
            )
            + f"\ntime per stage ({self.decoding} decoding{model}): {stages}"
            + (f"\nwarning: {self.warning}" if self.warning else "")
        )


@dataclass(frozen=True)
class _Prepared:
    """An item decoded for the model (pixels and thumbnail), or found already embedded under its
    content hash (vector and thumbnail), or a JPEG for the GPU to decode, or the reason it could
    not be used."""

    item: SourceItem
    pixels: Crops | None = None  # one crop, on the GPU where decoded there
    thumbnail: bytes = b""
    content: str | None = None
    vector: np.ndarray | None = None
    error: str = ""
    jpeg: JpegFile | None = None
    facts: headers.Facts | None = None  # a dataset row's header, where its columns leave it wanted

    @property
    def identity(self) -> str:
        """What makes two items the same image: their content, when known, else their key."""
        return self.content or f"key:{self.item.key}"


# A batch of decoded items, each with its place in the source.
_Batch = list[tuple[int, _Prepared]]


def build_index(
    source: Source,
    out_dir: Path,
    embedder: EmbedderLike,
    *,
    batch_size: int | None = None,
    index_type: str = "auto",
    memory_budget_mb: int = config.MEMORY_BUDGET_MB,
    shard: Shard | None = None,
    workers: int | None = None,
    decode: str = "auto",
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
    replace: bool = False,
) -> BuildSummary:
    """Bring the index in `out_dir` up to date with `source` (or with its `shard` slice);
    returns what was done.

    `decode`: "threads", "processes", "gpu" (JPEGs decoded on the GPU, indexing.gpu_decoding, and
    read in processes), or "auto": with the model on a GPU, where decoding is the bottleneck,
    JPEGs on the GPU where torchvision's nvJPEG is there, else processes (one a core but one); on
    the CPU, where the model shares the cores, up to 4 threads. `workers` overrides how many. An
    index of another folder or dataset is refused unless `replace` (`one_collection`).
    """
    started = time.perf_counter()
    warn = warn or (lambda line: tqdm.write(line, file=sys.stderr))
    summary = BuildSummary()
    refuse_absent(source, out_dir)
    catalog = open_for_build(out_dir, embedder.model_name, embedder.dim)
    writer = Writer(out_dir, catalog, embedder.dim)
    try:
        one_collection(catalog, out_dir, source, replace=replace)
        _mend(writer, warn)
        if catalog.get_meta("headers_unread"):  # read before places were: all again
            catalog.forget_headers()
        unread = UnreadRows(catalog, source)
        diff = Diff(catalog.fingerprints())
        # An index read by an older header reader: every header read again once, after (a newer one
        # finds more in them: keywords, ratings, towns).
        again = reread(catalog, source, diff.known)
        summary.reread = len(again)
        items, total = listed(source, shard)
        # Recorded once the source opened (a misspelt dataset fails above), before any image.
        catalog.set_meta(source=json.dumps(source.describe(), sort_keys=True))
        # A folder's listing is at hand: its bar counts the images to embed alone, so that its rate
        # and time left are the model's (99,000 unchanged of 100,000 passed in a blink, and the
        # bar said 1,000 new would take no time). A dataset's rows are known as they stream by.
        if source.of_files:
            items = list(items)
            # Photos moved or renamed since take the ids of the keys gone (whose content they have).
            writer.gone = set(unlisted(Diff(diff.known, {item.key for item in items}), source)[0])
            passed = sum(map(diff.same, items))
            desc = f"indexing ({passed:,} unchanged)" if passed else "indexing"
            bar = progress_bar(len(items) - passed, desc, "img", shown=progress)
        else:
            bar = progress_bar(total, "indexing", "img", shown=progress)
        on_gpu = embedder.device != "cpu"
        batch_size = batch_size or (config.GPU_BATCH_SIZE if on_gpu else config.BATCH_SIZE)
        with (
            bar,
            _decoders(embedder, writer, decode, workers) as decoders,
            _Committer(writer) as commit,
        ):
            summary.decoding = decoders.mode
            ahead = HeadersAhead(decoders.processes)
            counted = None if source.of_files else bar  # (a folder's bar counts no unchanged image)
            changed = downloaded(diff.changed(items, counted, unread.passing))
            batches = _decoded(ahead.passing(changed), decoders, batch_size=batch_size)
            if decoders.complete is not None:
                batches = _one_ahead(batches, decoders.complete)
            in_order = _InOrder()
            while True:
                with summary.timing("decode"):
                    batch = next(batches, None)
                if batch is not None:
                    in_order.add(_embed(batch, embedder=embedder, summary=summary, warn=warn))
                done = in_order.take(batch_size if batch is not None else 0)
                if done:
                    rows = [row for row in done if row is not None]
                    with summary.timing("write"):
                        commit(rows)
                    updated = sum(row.key in diff.known for row in rows)
                    summary.updated += updated
                    summary.added += len(rows) - updated
                    bar.update(len(done))
                if batch is None:
                    break
        with summary.timing("headers"):
            ahead.record(catalog)
            unread.record()
        for line in source.warnings:
            warn(f"skipped {line}")
            summary.skipped.append((line, "unreadable"))
        for line, names, reason in left_out(source):
            warn(f"skipped {line}")
            summary.skipped += [(name, reason) for name in names]
        if not diff.seen and not summary.skipped and not diff.known:  # (else: `_gone` says why kept)
            warn(nothing_found(source))
        catalog.record_precision(embedder.precision_used("image"))  # over all builds
        if embedder.precision_used("image"):  # (nothing when no image was embedded)
            summary.model = f"{embedder.precision_used('image')} in {embedder.runtime_used()}"
        summary.seen = len(diff.seen)
        summary.unchanged = diff.unchanged
        summary.removed = writer.delete(_gone(diff, source, summary, warn))
        # A moved image was counted new, and reused (its content was indexed), by the loop.
        summary.moved = writer.moved
        summary.added -= writer.moved
        summary.reused -= writer.moved
        with summary.timing("headers"):
            catalog.retell(diff.retold)
            summary.retold = len(diff.retold)
            read_headers(source, catalog, progress=progress, again=again)
            catalog.set_meta(headers_reader=str(HEADERS_READER))
        described = source.describe() | ({"shard": str(shard)} if shard else {})
        with summary.timing("index"):
            manifest = write_index(
                out_dir,
                catalog,
                index_type=index_type,
                source=described,
                changes=summary.changes(),
                memory_budget_mb=memory_budget_mb,
                progress=progress,
            )
        summary.seconds = time.perf_counter() - started
        summary.count = manifest["count"]
        summary.index_type = manifest["index_type"]
        summary.recall_at_10 = manifest["recall_at_10"]
        summary.warning = manifest.get("warning", "")
        return summary
    finally:
        catalog.close()


@dataclass(frozen=True)
class _Decoders:
    """How a build decodes: `start` a few items (a list of `chunk`), giving a future of what
    decoding them gave; `finish` turns that into a _Prepared for each; `workers` run at a time,
    with `ahead` batches decoded beyond the one the model is on; `complete`, if any, starts
    finishing a batch on the model's device (JPEGs decoded on the GPU, on a thread of its own);
    `processes`, its decode processes if it has any (for other work beside); `alone`, what
    decoding each item alone gives, as `start` would, for the items of a task a crash lost."""

    mode: str  # threads, processes or gpu
    start: Callable[[list[SourceItem]], Future[list[Any]]]
    finish: Callable[[list[SourceItem], list[Any]], list[_Prepared]]
    workers: int
    chunk: int = 1
    ahead: int = 0
    complete: Callable[[_Batch], Future[_Batch]] | None = None
    processes: guard.Pool | None = None
    alone: Callable[[list[SourceItem]], list[Any]] | None = None


@contextmanager
def _decoders(
    embedder: EmbedderLike, writer: Writer, decode: str, workers: int | None
) -> Iterator[_Decoders]:
    """Decoding on a pool of threads or of processes, or on the GPU; a file's content hash its
    picture's where the index's are (indexing.picture_hash)."""
    if decode not in config.DECODE_MODES:
        raise ValueError(f"decode must be one of {', '.join(config.DECODE_MODES)}, not {decode!r}")
    size = getattr(embedder, "image_size", None)
    fast = getattr(embedder, "fast_decode", None)
    # A CLIP embedder's crop, which a decode process (or thread) can make without the embedder.
    crop = (size, fast) if size is not None and fast is not None else None
    on_gpu = embedder.device != "cpu"
    nvjpeg_decode = nvjpeg(embedder.device) if crop is not None and fast else None
    gpu = decode == "gpu" or (decode == "auto" and on_gpu and nvjpeg_decode is not None)
    if gpu and nvjpeg_decode is None:
        raise BuscadorError(
            "--decode gpu needs the model on a CUDA GPU, torchvision built for it (pip install "
            "torchvision, matching torch) and fast decoding (no --no-fast-decode)"
        )
    if gpu or decode == "processes" or (decode == "auto" and on_gpu and crop is not None):
        if crop is None:
            raise ValueError("decoding in processes needs an Embedder (image_size, fast_decode)")
        # One core is left to this process, which embeds, writes and hands work out (measured on
        # 16 cores: 752 images/s with 15 workers, 667 with 16). Decoding on the GPU, the processes
        # only read, hash and check JPEGs: on threads of this process, which held Python's lock
        # while the GPU's thread waited for it, readers had held builds to 724–952 images/s, and
        # the GPU's decoding alone ran 268 images/s beside 16 of them, 1,105 beside 16 processes
        # (an H200, benchmarks/RESULTS.md).
        count = workers or max(1, config.usable_cores() - 1)
        decoder = (
            GpuDecoder(nvjpeg_decode, size, encoders=count, encode=nvjpeg_encoder(embedder.device))
            if gpu and nvjpeg_decode is not None
            else None
        )
        try:
            # The GPU's decoding of a batch runs on a thread of its own, beside the model on the
            # batch before it and the handing out of files (`_one_ahead`).
            with (
                guard.Pool(count) as pool,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpu") as on_gpu_thread,
            ):
                yield _Decoders(
                    "processes" if decoder is None else "gpu",
                    lambda items: _submit(
                        pool, items, size, fast, pictures=writer.catalog.picture_hashes, gpu=gpu
                    ),
                    lambda items, decoded: _reuse_or(writer, items, decoded),
                    count,
                    alone=lambda items: _one_by_one(
                        items, size, fast, pictures=writer.catalog.picture_hashes, gpu=gpu
                    ),
                    chunk=PROCESS_CHUNK if decoder is None else GPU_CHUNK,
                    ahead=2 if on_gpu else 0,
                    complete=None
                    if decoder is None
                    else lambda batch: on_gpu_thread.submit(_decode_on_gpu, decoder, size, batch),
                    processes=pool,
                )
        finally:
            if decoder is not None:
                decoder.close()
        return
    count = workers or min(4, config.usable_cores())
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="decode") as pool:
        yield _Decoders(
            "threads",
            lambda items: pool.submit(
                lambda: [_prepare(embedder, writer, item, crop=crop) for item in items]
            ),
            lambda _, prepared: prepared,
            count,
            ahead=2 if on_gpu else 0,
        )


def _submit(
    pool: guard.Pool, items: list[SourceItem], size: int, fast: bool, *, pictures: bool, gpu: bool
) -> Future[list[tuple[Decoded, JpegFile | None, headers.Facts | None]]]:
    """`items` handed to a decode process (indexing.decoding), a task for them all; with `gpu`, the
    JPEGs the GPU can decode only read."""
    jobs = [(i.data, i.content, header_wanted(i)) for i in items]
    return pool.submit(prepare_several, jobs, size, fast, pictures, gpu)


def _one_by_one(
    items: list[SourceItem], size: int, fast: bool, *, pictures: bool, gpu: bool
) -> list[tuple[Decoded, JpegFile | None, headers.Facts | None]]:
    """The items of a task lost when a decode process crashed (the pool's tasks all fail then),
    each decoded alone in a guard process, as `_submit` would: the item that crashes its process
    again is skipped with the reason, the others decoded."""
    done = []
    for item in items:
        try:
            job = (item.data, item.content, header_wanted(item))
            done += guard.guarded(prepare_several, [job], size, fast, pictures, gpu)
        except BadImage as exc:
            done.append(((item.content, None, b"", str(exc)), None, None))
    return done


def _one_ahead(batches: Iterator[_Batch], start: Callable[[_Batch], Future[_Batch]]) -> Iterator[_Batch]:
    """The batches, each finished by what `start` began while the caller had the one before it."""
    waiting: Future[_Batch] | None = None
    for batch in batches:
        started = start(batch)
        if waiting is not None:
            yield waiting.result()
        waiting = started
    if waiting is not None:
        yield waiting.result()


def _decode_on_gpu(decoder: GpuDecoder, size: int, batch: _Batch) -> _Batch:
    """The batch with its JPEGs decoded on the GPU; one that nvJPEG refuses is decoded on the CPU,
    which reports it if it is bad."""
    waiting = [k for k, (_, p) in enumerate(batch) if p.jpeg is not None]
    if not waiting:
        return batch
    results = decoder([batch[k][1].jpeg for k in waiting])
    done = list(batch)
    for k, result in zip(waiting, results, strict=True):
        n, p = batch[k]
        if result is None:
            _, pixels, thumbnail, error = prepare_for_model(p.jpeg.raw, size, True, p.content)
        else:
            (pixels, thumbnail), error = result, ""
        done[k] = (n, replace(p, pixels=pixels, thumbnail=thumbnail, error=error, jpeg=None))
    return done


def _reuse_or(
    writer: Writer,
    items: list[SourceItem],
    decoded: list[tuple[Decoded, JpegFile | None, headers.Facts | None]],
) -> list[_Prepared]:
    """A _Prepared from each of a decode process's answers, or the stored vector of the same content;
    a JPEG for the GPU that came back without its bytes gets the item's (a dataset's row)."""
    indexed = writer.catalog.by_contents([content for (content, *_), *_ in decoded if content])
    return [
        _stored_copy(writer, item, content, indexed[content], facts)
        if content in indexed
        else _Prepared(
            item,
            pixels,
            thumbnail,
            content=content,
            error=error,
            jpeg=jpeg if jpeg is None or jpeg.raw else replace(jpeg, raw=item.data),
            facts=facts,
        )
        for item, ((content, pixels, thumbnail, error), jpeg, facts) in zip(items, decoded, strict=True)
    ]


def _stored_copy(
    writer: Writer, item: SourceItem, content: str, same: int, facts: headers.Facts | None
) -> _Prepared:
    """The vector and thumbnail of indexed image `same`, which has this item's content (a copy, a rename)."""
    vector, thumbnail = writer.stored(same)
    return _Prepared(item, content=content, vector=vector, thumbnail=thumbnail, facts=facts)


def _prepare(
    embedder: EmbedderLike,
    writer: Writer,
    item: SourceItem,
    *,
    crop: tuple[int, bool] | None,
) -> _Prepared:
    """Decode one item into the model's input crop and a thumbnail (runs on a worker thread), or
    take the vector and thumbnail of an indexed image with the same content (a copy, a rename).

    `crop` (CLIP's crop size, fast decoding) decodes as a decode process does, the thumbnail made
    from the crop's resize; without it (an embedder of another kind) the embedder decodes."""
    try:
        data, content = read_and_hash(item.data, item.content, writer.catalog.picture_hashes)
        facts = header_facts(data) if header_wanted(item) else None
        same = writer.catalog.by_contents([content]).get(content) if content else None
        if same is not None:
            return _stored_copy(writer, item, content, same, facts)
        if crop is not None:
            camera = named_raw(item.data)
            # A RAW or HEIF file is handed over by its path: its guard process reads it.
            by_path = isinstance(item.data, Path) and (camera or heif.is_iso(data))
            given = item.data if by_path else data
            _, pixels, thumbnail, error = prepare_for_model(given, *crop, content, camera=camera)
            return _Prepared(item, pixels, thumbnail, content=content, error=error, facts=facts)
        img = embedder.load(data)
        return _Prepared(item, embedder.pixels(img), thumbnail_jpeg(img), content=content, facts=facts)
    except BadImage as exc:
        return _Prepared(item, error=str(exc))


def _mend(writer: Writer, warn: Callable[[str], None]) -> None:
    """Images whose vector or thumbnail an index folder lost from outside (a copy or a sync
    stopped halfway, a disk's fault) taken out of its catalog, with a line saying so: the build
    embeds them again, as new images."""
    if lost := writer.without_vectors():
        warn(
            f"{len(lost):,} image{'' if len(lost) == 1 else 's'} had no vector in {VECTORS} (the "
            "file was cut short: a copy or sync stopped halfway?): embedding them again"
        )
        writer.delete(lost)
    for name in writer.damaged_shards():
        ids = shard_ids(name)
        lost = writer.catalog.keys_from(ids.start, ids.stop)
        warn(
            f"{name} is gone or damaged (a copy or sync stopped halfway?): embedding its "
            f"{len(lost):,} image{'' if len(lost) == 1 else 's'} again"
        )
        (writer.out_dir / name).unlink(missing_ok=True)
        writer.delete(lost)


def _gone(diff: Diff, source: Source, summary: BuildSummary, warn: Callable[[str], None]) -> list[str]:
    """The keys to remove from the index: images the source no longer has, and those it could not
    read (they would not be there after a clean build)."""
    missing, kept = unlisted(diff, source)
    if kept:
        warn(kept_note(kept, diff, source))
        summary.unchanged += len(kept)
    unreadable = {name for name, _ in summary.skipped}
    return missing + [key for key in diff.known if key in unreadable and key in diff.seen]


def _embed(
    batch: _Batch,
    *,
    embedder: EmbedderLike,
    summary: BuildSummary,
    warn: Callable[[str], None],
) -> list[tuple[int, Row | None]]:
    """Embed a decoded batch: (position, row), or (position, None) for an item that failed.

    Each distinct content is embedded once: an image whose content is already indexed, or appears
    twice in the batch, reuses that vector (counted as reused).
    """
    good = [(n, p) for n, p in batch if not p.error]
    for _, p in batch:
        if p.error:
            summary.skipped.append((p.item.key, p.error))
            warn(f"skipped {p.item.label}: {p.error}")
    embed: dict[str, _Prepared] = {}  # identity → the one item of the batch embedded for it
    for _, p in good:
        if p.vector is None:
            embed.setdefault(p.identity, p)
    vectors: dict[str, np.ndarray] = {}
    if embed:
        with summary.timing("embed"):
            embedded = embedder.embed_pixels(_stacked([p.pixels for p in embed.values()]))
        vectors = dict(zip(embed, embedded, strict=True))
    rows: list[tuple[int, Row | None]] = [(n, None) for n, p in batch if p.error]
    for n, p in good:
        if embed.get(p.identity) is not p:
            summary.reused += 1
        vector = p.vector if p.vector is not None else vectors[p.identity]
        item = p.item
        # A dataset's image: its date and position columns', else its EXIF's, read where it was
        # decoded (a folder's files are read apart, by HeadersAhead or read_headers).
        taken, *where = when_and_where(item, p.facts)
        row = Row(
            item.key,
            item.label,
            item.fingerprint,
            vector,
            p.thumbnail,
            p.content,
            item.meta,
            item.id,
            taken,
            *where,
            caption=item.caption,
        )
        rows.append((n, row))
    return rows


def _stacked(crops: list[Crops]) -> Crops:
    """One batch of crops: a NumPy array, or a tensor on the device where any crop is (decoded on
    the GPU; those decoded on the CPU are copied there)."""
    on_device = next((crop for crop in crops if isinstance(crop, torch.Tensor)), None)
    if on_device is None:
        return np.stack(crops)
    return torch.stack(
        [
            crop
            if isinstance(crop, torch.Tensor)
            # (a copy of one that is a decoded picture's own pixels, which Pillow keeps read-only)
            else torch.from_numpy(np.require(crop, requirements="W")).to(on_device.device)
            for crop in crops
        ]
    )


class _Committer:
    """Commits rows to the index folder on a thread of its own, in order, so the model does not
    wait for the disk's syncs. Rows that come while a commit runs wait and go together in the
    next one (a slow disk makes commits larger, not the model slower), up to `most_waiting` rows,
    past which the caller waits. An error in a commit is raised by a later call, or on leaving
    the block; rows waiting behind a failed commit are not written."""

    def __init__(self, writer: Writer, most_waiting: int = 4096) -> None:
        self._writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit")
        self._running: Future[None] | None = None
        self._waiting: list[Row] = []
        self._most_waiting = most_waiting

    def __enter__(self) -> Callable[[list[Row]], None]:
        return self

    def __call__(self, rows: list[Row]) -> None:
        self._waiting.extend(rows)
        running = self._running
        if running is None or running.done() or len(self._waiting) >= self._most_waiting:
            self._start_next()

    def __exit__(self, *exc: object) -> None:
        try:
            self._start_next()
            self._finish_running()
        finally:
            self._pool.shutdown()

    def _start_next(self) -> None:
        """Wait for the running commit (raising its error), then commit the waiting rows."""
        self._finish_running()
        if self._waiting:
            rows, self._waiting = self._waiting, []
            self._running = self._pool.submit(self._writer.write, rows)

    def _finish_running(self) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            try:
                running.result()
            except BaseException:
                self._waiting = []  # rows behind a failed commit are not written
                raise


class _InOrder:
    """Holds embedded rows until every row before them is embedded too, so the catalog gets
    them in source order (ids are then the same whatever order decoding finished in)."""

    def __init__(self) -> None:
        self._waiting: dict[int, Row | None] = {}
        self._next = 0

    def add(self, rows: list[tuple[int, Row | None]]) -> None:
        self._waiting.update(rows)

    def take(self, at_least: int) -> list[Row | None]:
        """The rows next in order, once there are `at_least` of them (0: whatever there is)."""
        end = self._next
        while end in self._waiting:
            end += 1
        if end == self._next or end - self._next < at_least:
            return []
        taken = [self._waiting.pop(n) for n in range(self._next, end)]
        self._next = end
        return taken


def _decoded(items: Iterable[SourceItem], decoders: _Decoders, *, batch_size: int) -> Iterator[_Batch]:
    """Decode items on the decoders' workers and hand them over in batches of (position, item)
    in the order decoding finishes, so one slow file (a huge PNG, which has no reduced-size
    decoding) holds up its own place (and its chunk's), not its batch: the others go on without it.

    About `batch_size` × (1 + the decoders' `ahead`) items are decoding or waiting at a time, plus
    a chunk a worker for files that are slow. On a GPU, decoding the next batches while the model runs hides
    it (ahead 2). On the CPU the model's matrix products already use every core, and decoding
    beside them makes one core's share straggle: decoding a batch with all cores between model
    calls is faster (measured: benchmarks/RESULTS.md), so ahead is 0 there.
    """
    limit = batch_size * (1 + decoders.ahead) + decoders.workers * decoders.chunk
    source = enumerate(items)
    position: dict[Future[list[Any]], list[tuple[int, SourceItem]]] = {}
    # Futures as they finish: one queue read a finished task, where waiting on all of them (about
    # 270 on a GPU) costs a lock on each, every time.
    finished: queue.SimpleQueue[Future[list[Any]]] = queue.SimpleQueue()
    in_flight = 0
    ready: _Batch = []
    exhausted = False
    while True:
        while not exhausted and in_flight + len(ready) < limit:
            group = list(itertools.islice(source, decoders.chunk))
            exhausted = len(group) < decoders.chunk
            if group:
                future = decoders.start([item for _, item in group])
                position[future] = group
                future.add_done_callback(finished.put)
                in_flight += len(group)
        if len(ready) >= batch_size or (exhausted and not position):
            if not ready:
                return
            ready.sort(key=lambda pair: pair[0])
            yield ready[:batch_size]
            ready = ready[batch_size:]
            continue
        done = [finished.get()]
        while not finished.empty():
            done.append(finished.get())
        for future in done:
            group = position.pop(future)
            in_flight -= len(group)
            group_items = [item for _, item in group]
            try:
                result = future.result()
            except BrokenExecutor:  # a decoder crashed (every task then in the pool fails)
                assert decoders.alone is not None  # (decode processes' futures alone break)
                result = decoders.alone(group_items)
            ready.extend(zip([n for n, _ in group], decoders.finish(group_items, result), strict=True))
