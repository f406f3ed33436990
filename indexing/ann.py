"""The FAISS index: which kind fits a memory budget, how it is built, and its search settings
tuned to a recall floor, measured against exact search.

    flat   exact inner product; while the collection is small (config.FLAT_LIMIT) and fits.
    hnsw   a graph over the full vectors; fast and accurate while it fits the budget.
    ivfpq  an inverted file of 4-bit product-quantised codes (FAISS fast scan, 16 to 64 bytes a
           vector): a million vectors in tens of MB, scanned with SIMD. Its best `rerank`
           candidates are re-scored with the stored vectors (indexing.vectors), so the codes
           choose candidates and never decide scores.

Recall@10 is measured on held-out queries: 200 of the collection's vectors are added only after
the others have been searched with them, as a visitor's query is not in the index it searches
(a query that is an indexed vector finds its own neighbourhood too easily: HNSW at 300,000
vectors measured 0.963 that way and 0.941 on fresh queries). The cheapest settings that reach
config.RECALL_FLOOR are kept, with the recall, in the manifest.

An approximate index grows when images are added or removed (`grow`): the new vectors are the
fresh queries its settings are tuned on again, and a removed image's vector stays in it as a
ghost that searches leave out, up to GHOST_SHARE of it. A changed image is one of each (it gets a
new id: indexing.catalog). More ghosts, more new vectors than IVF_GROWTH of an IVF-PQ index, and a
flat index build it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from indexing import config
from indexing.errors import BuscadorError
from indexing.progress import progress_bar

log = logging.getLogger(__name__)
INDEX_TYPES = ("auto", "flat", "hnsw", "ivfpq")
# Fewer vectors than this make no sensible inverted file (its lists and codes need training data).
IVFPQ_MIN = 1000
EF_SEARCH = (16, 32, 64, 128, 256, 512)
HNSW_GRID = [{"ef_search": ef} for ef in EF_SEARCH]
NPROBE = (8, 16, 32, 64, 128, 256, 512, 1024)
RERANK = (100, 200, 500, 1000, 2000)
TUNING_QUERIES = 200
# Vectors added to an index at a time: no copy of them all, and a progress bar that moves (an
# HNSW graph takes about 1,600 vectors a second on two cores). Smaller chunks slowed HNSW: 100,000
# vectors took 45.5-46.0 s in chunks of 16,384, 43.9-44.4 s in 32,768, 43.5-47.6 s in 65,536.
ADD_CHUNK = 32768
# Vectors scored at a time in an exact search (`exact_top`): 128 MB of float32 at 512 dimensions.
EXACT_CHUNK = 65536
# The share of a grown index's vectors that may be ghosts (removed images) before it is built
# again: each one still costs a search its visit, and the index its memory.
GHOST_SHARE = 0.1
# New vectors an IVF-PQ index may take, as a share of those it holds, before it is built again:
# its lists and codes were trained on the others.
IVF_GROWTH = 0.2

# The stored vectors of ids (an array of any shape) → an array of that shape plus (dim,): what
# re-scores candidates exactly (the vector file when searching, the build's vectors when tuning).
Stored = Callable[[np.ndarray], np.ndarray]


@dataclass
class Built:
    """A built FAISS index, its search settings and what they were measured to give."""

    index: faiss.Index
    kind: str
    params: dict[str, int] = field(default_factory=dict)
    recall: float = 1.0
    warning: str = ""
    ghosts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # ids searches leave out


class Selection:
    """The ids a search may answer: only `ids` (the images of one folder), or, with `leave_out`,
    all but them (removed images still in a grown graph). Its FAISS selector is only read by
    searches, which share it."""

    def __init__(self, ids: np.ndarray, *, leave_out: bool = False) -> None:
        self.ids = np.asarray(ids, np.int64)
        self._batch = faiss.IDSelectorBatch(self.ids)  # kept alive here: the Not holds a bare pointer
        self.selector = faiss.IDSelectorNot(self._batch) if leave_out else self._batch


def _parameters(params: dict[str, Any], selector: faiss.IDSelector) -> faiss.SearchParameters:
    """FAISS parameters for one search with these settings and `selector`: new each time, because
    FAISS's id map swaps its own selector into them while it searches (concurrent searches must
    not share them)."""
    if "ef_search" in params:
        return faiss.SearchParametersHNSW(sel=selector, efSearch=int(params["ef_search"]))
    if "nprobe" in params:
        return faiss.SearchParametersIVF(sel=selector, nprobe=int(params["nprobe"]))
    return faiss.SearchParameters(sel=selector)


def estimated_bytes(kind: str, count: int, dim: int, code_bytes: int = 0) -> int:
    """Memory the index takes when loaded (and about its file size)."""
    if kind == "flat":
        return count * (4 * dim + 8)
    if kind == "hnsw":
        return count * (4 * dim + 8 + int(2.2 * 4 * config.HNSW_M))
    lists = ivf_lists(count)
    return count * (code_bytes + 8) + lists * 4 * dim


def ivf_lists(count: int) -> int:
    """Inverted lists: a power of two near 2·√count, with at least 39 training vectors each."""
    target = max(16, min(2 * np.sqrt(count), count / 39))
    return int(2 ** np.floor(np.log2(target)))


def code_bytes_for(count: int, dim: int, budget: int) -> int | None:
    """The largest code (bytes a vector: half a byte for each of dim/4, dim/8 or dim/16
    sub-vectors) whose index fits `budget`, or None if none does."""
    for parts in (4, 8, 16):
        code = dim // parts // 2
        if dim % (2 * parts) == 0 and estimated_bytes("ivfpq", count, dim, code) <= budget:
            return code
    return None


def choose(requested: str, count: int, dim: int, budget_mb: int) -> str:
    """`auto`: exact while small and within the budget, then HNSW while it fits, then IVF-PQ."""
    if requested not in INDEX_TYPES:
        raise BuscadorError(f"unknown index type {requested!r}: use {', '.join(INDEX_TYPES)}")
    if requested != "auto":
        return requested
    budget = budget_mb * 2**20
    if count <= config.FLAT_LIMIT and estimated_bytes("flat", count, dim) <= budget:
        return "flat"
    if count < IVFPQ_MIN or estimated_bytes("hnsw", count, dim) <= budget:
        return "hnsw"
    return "ivfpq"


def build(
    kind: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    budget_mb: int,
    progress: bool = False,
) -> Built:
    """Build a `kind` index over (ids, vectors) and tune its search settings to the recall floor;
    with `progress`, an approximate one shows a progress bar (minutes at a million vectors)."""
    vectors = np.ascontiguousarray(vectors, np.float32)
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if len(ids):
            index.add_with_ids(vectors, ids)
        return Built(index, kind)
    with progress_bar(len(ids), f"search index ({kind})", "vec", shown=progress) as bar:
        return _build_approximate(kind, ids, vectors, budget_mb=budget_mb, bar=bar)


def _build_approximate(
    kind: str, ids: np.ndarray, vectors: np.ndarray, *, budget_mb: int, bar: tqdm
) -> Built:
    dim = vectors.shape[1]
    stored = lookup(ids, vectors)
    if kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, config.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = config.HNSW_EF_CONSTRUCTION
        return _add_and_tune(
            faiss.IndexIDMap2(base), HNSW_GRID, kind=kind, ids=ids, vectors=vectors, stored=stored, bar=bar
        )
    if len(ids) < IVFPQ_MIN:
        raise BuscadorError(
            f"an ivfpq index needs at least {IVFPQ_MIN} images ({len(ids)} here): use --index-type auto"
        )
    code = code_bytes_for(len(ids), dim, budget_mb * 2**20)
    if code is None:
        raise BuscadorError(
            f"{len(ids):,} images do not fit a {budget_mb} MB memory budget even as "
            f"{dim // 32}-byte codes: raise --memory-budget"
        )
    lists = ivf_lists(len(ids))
    index = faiss.index_factory(dim, f"IVF{lists},PQ{2 * code}x4fs", faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(0)
    sample = vectors[np.sort(rng.choice(len(ids), size=min(len(ids), 50 * lists), replace=False))]
    bar.set_postfix_str(f"training {lists} lists on {len(sample):,} vectors")
    index.train(sample)
    return _add_and_tune(
        index, _ivf_grid(code, lists), kind=kind, ids=ids, vectors=vectors, stored=stored, bar=bar
    )


def _ivf_grid(code: int, lists: int) -> list[dict[str, int]]:
    """The IVF-PQ search settings tried, cheapest first within each number of re-scored candidates."""
    return [
        {"code_bytes": code, "lists": lists, "nprobe": p, "rerank": r}
        for r in RERANK
        for p in NPROBE
        if p <= lists
    ]


def grow(
    index: faiss.Index,
    built: Built,
    ids: np.ndarray,
    vectors: np.ndarray,
    *,
    budget_mb: int = config.MEMORY_BUDGET_MB,
    progress: bool = False,
) -> Built | None:
    """`index`, an approximate index built (as `built` says) from earlier vectors, grown to the
    sorted `ids` and their `vectors`: the ones it lacks added, the ones it holds beyond them left
    in as ghosts that searches leave out; or None where it should be built again: it is flat,
    ghosts would pass GHOST_SHARE of it, an image it holds changed its vector (HNSW; an IVF-PQ
    index's codes cannot show it: the caller vouches for them, as indexing.store does with the
    vector file's digest), new vectors would pass IVF_GROWTH of an IVF-PQ index (its lists were
    trained without them), or its codes no longer fit `budget_mb`.

    Removed vectors stay as ghosts in both kinds: a graph cannot take a vector out, and FAISS's
    IVF fast-scan lists (1.15) lose vectors added after a removal (measured: 15–22% of them were
    no longer found, even probing every list). A graph grown this way is the graph a build makes,
    which adds one vector at a time too; an inverted file gets the codes a build gives. The
    search settings are tuned again on TUNING_QUERIES of the new vectors, searched before they
    are added (fresh queries, as a build's held-out ones); fewer new vectors than that keep the
    settings and recall measured before.
    """
    held = index_ids(index)
    if not len(held) or not len(ids):
        return None
    present = np.isin(held, ids)
    ghosts = np.sort(held[~present])
    new_rows = np.flatnonzero(~np.isin(ids, held))
    if len(ghosts) > GHOST_SHARE * len(held):
        return None
    grid = _growth_grid(index, built, held, present, ids, vectors, len(new_rows), budget_mb)
    if grid is None:
        return None
    log.info(
        "index grown instead of built again: %d added, %d removed%s",
        len(new_rows),
        len(ghosts),
        " (left out of searches)" if len(ghosts) else "",
    )
    with progress_bar(len(new_rows), f"search index ({built.kind}, grown)", "vec", shown=progress) as bar:
        if len(new_rows) < TUNING_QUERIES:
            _add(index, ids, vectors, new_rows, bar)
            apply(index, built.params)
            return replace(built, index=index, ghosts=ghosts)
        rng = np.random.default_rng(1)
        queries = np.sort(rng.choice(new_rows, size=TUNING_QUERIES, replace=False))
        _add(index, ids, vectors, np.setdiff1d(new_rows, queries), bar)
        bar.set_postfix_str(f"tuning the search settings to recall@10 ≥ {config.RECALL_FLOOR}")
        tuned = _tune(
            index,
            grid,
            kind=built.kind,
            queries=vectors[queries],
            ids=ids,
            vectors=vectors,
            stored=lookup(ids, vectors),
            ghosts=ghosts,
        )
        _add(index, ids, vectors, queries, bar)
    return replace(tuned, ghosts=ghosts)


def _growth_grid(  # noqa: PLR0917 (grow's state, handed on)
    index: faiss.Index,
    built: Built,
    held: np.ndarray,
    present: np.ndarray,
    ids: np.ndarray,
    vectors: np.ndarray,
    new: int,
    budget_mb: int,
) -> list[dict[str, int]] | None:
    """The search settings to tune `index` on once it has grown by `new` vectors, or None where it
    should be built again instead (see grow)."""
    if built.kind == "hnsw":
        if not _graph_holds(index, held, present, ids, vectors):
            return None
        faiss.downcast_index(index.index).hnsw.efConstruction = config.HNSW_EF_CONSTRUCTION
        return HNSW_GRID
    if built.kind == "ivfpq":
        code, lists = int(built.params["code_bytes"]), int(built.params["lists"])
        fits = code_bytes_for(len(held) + new, vectors.shape[1], budget_mb * 2**20) == code
        return _ivf_grid(code, lists) if new <= IVF_GROWTH * len(held) and fits else None
    return None


def _graph_holds(
    index: faiss.Index, held: np.ndarray, present: np.ndarray, ids: np.ndarray, vectors: np.ndarray
) -> bool:
    """Whether `index` is an HNSW graph whose vectors of the `present` ids it holds are still
    those ids' `vectors` (ids sorted)."""
    base = faiss.downcast_index(index.index) if hasattr(index, "id_map") else None
    if not isinstance(base, faiss.IndexHNSWFlat):
        return False
    rows = np.searchsorted(ids, held)  # where each held id is in `ids`, if it is there
    dim = vectors.shape[1]
    storage = faiss.downcast_index(base.storage)
    indexed = faiss.rev_swig_ptr(storage.get_xb(), len(held) * dim).reshape(len(held), dim)
    for start in range(0, len(held), ADD_CHUNK):
        there = present[start : start + ADD_CHUNK]
        if not np.array_equal(
            indexed[start : start + ADD_CHUNK][there], vectors[rows[start : start + ADD_CHUNK][there]]
        ):
            return False  # an image changed
    return True


def _add_and_tune(
    index: faiss.Index,
    grid: list[dict[str, int]],
    *,
    kind: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    stored: Stored,
    bar: tqdm,
) -> Built:
    """Add all but TUNING_QUERIES held-out vectors, tune on those held-out queries (so they are
    not in the index they query, as a visitor's query is not), then add them too."""
    n = len(ids)
    rng = np.random.default_rng(1)
    held = np.sort(rng.choice(n, size=min(TUNING_QUERIES, n // 5), replace=False)) if n else ids[:0]
    bar.set_postfix_str("adding vectors")
    _add(index, ids, vectors, np.setdiff1d(np.arange(n), held), bar)
    bar.set_postfix_str(f"tuning the search settings to recall@10 ≥ {config.RECALL_FLOOR}")
    built = _tune(index, grid, kind=kind, queries=vectors[held], ids=ids, vectors=vectors, stored=stored)
    bar.set_postfix_str(f"recall@10 {built.recall:.3f}")
    _add(index, ids, vectors, held, bar)
    return built


def _add(index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, rows: np.ndarray, bar: tqdm) -> None:
    """Add these rows of (ids, vectors), a chunk at a time (no copy of them all)."""
    for start in range(0, len(rows), ADD_CHUNK):
        chunk = rows[start : start + ADD_CHUNK]
        index.add_with_ids(vectors[chunk], ids[chunk])
        bar.update(len(chunk))


def apply(index: faiss.Index, params: dict[str, Any]) -> None:
    """Set the recorded search settings on a loaded index."""
    if "ef_search" in params:
        faiss.downcast_index(index.index).hnsw.efSearch = int(params["ef_search"])
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])


def search(
    index: faiss.Index,
    params: dict[str, Any],
    queries: np.ndarray,
    k: int,
    stored: Stored,
    *,
    selection: Selection | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k best, best first (ids -1 where fewer), only of those `selection`
    allows: with `rerank`, the index's best `rerank` candidates re-scored exactly with their
    `stored` vectors."""
    rerank = int(params.get("rerank", 0))
    options = {} if selection is None else {"params": _parameters(params, selection.selector)}
    if not rerank:
        return index.search(queries, k, **options)
    _, candidates = index.search(queries, max(k, rerank), **options)
    exact = np.einsum("qcd,qd->qc", stored(np.maximum(candidates, 0)), queries)
    scores = np.where(candidates >= 0, exact, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(candidates, order, 1)
    return np.take_along_axis(scores, order, 1), np.where(ids >= 0, ids, -1)


def exact_top(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the k vectors with the highest inner product with each query, best
    first: exact search, by matrix products over EXACT_CHUNK vectors at a time (2.3 times as fast
    as faiss.knn here: 4.3 against 10.1 s for 200 queries over a million vectors)."""
    k = min(k, len(vectors))
    scores = np.empty((len(queries), 0), np.float32)
    rows = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(vectors), EXACT_CHUNK):
        part = queries @ vectors[start : start + EXACT_CHUNK].T
        best = np.argpartition(-part, min(k, part.shape[1]) - 1, axis=1)[:, :k]
        scores = np.hstack([scores, np.take_along_axis(part, best, 1)])
        rows = np.hstack([rows, best + start])
        if scores.shape[1] > k:
            keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores, rows = np.take_along_axis(scores, keep, 1), np.take_along_axis(rows, keep, 1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)


def index_ids(index: faiss.Index) -> np.ndarray:
    """The ids a FAISS index written by this program holds (id-mapped, or an inverted file)."""
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = []
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            pointer = lists.get_ids(number)
            parts.append(faiss.rev_swig_ptr(pointer, size).copy())
            lists.release_ids(number, pointer)
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def lookup(ids: np.ndarray, vectors: np.ndarray) -> Stored:
    """`Stored` for vectors held in memory, row i being the vector of ids[i]."""
    rows = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, np.int64)
    rows[ids] = np.arange(len(ids))
    return lambda wanted: vectors[rows[wanted]]


def _tune(
    index: faiss.Index,
    grid: list[dict[str, int]],
    *,
    kind: str,
    queries: np.ndarray,
    ids: np.ndarray,
    vectors: np.ndarray,
    stored: Stored,
    k: int = 10,
    ghosts: np.ndarray | None = None,
) -> Built:
    """The fastest settings of `grid` reaching the recall floor on `queries`, or the most
    accurate ones with a warning when none does. The truth is exact search over those of (ids,
    vectors) that the index holds, `ghosts` left out."""
    indexed = set(index_ids(index).tolist()) - set([] if ghosts is None else ghosts.tolist())
    k = min(k, len(indexed))
    if not len(queries) or not k:
        return Built(index, kind, grid[-1], 1.0)
    extra = min(len(ids) - k, len(ids) - len(indexed) + 1)  # vectors not indexed may come first
    _, truth_rows = exact_top(queries, vectors, k + extra)
    truth = [set([i for i in ids[row[row >= 0]].tolist() if i in indexed][:k]) for row in truth_rows]
    results = []
    done: set[int] = set()  # groups (same rerank) where a smaller setting already reached the floor
    for params in grid:
        group = params.get("rerank", 0)
        if group in done:
            continue
        apply(index, params)
        left_out = Selection(ghosts, leave_out=True) if ghosts is not None and len(ghosts) else None
        started = time.perf_counter()
        _, found = search(index, params, queries, k, stored, selection=left_out)
        seconds = time.perf_counter() - started
        hits = sum(len(t & set(row.tolist())) for row, t in zip(found, truth, strict=True))
        recall = round(hits / max(1, sum(len(t) for t in truth)), 4)
        results.append((recall, seconds, params))
        if recall >= config.RECALL_FLOOR:  # larger settings of this group only cost more
            done.add(group)
    good = [r for r in results if r[0] >= config.RECALL_FLOOR]
    if good:
        recall, _, params = min(good, key=lambda r: r[1])
        warning = ""
    else:
        recall, _, params = max(results, key=lambda r: (r[0], -r[1]))
        warning = (
            f"recall@10 {recall:.3f} is below the {config.RECALL_FLOOR} floor with every setting tried: "
            "raise --memory-budget, or use --index-type hnsw or flat"
        )
    apply(index, params)
    return Built(index, kind, params, recall, warning)
