"""A new build swapped into a running app (ui.refresh): how long opening it takes, and what
visitors' searches meanwhile wait. Prints figures; asserts nothing.

On a copy of an index that `bench_scale` left (1,000,000 synthetic vectors by default), an engine
serves searches from 4 threads without pause (each a held-out vector, as a text query's vector
would be; no model loaded). The copy's manifest is then written again, as a build writing the
folder does last, and `Engine.refresh()` opens the index beside the served one and swaps it in.
Search latencies are reported for the seconds before, during and after the refresh.

Usage: .venv/bin/python -m benchmarks.bench_refresh [--vectors 1000000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.photos import WORK
from indexing.files import replace_atomically
from indexing.search import Searcher
from indexing.store import MANIFEST, SEARCH_FILES, IndexStore
from ui.refresh import FolderWatch
from ui.startup import Engine

CLIENTS = 4


class VectorQueries:
    """Stands in for the model: each "text" is the next held-out query vector."""

    def __init__(self, store: IndexStore, queries: np.ndarray) -> None:
        self.model_name, self.dim, self.device = store.model, store.dim, "cpu"
        self.queries = queries
        self.next = 0

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.next = (self.next + 1) % len(self.queries)
        return self.queries[[self.next] * len(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    source = WORK / "scale" / f"lowrank-{args.vectors}"
    if not (source / MANIFEST).exists():
        raise SystemExit(
            f"no index at {source}: run python -m benchmarks.bench_scale --vectors {args.vectors}"
        )
    folder = WORK / "refresh-index"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in SEARCH_FILES:
        shutil.copyfile(source / name, folder / name)
    queries = np.load(WORK / "scale" / "queries.npy").astype(np.float32)
    model = VectorQueries(IndexStore(folder), queries)

    def open_index(where: Path, fetch: object) -> Searcher:
        return Searcher.open(where, model)  # type: ignore[arg-type]

    engine = Engine(open_index(folder, None), newer=FolderWatch(folder, open_index))
    latencies: list[tuple[float, float]] = []  # (when it started, seconds)
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            engine.searcher.by_text("a query", 10, -1.0)  # type: ignore[union-attr]
            latencies.append((started, time.perf_counter() - started))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    manifest = (folder / MANIFEST).read_bytes()
    replace_atomically(folder / MANIFEST, lambda tmp: tmp.write_bytes(manifest))  # a build's last write
    began = time.perf_counter()
    swapped = engine.refresh()
    ended = time.perf_counter()
    time.sleep(args.seconds)
    stop.set()
    for thread in threads:
        thread.join()

    def line(name: str, low: float, high: float) -> str:
        times = sorted(s * 1000 for when, s in latencies if low <= when < high)
        if not times:
            return f"{name:>8}: no search"
        p95 = times[int(0.95 * (len(times) - 1))]
        return (
            f"{name:>8}: {len(times):5d} searches, p50 {statistics.median(times):6.2f} ms, "
            f"p95 {p95:6.2f} ms, max {times[-1]:7.2f} ms"
        )

    print(f"{args.vectors:,} vectors, {CLIENTS} clients searching without pause")
    print(f"refresh: {'swapped' if swapped else 'NOT swapped'} in {ended - began:.2f} s")
    print(line("before", 0.0, began))
    print(line("during", began, ended))
    print(line("after", ended, float("inf")))


if __name__ == "__main__":
    main()
