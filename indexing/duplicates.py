"""Near-duplicates across a whole index: groups of images whose vectors are at least a threshold
similar (copies, re-encodings, resizes, burst shots), biggest groups first.

Each vector's nearest neighbours come from FAISS, not an all-pairs loop: exact k-NN up to
EXACT_LIMIT vectors, an inverted-file index (IVF, a few lists probed) above, since near-duplicates
lie so close together that they share a list. Pairs above the threshold are joined into groups
(union-find), so a group may be larger than the neighbours each image looks at.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from indexing.narrowing import Narrowing
from indexing.progress import progress_bar
from indexing.ratings import stars
from indexing.store import IndexStore, folder_name

# Up to this many vectors, every vector's neighbours are found exactly.
EXACT_LIMIT = 50_000
NEIGHBOURS = 10
IVF_PROBES = 4
# Images whose neighbours are searched in one call (the progress bar moves between calls).
SEARCH_CHUNK = 16384


@dataclass(frozen=True)
class Member:
    """One image of a group, its cosine with the group's first image, and its rating (stars, -1
    rejected, None unrated): which of a burst to keep."""

    id: int
    key: str
    label: str
    similarity: float
    rating: int | None = None

    @property
    def stars(self) -> str:
        """Its rating as stars ("★★★★"; "" unrated or rejected)."""
        return stars(self.rating)


def duplicate_pairs(
    ids: np.ndarray, vectors: np.ndarray, threshold: float, *, progress: bool = False
) -> list[list[tuple[int, float]]]:
    """Groups of ids (each (id, cosine with the group's first id)), biggest first, then by first
    id. `progress`: a progress bar over the images searched (minutes at a million)."""
    n = len(ids)
    if n < 2:
        return []
    vectors = np.ascontiguousarray(vectors, np.float32)
    k = min(NEIGHBOURS + 1, n)
    if n <= EXACT_LIMIT:
        index: faiss.Index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        lists = int(4 * np.sqrt(n))
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).choice(n, size=min(n, 40 * lists), replace=False)]
        index.train(sample)
        index.nprobe = IVF_PROBES
    index.add(vectors)
    scores = np.empty((n, k), np.float32)
    neighbours = np.empty((n, k), np.int64)
    with progress_bar(n, "near-duplicates", "img", shown=progress) as bar:
        for start in range(0, n, SEARCH_CHUNK):
            stop = min(start + SEARCH_CHUNK, n)
            scores[start:stop], neighbours[start:stop] = index.search(vectors[start:stop], k)
            bar.update(stop - start)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows, cols = np.nonzero((scores >= threshold) & (neighbours >= 0))
    for i, j in zip(rows, neighbours[rows, cols], strict=True):
        a, b = root(int(i)), root(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) > 1:
            first = vectors[members[0]]
            out.append([(int(ids[m]), float(vectors[m] @ first)) for m in members])
    out.sort(key=lambda g: (-len(g), g[0][0]))
    return out


def find_duplicates(
    store: IndexStore, threshold: float, *, within: str = "", progress: bool = False
) -> list[list[Member]]:
    """The near-duplicate groups of an index, or of its folder `within`, with keys, labels and
    ratings."""
    folder = folder_name(within)
    ids = store.among(Narrowing(folder)).ids
    vectors = store.vectors.read(ids) if len(ids) else np.empty((0, store.dim), np.float32)
    groups = duplicate_pairs(ids, vectors, threshold, progress=progress)
    items = store.items(i for group in groups for i, _ in group)
    return [
        [Member(i, items[i].key, items[i].label, round(s, 6), items[i].rating) for i, s in group]
        for group in groups
    ]
