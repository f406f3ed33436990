"""Search: a text, an image or an indexed image's id in, the K most similar images out.

The one place queries are checked and answered; the CLI, the app's buttons and its API all call it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexing import config
from indexing.embedder import Embedder
from indexing.errors import BuscadorError
from indexing.images import ImageInput
from indexing.store import IndexStore


@dataclass(frozen=True)
class Hit:
    """One result: rank (1 = best), cosine similarity, and what it points to."""

    rank: int
    score: float
    id: int
    key: str  # path relative to the folder, or "split/row" of the dataset
    label: str
    path: Path | None  # the original file, when the index was built from a folder that is still there

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the path as a string (or None)."""
        return asdict(self) | {"path": str(self.path) if self.path else None}


def whole_number(value: object, what: str, low: int, high: int) -> int:
    """`value` as an int when it is a whole number in [low, high] (2.0 is, 1.5 and True are not)."""
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    whole = whole or (isinstance(value, (float, np.floating)) and float(value).is_integer())
    number = int(value) if whole else None  # type: ignore[call-overload]
    if number is None or not low <= number <= high:
        raise BuscadorError(
            f"{what} must be a whole number from {low} to {high}, not {value!r}",
            f"bad_{what.lower()}",
            low=low,
            high=high,
            value=value,
        )
    return number


class Searcher:
    """An index and the model that made it, ready for queries; safe to share between threads."""

    def __init__(self, store: IndexStore, embedder: Embedder, *, max_k: int = config.MAX_K) -> None:
        store.require_model(embedder.model_name, embedder.dim)
        self.store = store
        self.embedder = embedder
        self.max_k = max_k
        source = store.manifest.get("source") or {}
        self._root = Path(source["root"]) if source.get("kind") == "folder" else None

    @classmethod
    def open(cls, index_dir: Path, embedder: Embedder, *, max_k: int = config.MAX_K) -> Searcher:
        return cls(IndexStore(index_dir, model=embedder.model_name, dim=embedder.dim), embedder, max_k=max_k)

    def by_text(
        self, text: str | None, k: object = config.TOP_K_DEFAULT, min_score: float = -1.0
    ) -> list[Hit]:
        text = (text or "").strip()
        if not text:
            raise BuscadorError("the description is empty: type what you are looking for", "empty_query")
        k = self._check(k)
        return self._answer(self.embedder.embed_texts([text])[0], k, min_score)

    def by_image(
        self, image: ImageInput | None, k: object = config.TOP_K_DEFAULT, min_score: float = -1.0
    ) -> list[Hit]:
        if image is None or image == "":
            raise BuscadorError("no image given: upload, paste or take a picture first", "no_image")
        k = self._check(k)
        img = self.embedder.load(image)
        vector = self.embedder.embed_pixels(self.embedder.pixels(img)[None])[0]
        return self._answer(vector, k, min_score)

    def by_id(self, item_id: object, k: object = config.TOP_K_DEFAULT, min_score: float = -1.0) -> list[Hit]:
        """Images most like an indexed one ("more like this"), the image itself left out."""
        k = self._check(k)
        item_id = whole_number(item_id, "ID", 0, 2**62)
        vector = self.store.vector(item_id)
        hits = self._answer(vector, k + 1, min_score, exclude=item_id)
        return hits[:k]

    def thumbnail(self, item_id: int) -> bytes | None:
        return self.store.thumbnail(item_id)

    def _check(self, k: object) -> int:
        k = whole_number(k, "K", 1, self.max_k)
        if self.store.count == 0:
            raise BuscadorError(
                "the index is empty: build it from a folder or dataset with images", "empty_index"
            )
        return k

    def _answer(self, vector: np.ndarray, k: int, min_score: float, exclude: int | None = None) -> list[Hit]:
        pairs = [(i, s) for i, s in self.store.search(vector[None], k)[0] if i != exclude and s >= min_score]
        hits = []
        for rank, (item_id, score) in enumerate(pairs, start=1):
            item = self.store.items[item_id]
            path = self._root / item.key if self._root else None
            hits.append(
                Hit(
                    rank,
                    round(score, 6),
                    item_id,
                    item.key,
                    item.label,
                    path if path and path.is_file() else None,
                )
            )
        return hits
