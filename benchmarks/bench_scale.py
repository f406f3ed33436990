"""Scale benchmark: an index of N synthetic CLIP-like vectors, built and reopened through the
project's own store and index code. Prints figures; asserts nothing.

1. Writes N catalog rows (keys, labels, fingerprints and content hashes shaped like a real
   collection's; no thumbnails: they are downloaded apart) and their vectors with the build's
   Writer, then `write_index` chooses, builds and tunes the FAISS index under the default memory
   budget, as `python -m indexing build` does; then `write_index` again with nothing changed, as
   the end of an incremental build that found nothing new.
2. Reopens the index in a fresh process (no model loaded) and measures: the time to open it, its
   peak resident memory, and the latency of 200 single queries (p50), each a held-out vector
   from the same distribution (not in the index).
3. recall@10 of those answers against exact search over the original float32 vectors, so the
   float16 storage and the approximate index are both in the figure. With --grow N (and
   --remove M, --change C), N more vectors are then added, the first M removed and the next C
   given new ones (new content under the same names), as a later build adds new, deletes gone
   and re-embeds changed images (an HNSW index grows instead of being built again), timed, and
   measured the same way.
4. With --with-model, the same in a second fresh process that first loads the full-size ViT-B/32
   (random weights) and embeds a text, as the app does: open time and resident memory then.

The search files (manifest, catalog, vectors, index) are what a Space downloads: their size is
the download. The last line reads:
    N vectors: index_type T, download X MB, resident Y MB, open Z s, search p50 W ms, recall@10 R

Usage: .venv/bin/python -m benchmarks.bench_scale --vectors 1000000 [--data lowrank|uniform]
    [--grow N [--remove M] [--change C]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks import arguments
from benchmarks.vectors import synthetic_vectors
from indexing import config
from indexing.catalog import Row
from indexing.store import SEARCH_FILES, Writer, open_for_build, write_index

REPO = Path(__file__).resolve().parent.parent
QUERIES = 200
CHUNK = 20_000


def key(i: int) -> str:
    """The key of image i, shaped like a real collection's."""
    return f"photos/{i // 1000:04d}/IMG_{i:07d}.jpg"


def remove(out: Path, ids: range, dim: int) -> None:
    """Take these images out of the catalog, as a build does with deleted files."""
    catalog = open_for_build(out, "synthetic/clip-like", dim)
    try:
        Writer(out, catalog, dim).delete(key(i) for i in ids)
    finally:
        catalog.close()


def write_rows(out: Path, vectors: np.ndarray, numbers: range, edition: int = 0) -> None:
    """Catalog rows for images `numbers` (keys, fingerprints and content hashes; another
    `edition` is new content under the same names) and their vectors, through the Writer."""
    catalog = open_for_build(out, "synthetic/clip-like", vectors.shape[1])
    writer = Writer(out, catalog, vectors.shape[1])
    try:
        for start in range(0, len(numbers), CHUNK):
            rows = []
            for k in range(start, min(start + CHUNK, len(numbers))):
                i, name = numbers[k], key(numbers[k])
                content = hashlib.blake2b(f"{i}/{edition}".encode(), digest_size=16).hexdigest()
                fingerprint = f"{2_400_000 + i}:{1_700_000_000 + i + edition}"
                rows.append(Row(name, name, fingerprint, vectors[k], b"", content))
            writer.write(rows)
    finally:
        catalog.close()


def build(out: Path, vectors: np.ndarray, first: int = 0) -> dict:
    """Catalog rows (numbered from `first`) and vectors through the Writer, then the FAISS index;
    returns the manifest."""
    write_rows(out, vectors, range(first, first + len(vectors)))
    catalog = open_for_build(out, "synthetic/clip-like", vectors.shape[1])
    try:
        source = {"kind": "synthetic", "count": first + len(vectors)}
        return write_index(out, catalog, index_type="auto", source=source, changes={"added": len(vectors)})
    finally:
        catalog.close()


def current(out: Path, dim: int) -> dict[str, int]:
    """key → id in the index folder now."""
    catalog = open_for_build(out, "synthetic/clip-like", dim)
    try:
        ids = catalog.ids()
        return {item.key: int(i) for i, item in catalog.items(ids.tolist()).items()}
    finally:
        catalog.close()


def reopen(out: Path, queries: Path, model: Path | None = None) -> dict:
    """Run `--measure` in a fresh process: what a Space does at start-up, then single queries."""
    extra = ["--model", str(model)] if model else []
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_scale",
            "--measure",
            str(out),
            "--queries",
            str(queries),
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(out: Path, queries_file: Path, model: Path | None) -> None:
    """In the fresh process: (load the model,) open the index, answer each query alone, report
    as JSON."""
    from indexing.store import IndexStore

    queries = np.load(queries_file)
    if model:
        from indexing.embedder import Embedder

        Embedder(str(model)).embed_texts(["a dog running on the beach"])
    started = time.perf_counter()
    store = IndexStore(out)
    opened = time.perf_counter() - started
    times, found = [], []
    for query in queries:
        t0 = time.perf_counter()
        hits = store.search(query[None], 10)[0]
        times.append(time.perf_counter() - t0)
        found.append([i for i, _ in hits])
    print(
        json.dumps(
            {
                "open_s": opened,
                "p50_ms": statistics.median(times) * 1000,
                "resident_mb": _peak_resident_mb(),
                "found": found,
            }
        )
    )


