"""Synthetic CLIP-like vectors for the benchmarks."""

from __future__ import annotations

import numpy as np


def synthetic_vectors(n: int, kind: str, seed: int = 0) -> np.ndarray:
    """Unit vectors: 'uniform' (isotropic, HNSW's worst case) or 'lowrank' (64-d latent + noise).

    CLIP embeddings of a real collection are clustered and have a low intrinsic dimension, so the
    low-rank set is the closer stand-in; both are reported.
    """
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        vectors = rng.standard_normal((n, 512), dtype=np.float32)
    else:
        basis = rng.standard_normal((64, 512), dtype=np.float32)
        vectors = rng.standard_normal((n, 64), dtype=np.float32) @ basis
        vectors += 2.0 * rng.standard_normal((n, 512), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
