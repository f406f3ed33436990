"""Duplicate-finder benchmark: time to group near-duplicates among N synthetic CLIP-like vectors.

The vectors are low-rank plus noise (as in bench_indexing); 1% of them get one to three planted
near-copies (cosine about 0.98 with their original, as a re-encoded photo). Prints the time of
`indexing.duplicates.duplicate_pairs` at the default threshold, and how many planted copies it
found in their original's group (recall) against how many groups hold no planted pair.

Usage: .venv/bin/python -m benchmarks.bench_duplicates [--vectors 100000 1000000]
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import arguments
from benchmarks.vectors import synthetic_vectors
from indexing import config
from indexing.duplicates import EXACT_LIMIT, duplicate_pairs


def planted(n: int, seed: int = 1) -> tuple[np.ndarray, dict[int, int]]:
    """n vectors, the last ones near-copies of others; copy row → original row."""
    originals = n // 100
    rng = np.random.default_rng(seed)
    copies_each = rng.integers(1, 4, originals)
    total_copies = int(copies_each.sum())
    base = synthetic_vectors(n - total_copies, "lowrank", seed)
    sources = rng.choice(len(base), size=originals, replace=False)
    rows = np.repeat(sources, copies_each)
    noise = rng.standard_normal((total_copies, base.shape[1]), dtype=np.float32) * 0.009
    copies = base[rows] + noise
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    vectors = np.concatenate([base, copies])
    return vectors, {len(base) + i: int(r) for i, r in enumerate(rows)}


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--vectors", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    for n in args.vectors:
        vectors, copy_of = planted(n)
        mean_copy_cos = float(np.mean([vectors[c] @ vectors[o] for c, o in list(copy_of.items())[:1000]]))
        ids = np.arange(n, dtype=np.int64)
        started = time.perf_counter()
        groups = duplicate_pairs(ids, vectors, config.DUPLICATE_THRESHOLD)
        seconds = time.perf_counter() - started
        group_of = {i: g for g, members in enumerate(groups) for i, _ in members}
        found = sum(group_of.get(c, -1) == group_of.get(o, -2) for c, o in copy_of.items())
        planted_groups = {group_of[o] for o in copy_of.values() if o in group_of}
        method = "exact k-NN" if n <= EXACT_LIMIT else "IVF k-NN"
        print(
            f"{n:>9,} vectors ({method}): {seconds:6.1f} s, {len(groups):,} groups; planted copies found "
            f"{found / len(copy_of):.3f} (copy cosine {mean_copy_cos:.3f}), groups without a planted copy "
            f"{len(set(range(len(groups))) - planted_groups)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
