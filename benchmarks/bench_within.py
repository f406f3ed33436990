"""Searches within a folder: their latency, and their recall where they go through the index.

Opens an index that `bench_scale` built (its keys are `photos/NNNN/IMG_….jpg`, 1,000 images a
folder, numbered in order, as a first build numbers a real folder's images) and searches with
its 200 held-out queries among the images of one folder, of several sizes: exactly, over the
folder's vectors held in memory, and through the index with a selector that leaves the other
images out (`IndexStore.search` takes the second from config.FOLDER_SHARE of the index up).
Recall@10 is against exact search over the folder's stored vectors. With --dated, the same for
periods (`taken:`), on a copy of the index whose photos were taken one after another over ten
years (2015 to 2024, in id order, as a camera's are numbered): the first search of a period
(listing its ids from the catalog) and later ones. With --placed, the same for places (`near:`),
on a dated copy whose photos were also taken around the 300 biggest towns (a few kilometres
from their centres, the biggest towns with the most): naming each photo's town as a build does,
a town's and a country's first search and later ones, and the first page of a place alone (its
photos in date order; the next pages are slices of that order). Prints figures; asserts nothing.

Usage: .venv/bin/python -m benchmarks.bench_within [--index benchmarks/.work/scale/lowrank-300000]
           [--dated | --placed]
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks import arguments
from indexing.ann import Selection
from indexing.catalog import CATALOG, Catalog
from indexing.dates import parse_period
from indexing.narrowing import Narrowing
from indexing.places import gazetteer, name_towns
from indexing.store import IndexStore, Subset

REPO = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000, 20_000, 30_000, 60_000, 150_000)
FIRST = 10  # the first folder searched


def timed(store: IndexStore, queries: np.ndarray, only: Subset) -> tuple[float, list[set[int]]]:
    """p50 ms of a search of each query alone among `only`, and the ids each found."""
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = store.search(query[None], 10, only=only)[0]
        times.append(time.perf_counter() - started)
        found.append({i for i, _ in hits})
    return statistics.median(times) * 1000, found


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--index", type=Path, default=REPO / "benchmarks" / ".work" / "scale" / "lowrank-300000"
    )
    parser.add_argument("--dated", action="store_true", help="search periods of a dated copy instead")
    parser.add_argument("--placed", action="store_true", help="search places of a dated, placed copy instead")
    args = parser.parse_args()
    queries = np.load(args.index.parent / "queries.npy")
    if args.dated:
        periods(dated_copy(args.index), queries)
        return
    if args.placed:
        around(placed_copy(dated_copy(args.index)), queries)
        return
    store = IndexStore(args.index)
    print(f"{args.index.name}: {store.count:,} images, {store.manifest['index_type']}")
    for size in SIZES:
        if size > store.count // 2:
            break
        # A folder of `size` images: the first size/1,000 folders of photos/ together.
        started = time.perf_counter()
        numbers = range(FIRST, FIRST + size // 1000)  # bench_scale --remove takes images out from 0
        ids = np.concatenate([store.catalog.ids_under(f"photos/{n:04d}/") for n in numbers])
        listed = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        vectors = store.vectors.read(ids)
        read = (time.perf_counter() - started) * 1000
        exact_ms, truth = timed(store, queries, Subset(Selection(ids), vectors))
        index_ms, found = timed(store, queries, Subset(Selection(ids), None))
        recall = np.mean([len(t & f) / max(1, len(t)) for t, f in zip(truth, found, strict=True)])
        print(
            f"folder of {size:>7,} images ({size / store.count:6.1%}): listed in {listed:5.1f} ms, "
            f"vectors read in {read:5.1f} ms; search p50 exact {exact_ms:5.2f} ms, "
            f"through the index {index_ms:5.2f} ms (recall@10 {recall:.3f})"
        )
    started = time.perf_counter()
    store.among(Narrowing("photos"))
    print(
        f"store.among('photos'), every image: {(time.perf_counter() - started) * 1000:.0f} ms the first time"
    )


def dated_copy(index: Path) -> Path:
    """A copy of `index` (its big files linked, not copied) whose catalog says its photos were
    taken one after another from 2015 to 2024."""
    copy = index.parent / f"{index.name}-dated"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for path in index.iterdir():
        if path.is_file() and path.name != CATALOG:
            os.link(path, copy / path.name)
    shutil.copy(index / CATALOG, copy / CATALOG)
    Catalog(copy / CATALOG).close()  # opened for writing: gains its date column
    with sqlite3.connect(copy / CATALOG) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM items ORDER BY id")]
        start, step = datetime(2015, 1, 1), timedelta(days=3653) / len(ids)
        db.executemany(
            "UPDATE items SET taken=? WHERE id=?",
            ((f"{start + n * step:%Y-%m-%dT%H:%M:%S}", i) for n, i in enumerate(ids)),
        )
    return copy


def placed_copy(dated: Path) -> Path:
    """`dated` (a dated copy), its photos placed around the 300 biggest towns, and each photo's
    town named as a build names them (timed)."""
    towns = gazetteer()  # biggest first
    rng = np.random.default_rng(0)
    with sqlite3.connect(dated / CATALOG) as db:
        ids = [row[0] for row in db.execute("SELECT id FROM items ORDER BY id")]
        weights = 1 / np.arange(1, 301)
        town = rng.choice(300, len(ids), p=weights / weights.sum())
        lat = towns.lat[town] + rng.normal(0, 0.05, len(ids))  # about 5 km
        lon = towns.lon[town] + rng.normal(0, 0.05, len(ids)) / np.cos(np.radians(towns.lat[town]))
        db.executemany(
            "UPDATE items SET lat=?, lon=? WHERE id=?",
            zip(np.round(lat, 5).tolist(), np.round(lon, 5).tolist(), ids, strict=True),
        )
    catalog = Catalog(dated / CATALOG)
    started = time.perf_counter()
    name_towns(catalog)
    print(f"{len(ids):,} photos' towns named in {time.perf_counter() - started:.1f} s")
    catalog.close()
    return dated


def around(index: Path, queries: np.ndarray) -> None:
    store = IndexStore(index)
    print(f"{index.name}: {store.count:,} images placed around 300 towns, {store.manifest['index_type']}")
    for place in ("Madrid", "Lagos", "Tokyo", "Spain", "China"):
        near = gazetteer().find(place)
        started = time.perf_counter()
        subset = store.among(Narrowing(near=tuple(near)))
        first = (time.perf_counter() - started) * 1000
        later_ms, _ = timed(store, queries, store.among(Narrowing(near=tuple(near))))
        started = time.perf_counter()
        store.in_date_order(subset)[:12]
        order = (time.perf_counter() - started) * 1000
        how = "exact" if subset.vectors is not None else "through the index"
        print(
            f"near:{place:<14} {len(subset.ids):>9,} images: first search listed them in {first:6.1f} ms; "
            f"search p50 {later_ms:5.2f} ms ({how}); a page of it alone in date order {order:6.1f} ms"
        )


def periods(index: Path, queries: np.ndarray) -> None:
    store = IndexStore(index)
    print(f"{index.name}: {store.count:,} images over ten years, {store.manifest['index_type']}")
    for text in ("2015..2024", "2019", "2019-06", "2019-06-15"):
        period = parse_period(text)
        started = time.perf_counter()
        subset = store.among(Narrowing(period=period))
        first = (time.perf_counter() - started) * 1000
        later_ms, _ = timed(store, queries, store.among(Narrowing(period=period)))
        how = "exact" if subset.vectors is not None else "through the index"
        print(
            f"taken:{text:<11} {len(subset.ids):>9,} images: first search listed them in {first:6.1f} ms; "
            f"search p50 {later_ms:5.2f} ms ({how})"
        )


if __name__ == "__main__":
    main()
