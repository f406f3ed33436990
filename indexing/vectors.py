"""The vector file: the one durable copy of the embeddings, as float16, row = catalog id.

    vectors.f16   little-endian float16, `dim` values a row, no header (the manifest records
                  dtype and dimension). Row i holds the vector of catalog id i; rows of removed
                  images stay until the next merge or clean build.

Any index type is rebuilt from this file; search reads it memory-mapped, to re-score approximate
candidates and to fetch the vector of an image ("more like this", folding near-duplicates).
float16 keeps 11 significant bits: cosines of unit vectors move by about 1e-4 at most (measured by
benchmarks/bench_scale.py). A build writes rows before it commits their catalog rows, so rows a
crash left behind are overwritten by the run that resumes it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from indexing.errors import BuscadorError

DTYPE = np.dtype("<f2")
NAME = "vectors.f16"


class VectorFile:
    """Rows of float16 vectors addressed by id."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._row_bytes = dim * DTYPE.itemsize
        self._map: np.memmap | None = None

    def rows(self) -> int:
        """How many rows the file holds (ids up to rows − 1)."""
        try:
            return self.path.stat().st_size // self._row_bytes
        except FileNotFoundError:
            return 0

    def write(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Write each vector at its id's row (growing the file as needed), then sync to disk."""
        if not len(ids):
            return
        data = np.ascontiguousarray(vectors, DTYPE)
        order = np.argsort(ids, kind="stable")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            start = 0
            ids = np.asarray(ids)[order]
            data = data[order]
            while start < len(ids):  # one write per run of consecutive ids
                end = start + 1
                while end < len(ids) and ids[end] == ids[end - 1] + 1:
                    end += 1
                os.pwrite(fd, data[start:end].tobytes(), int(ids[start]) * self._row_bytes)
                start = end
            os.fsync(fd)
        finally:
            os.close(fd)
        self._map = None

    def read(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The vectors of these ids as float32, in the shape of `ids` plus (dim,)."""
        ids = np.asarray(ids, np.int64)
        rows = self._mapped()
        if ids.size and (ids.min() < 0 or ids.max() >= len(rows)):
            raise BuscadorError(
                f"{self.path} has no vector for some ids (a build was interrupted or files were "
                "mixed); run the build again to repair it"
            )
        return rows[ids].astype(np.float32)

    def _mapped(self) -> np.ndarray:
        count = self.rows()
        if self._map is None or len(self._map) != count:
            if count == 0:
                return np.empty((0, self.dim), DTYPE)
            self._map = np.memmap(self.path, DTYPE, "r", shape=(count, self.dim))
        return self._map