def _peak_resident_mb() -> float:
    """Peak resident memory of this process (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--data", choices=["lowrank", "uniform"], default="lowrank")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".work" / "scale")
    parser.add_argument("--with-model", action="store_true", help="also measure with the model loaded")
    parser.add_argument("--grow", type=int, default=0, help="then add this many vectors and measure again")
    parser.add_argument("--remove", type=int, default=0, help="and remove this many (with --grow)")
    parser.add_argument("--change", type=int, default=0, help="and give this many new content (with --grow)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--queries", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.queries, args.model)
        return

    began = time.perf_counter()
    n = args.vectors
    out = args.work / f"{args.data}-{n}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    everything = synthetic_vectors(n + QUERIES + args.grow + args.change, args.data)
    vectors, queries = everything[:n], everything[n : n + QUERIES]
    extra, edited = everything[n + QUERIES : n + QUERIES + args.grow], everything[n + QUERIES + args.grow :]
    np.save(args.work / "queries.npy", queries)
    print(
        f"{n:,} {args.data} vectors of {vectors.shape[1]} dimensions, "
        f"memory budget {config.MEMORY_BUDGET_MB} MB"
    )

    started = time.perf_counter()
    manifest = build(out, vectors)
    print(
        f"built in {time.perf_counter() - started:.1f}s: {manifest['index_type']}, search settings "
        f"{manifest['search']}, recall@10 {manifest['recall_at_10']:.3f} measured at build time"
    )
    started = time.perf_counter()
    catalog = open_for_build(out, "synthetic/clip-like", vectors.shape[1])
    try:  # what an incremental build that found nothing new does last
        again = write_index(out, catalog, index_type="auto", source=manifest["source"], changes={})
    finally:
        catalog.close()
    kept = again["files"]["index.faiss"] == manifest["files"]["index.faiss"]
    print(
        f"the same again, nothing changed: {time.perf_counter() - started:.1f}s "
        f"({'index kept' if kept else 'index built again'})"
    )
    sizes = {name: (out / name).stat().st_size / 1e6 for name in SEARCH_FILES}
    print("files: " + ", ".join(f"{name} {mb:.1f} MB" for name, mb in sizes.items()))

    stored = np.fromfile(out / "vectors.f16", "<f2").reshape(-1, vectors.shape[1])[:n].astype(np.float32)
    sample = np.random.default_rng(0).choice(n, size=min(n, 10_000), replace=False)
    cosine_error = np.abs((stored[sample] * vectors[sample]).sum(1) - 1).max()
    score_error = np.abs(stored[sample] @ queries[0] - vectors[sample] @ queries[0]).max()
    print(
        f"float16 storage: max |1 − cos(stored, original)| {cosine_error:.1e}, "
        f"max score error {score_error:.1e}"
    )

    if args.with_model:
        from benchmarks.bench_indexing import make_model

        loaded = reopen(out, args.work / "queries.npy", make_model())
        print(
            f"with the model loaded: resident {loaded['resident_mb']:.0f} MB, open {loaded['open_s']:.2f} s, "
            f"search p50 {loaded['p50_ms']:.2f} ms"
        )
    result = reopen(out, args.work / "queries.npy")
    _, truth = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    recall = np.mean(
        [len(set(t) & set(f)) / 10 for t, f in zip(truth.tolist(), result["found"], strict=True)]
    )
    if args.grow:
        said: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("indexing.ann").addHandler(handler)
        logging.getLogger("indexing.ann").setLevel(logging.INFO)
        started = time.perf_counter()
        remove(out, range(args.remove), vectors.shape[1])
        changed = range(args.remove, args.remove + args.change)
        write_rows(out, edited, changed, edition=1)
        grown = build(out, extra, first=n)
        seconds = time.perf_counter() - started
        how = "index grown" if any("grown instead" in line for line in said) else "index built again"
        again = reopen(out, args.work / "queries.npy")
        now = np.vstack([vectors, extra])  # image i's vector, by number
        now[changed.start : changed.stop] = edited
        numbers = range(args.remove, n + args.grow)
        ids = current(out, vectors.shape[1])
        _, truth = faiss.knn(queries, now[args.remove :], 10, metric=faiss.METRIC_INNER_PRODUCT)
        truth_ids = [[ids[key(numbers[r])] for r in row] for row in truth.tolist()]
        grown_recall = np.mean(
            [len(set(t) & set(f)) / 10 for t, f in zip(truth_ids, again["found"], strict=True)]
        )
        print(
            f"{args.grow:,} vectors added, {args.remove:,} removed, {args.change:,} changed: "
            f"{seconds:.1f}s ({how}), search settings "
            f"{grown['search']}, recall@10 {grown['recall_at_10']:.3f} measured then; search p50 "
            f"{again['p50_ms']:.2f} ms, recall@10 {grown_recall:.3f} on the held-out queries"
        )
    print(f"whole run {time.perf_counter() - began:.0f}s")
    print(
        f"{n} vectors: index_type {manifest['index_type']}, download {sum(sizes.values()):.0f} MB, "
        f"resident {result['resident_mb']:.0f} MB, open {result['open_s']:.2f} s, "
        f"search p50 {result['p50_ms']:.2f} ms, recall@10 {recall:.3f}"
    )


if __name__ == "__main__":
    main()
