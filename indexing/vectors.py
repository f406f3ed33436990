"""The vector file: the one durable copy of the embeddings, as float16, row = catalog id.

    vectors.f16   little-endian float16, `dim` values a row, no header (the manifest records
                  dtype and dimension). Row i holds the vector of catalog id i; rows of removed
                  images stay until the next merge or clean build.

Any index type is rebuilt from this file; search reads rows of it, to re-score approximate
candidates and to fetch the vector of an image ("more like this", folding near-duplicates).
float16 keeps 11 significant bits: cosines of unit vectors move by about 1e-4 at most (measured by
benchmarks/bench_scale.py). A build writes rows before it commits their catalog rows, so rows a
crash left behind are overwritten by the run that resumes it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
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
        order = np.argsort(ids, kind="stable")
        ids = np.asarray(ids)[order]
        data = np.ascontiguousarray(vectors, DTYPE)[order]
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            for a, b in _runs(ids):
                os.pwrite(fd, data[a:b].tobytes(), int(ids[a]) * self._row_bytes)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """The vectors of these ids as float32, in the shape of `ids` plus (dim,).

        Read with one pread per run of consecutive ids, not memory-mapped: a mapping would count
        every page the kernel maps around a touched row (whole large folios) as this process's
        memory, up to the whole file after a few hundred queries.
        """
        ids = np.asarray(ids, np.int64)
        wanted, inverse = np.unique(ids.ravel(), return_inverse=True)
        if wanted.size and (wanted[0] < 0 or wanted[-1] >= self.rows()):
            raise BuscadorError(
                f"{self.path} has no vector for some ids (a build was interrupted or files were "
                "mixed); run the build again to repair it"
            )
        found = np.empty((len(wanted), self.dim), DTYPE)
        if wanted.size:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                for a, b in _runs(wanted):
                    data = os.pread(fd, int(b - a) * self._row_bytes, int(wanted[a]) * self._row_bytes)
                    found[a:b] = np.frombuffer(data, DTYPE).reshape(-1, self.dim)
            finally:
                os.close(fd)
        return found[inverse].reshape(*ids.shape, self.dim).astype(np.float32)


def _runs(ids: np.ndarray) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of consecutive values in sorted `ids`: one read or write each."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ids) != 1) + 1, [len(ids)]])
    return itertools.pairwise(starts.tolist())
