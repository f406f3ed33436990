"""The FAISS index choice under a memory budget, and search settings tuned to a measured recall."""

from __future__ import annotations

import numpy as np
import pytest

from indexing import ann, config
from indexing.errors import BuscadorError


def low_rank(n: int, dim: int = 64, rank: int = 8, seed: int = 0) -> np.ndarray:
    """Unit vectors near a `rank`-dimensional subspace, as the scale benchmark makes them."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, rank), dtype=np.float32) @ rng.standard_normal(
        (rank, dim), dtype=np.float32
    )
    vectors += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_auto_is_exact_while_small_then_hnsw_while_it_fits_then_ivfpq():
    assert ann.choose("auto", 50_000, 512, 1024) == "flat"
    assert ann.choose("auto", 300_000, 512, 1024) == "hnsw"  # 0.7 GB of graph and vectors
    assert ann.choose("auto", 1_000_000, 512, 1024) == "ivfpq"
    assert ann.choose("auto", 300_000, 512, 256) == "ivfpq"  # a smaller budget
    assert ann.choose("hnsw", 1_000_000, 512, 1024) == "hnsw"  # asked for by name
    assert ann.estimated_bytes("ivfpq", 1_000_000, 512, ann.code_bytes_for(1_000_000, 512, 2**30)) < 80e6
    with pytest.raises(BuscadorError, match="unknown index type"):
        ann.choose("lsh", 10, 512, 1024)


def test_an_ivfpq_index_is_tuned_to_the_recall_floor_and_answers_with_exact_scores():
    vectors = low_rank(6000)
    ids = np.arange(100, 6100, dtype=np.int64)  # ids are not row numbers
    built = ann.build("ivfpq", ids, vectors, budget_mb=64)
    assert built.kind == "ivfpq" and built.recall >= config.RECALL_FLOOR and not built.warning
    assert set(built.params) == {"code_bytes", "lists", "nprobe", "rerank"}
    query = vectors[1234][None]
    scores, found = ann.search(built.index, built.params, query, 5, ann.lookup(ids, vectors))
    assert found[0][0] == 1334 and scores[0][0] == pytest.approx(1.0, abs=1e-5)
    exact = np.sort(vectors @ query[0])[::-1][:5]
    assert np.allclose(scores[0], exact, atol=1e-5), "re-scored candidates carry exact cosines"


def test_a_setting_that_cannot_reach_the_floor_says_so():
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((3000, 64)).astype(np.float32)  # no structure: IVF's worst case
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    ids = np.arange(3000, dtype=np.int64)
    original = ann.NPROBE, ann.RERANK
    try:
        ann.NPROBE, ann.RERANK = (1,), (10,)  # far too few lists probed and candidates re-scored
        built = ann.build("ivfpq", ids, noise, budget_mb=64)
    finally:
        ann.NPROBE, ann.RERANK = original
    assert built.recall < config.RECALL_FLOOR and "below the 0.95 floor" in built.warning


def test_recall_is_measured_not_assumed():
    vectors = low_rank(800)
    ids = np.arange(800, dtype=np.int64)
    good = ann.build("hnsw", ids, vectors, budget_mb=64)
    assert good.recall >= config.RECALL_FLOOR
    wrong = ann.build("hnsw", ids, vectors[np.random.default_rng(0).permutation(800)], budget_mb=64)
    # ids that point at the wrong vectors: measured against the true vectors, recall collapses
    stored = ann.lookup(ids, vectors)
    tuned = ann._tune(
        wrong.index,
        [wrong.params],
        kind="hnsw",
        queries=vectors[:50],
        ids=ids,
        vectors=vectors,
        stored=stored,
    )
    assert tuned.recall < 0.2


def test_a_collection_too_big_for_the_budget_is_refused_with_advice():
    with pytest.raises(BuscadorError, match="raise --memory-budget"):
        ann.build("ivfpq", np.arange(2000, dtype=np.int64), low_rank(2000), budget_mb=0)
    with pytest.raises(BuscadorError, match="at least 1000 images"):
        ann.build("ivfpq", np.arange(10, dtype=np.int64), low_rank(10), budget_mb=64)


def test_building_an_approximate_index_shows_its_progress(capsys):
    vectors = low_rank(2000)
    ann.build("ivfpq", np.arange(2000, dtype=np.int64), vectors, budget_mb=64, progress=True)
    shown = capsys.readouterr().err
    assert "search index (ivfpq)" in shown and "2000/2000" in shown
    assert "training" in shown and "tuning the search settings" in shown and "recall@10 0." in shown
    ann.build("hnsw", np.arange(500, dtype=np.int64), vectors[:500], budget_mb=64)  # quiet by default
    assert capsys.readouterr().err == ""


def test_an_hnsw_index_grows_by_new_vectors_and_is_tuned_again_on_them():
    vectors = low_rank(3000, seed=4)
    ids = np.arange(0, 6000, 2, dtype=np.int64)
    first = ann.build("hnsw", ids[:2500], vectors[:2500], budget_mb=64)
    grown = ann.grow(first.index, first, ids, vectors)  # 500 new: tuned again on 200 of them
    assert grown is not None and grown.index.ntotal == 3000 and grown.recall >= config.RECALL_FLOOR
    assert sorted(ann.index_ids(grown.index).tolist()) == ids.tolist()
    _, found = ann.search(grown.index, grown.params, vectors[2900:2910], 1, ann.lookup(ids, vectors))
    assert found[:, 0].tolist() == ids[2900:2910].tolist()  # new vectors are found

    few = ann.grow(grown.index, grown, np.append(ids, 7000), np.vstack([vectors, vectors[:1]]))
    assert few is not None and (few.params, few.recall) == (grown.params, grown.recall)  # 1 new: kept
    assert few.index.ntotal == 3001


def test_removed_vectors_stay_in_a_grown_graph_as_ghosts_that_searches_leave_out():
    vectors = low_rank(400, seed=5)
    ids = np.arange(400, dtype=np.int64)
    built = ann.build("hnsw", ids[:300], vectors[:300], budget_mb=64)
    grown = ann.grow(built.index, built, ids[5:], vectors[5:])  # 0-4 removed, 100 added
    assert grown is not None and grown.ghosts.tolist() == [0, 1, 2, 3, 4] and grown.index.ntotal == 400
    stored = ann.lookup(ids, vectors)
    _, kept_in = ann.search(grown.index, grown.params, vectors[:5], 1, stored)
    assert kept_in[:, 0].tolist() == [0, 1, 2, 3, 4]  # still in the graph...
    ghosts = ann.Selection(grown.ghosts, leave_out=True)
    _, found = ann.search(grown.index, grown.params, vectors[:5], 3, stored, selection=ghosts)
    assert (found >= 5).all()  # ...but never found
    _, found = ann.search(grown.index, grown.params, vectors[390:395], 1, stored, selection=ghosts)
    assert found[:, 0].tolist() == [390, 391, 392, 393, 394]


def test_concurrent_searches_leave_the_ghosts_out_each_time():
    from concurrent.futures import ThreadPoolExecutor

    vectors = low_rank(2000, seed=6)
    ids = np.arange(2000, dtype=np.int64)
    built = ann.build("hnsw", ids, vectors, budget_mb=64)
    grown = ann.grow(built.index, built, ids[::2], vectors[::2])  # half gone: past the share
    assert grown is None
    grown = ann.grow(built.index, built, ids[100:], vectors[100:])
    ghosts = ann.Selection(grown.ghosts, leave_out=True)
    stored = ann.lookup(ids, vectors)
    alone = ann.search(grown.index, grown.params, vectors[:200], 10, stored, selection=ghosts)[1]

    def one(row: int) -> np.ndarray:
        return ann.search(grown.index, grown.params, vectors[row : row + 1], 10, stored, selection=ghosts)[1][
            0
        ]

    with ThreadPoolExecutor(8) as pool:
        together = np.stack(list(pool.map(one, list(range(200)) * 5)))
    assert (together >= 100).all()  # no ghost, whichever thread searched
    assert np.array_equal(together[:200], alone)


def test_an_ivfpq_index_grows_with_ghosts_and_is_tuned_again():
    vectors = low_rank(3000, seed=7)
    ids = np.arange(3000, dtype=np.int64)
    built = ann.build("ivfpq", ids[:2600], vectors[:2600], budget_mb=64)
    grown = ann.grow(built.index, built, ids[100:], vectors[100:], budget_mb=64)  # 100 out, 400 in
    assert grown is not None and grown.recall >= config.RECALL_FLOOR
    assert grown.ghosts.tolist() == list(range(100)) and grown.index.ntotal == 3000
    stored = ann.lookup(ids, vectors)
    ghosts = ann.Selection(grown.ghosts, leave_out=True)
    _, found = ann.search(grown.index, grown.params, vectors[100:], 10, stored, selection=ghosts)
    assert all(i in row for i, row in zip(ids[100:], found.tolist(), strict=True))  # each finds itself
    _, found = ann.search(grown.index, grown.params, vectors[:5], 5, stored, selection=ghosts)
    assert (found >= 100).all()  # removed ones are left out


def test_an_index_that_cannot_grow_says_so():
    vectors = low_rank(400, seed=5)
    ids = np.arange(400, dtype=np.int64)
    built = ann.build("hnsw", ids[:300], vectors[:300], budget_mb=64)
    assert ann.grow(built.index, built, ids[40:], vectors[40:]) is None  # 40 ghosts: over GHOST_SHARE
    changed = vectors.copy()
    changed[7] = changed[8]
    assert ann.grow(built.index, built, ids, changed) is None  # id 7's vector changed
    assert built.index.ntotal == 300  # and nothing was added to it
    lists = low_rank(1600, seed=8)
    ivf = ann.build("ivfpq", np.arange(1200), lists[:1200], budget_mb=64)
    assert ann.grow(ivf.index, ivf, np.arange(1600), lists, budget_mb=64) is None  # 400 new: retrain
    assert ivf.index.ntotal == 1200
    flat = ann.build("flat", ids[:300], vectors[:300], budget_mb=64)
    assert ann.grow(flat.index, flat, ids, vectors) is None  # not a graph
