"""Search: a text, an image or an indexed image's id in, the K most similar images out.

The one place queries are checked and answered; the CLI, the app's buttons and its API all call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexing import config
from indexing.captions import looked_up
from indexing.catalog import Item
from indexing.errors import BuscadorError
from indexing.images import ImageInput
from indexing.narrowing import Narrowing, split_query
from indexing.places import place_label
from indexing.sources import file_of, folder_roots
from indexing.store import IndexStore, Subset, folder_name

if TYPE_CHECKING:  # (the models' module loads torch and transformers: seconds a listing does without)
    from indexing.embedder import EmbedderLike, TextEncoderLike


@dataclass(frozen=True)
class Hit:
    """One result: rank (1 = best), cosine similarity (None when browsing a period: see
    Searcher.by_query), and what it points to."""

    rank: int
    score: float | None
    id: int
    key: str  # path in the folder (its name first, of several), or "split/row" of the dataset
    label: str
    path: Path | None  # the original file, when the index was built from a folder (there at start-up)
    folded: tuple[int, ...] = ()  # ids of near-duplicates of this result, folded into it
    meta: dict[str, str] | None = None  # the dataset's own fields for it (caption, artist, URL...)
    taken: str | None = None  # when it was taken, where its file says ("2019-07-14T18:22:05")
    # Where it was taken, as the catalog names it: its town ("" near none) and country code.
    town: str | None = None
    country: str | None = None
    seconds: float | None = None  # how long a video lasts
    tags: tuple[str, ...] = ()  # its keywords (XMP's)
    rating: int | None = None  # its stars (1 to 5, -1 rejected; None: unrated)
    caption: str | None = None  # its title and description (indexing.captions)

    @property
    def place(self) -> str | None:
        """Where it was taken: "Leganés, Spain", "United States" near no town, None unsaid."""
        return self.place_in("en")

    def place_in(self, lang: str) -> str | None:
        """`place` in `lang` ("Londres, Reino Unido" in Spanish)."""
        return place_label(self.town, self.country, lang)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the path as a string (or None), and the place named (not its parts)."""
        data = asdict(self) | {"path": str(self.path) if self.path else None, "folded": list(self.folded)}
        del data["town"], data["country"]
        return data | {"place": self.place}


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


def number_in(value: object, low: float, high: float, message: str, code: str) -> float:
    """`value` as a float when it is a number (not a bool) from `low` to `high`; else a
    BuscadorError with `message` (which may name {value!r}) and `code`."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not number or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise BuscadorError(message.format(value=value), code, value=value)
    return float(value)  # type: ignore[arg-type]


def score_bound(value: object) -> float:
    """A minimum score: a number from -1 to 1 (cosine similarities lie there)."""
    return number_in(
        value, -1.0, 1.0, "the minimum score must be a number from -1 to 1, not {value!r}", "bad_min_score"
    )


def duplicate_threshold(value: object) -> float:
    """A near-duplicate threshold: a cosine from 0 (off) to 1."""
    return number_in(
        value,
        0.0,
        1.0,
        "the near-duplicate threshold must be a number from 0 (off) to 1, not {value!r}",
        "bad_threshold",
    )


class Searcher:
    """An index and the model that made it, ready for queries; safe to share between threads.

    Each query method takes `collapse`, a near-duplicate threshold (0: off): results whose vectors
    are at least that similar to a better-ranked result are folded into it (`Hit.folded`), and K
    still means K distinct results. And an optional `timings` dict, to which it adds the seconds
    spent embedding the query ("embed") and searching the index ("search").
    """

    def __init__(
        self,
        store: IndexStore,
        embedder: EmbedderLike,
        *,
        max_k: int = config.MAX_K,
        text_encoder: TextEncoderLike | None = None,
    ) -> None:
        store.require_model(embedder.model_name, embedder.dim)
        if text_encoder is not None:
            text_encoder.require_image_model(store.model)
        self.store = store
        self.embedder = embedder
        self.max_k = max_k
        # For texts in other languages than English (see `by_query`), when there is one.
        self.text_encoder = text_encoder
        # The folders of an index of folders that are on this machine: checked once, not per hit.
        found = folder_roots(store.manifest.get("source") or {})
        self._roots = {name: folder for name, folder in found.items() if folder.is_dir()}

    @classmethod
    def open(
        cls,
        index_dir: Path,
        embedder: EmbedderLike,
        *,
        max_k: int = config.MAX_K,
        text_encoder: TextEncoderLike | None = None,
        fetch: Callable[[str], Path | None] | None = None,
    ) -> Searcher:
        """`fetch` gets thumbnail shards the index folder lacks (see indexing.thumbnails)."""
        store = IndexStore(index_dir, model=embedder.model_name, dim=embedder.dim, fetch=fetch)
        return cls(store, embedder, max_k=max_k, text_encoder=text_encoder)

    def text_encoder_for(self, language: str) -> str:
        """Which encoder embeds a text in `language`: "clip" for English, else "multilingual"
        when there is a second text encoder."""
        return "clip" if self._encoder(language) is self.embedder else "multilingual"

    def _encoder(self, language: str) -> EmbedderLike | TextEncoderLike:
        """The encoder that embeds a text in `language` (`text_encoder_for` names it)."""
        return self.text_encoder if self.text_encoder is not None and language != "en" else self.embedder

    def by_text(
        self, text: str | None, k: object = config.TOP_K_DEFAULT, min_score: object = -1.0, **options: Any
    ) -> list[Hit]:
        """Images described by `text`; words written `-word` (or `-"two words"`) are left out.
        `options`: by_query's (offset, collapse, within, language, timings)."""
        if not (text or "").strip():
            raise BuscadorError("the description is empty: type what you are looking for", "empty_query")
        return self.by_query(text, k=k, min_score=min_score, **options)

    def words_read(self, text: str, language: str = "en") -> str | None:
        """Where the text model that embeds description `text` in `language` stops reading it:
        the words it reads when the description is longer than the model takes (the rest is left
        out), else None. `taken:`, `near:`, `is:`, `tag:` and the words left out are not the description's."""
        described = split_query(text).described
        return self._encoder(language).words_read(described) if described else None

    def captioned(self, text: str, within: str = "") -> tuple[str, int] | None:
        """For description `text` searched without `caption:`, in folder `within`: the words of it
        that captions are looked up by (indexing.captions.looked_up) and how many of the photos
        searched have them all in their caption (a search with `caption:"…"` narrows to them);
        None where none has, or the index has no captions, or more than config.CAPTIONS_HINTED
        without their word index (each search would scan them)."""
        captions = self.store.manifest.get("captions", 0)
        if not captions or (captions > config.CAPTIONS_HINTED and not self.store.catalog.caption_words):
            return None
        parts = split_query(text)
        words = looked_up(parts.described) if parts.caption is None else ""
        if not words:
            return None
        searched = self._among(parts.narrowing(self._folder_of(within)))  # the search's, kept
        found = self.store.how_many_captioned(words, None if searched is None else searched.ids)
        return (words, found) if found else None

    def by_image(
        self,
        image: ImageInput | None,
        k: object = config.TOP_K_DEFAULT,
        min_score: object = -1.0,
        **options: Any,
    ) -> list[Hit]:
        """Images like `image`. `options`: by_query's (offset, collapse, within, timings)."""
        if image is None or image == "":
            raise BuscadorError("no image given: upload, paste or take a picture first", "no_image")
        return self.by_query(image=image, k=k, min_score=min_score, **options)

    def by_query(
        self,
        text: str | None = None,
        image: ImageInput | None = None,
        *,
        negative: str | Sequence[str] = (),
        image_weight: object = 0.5,
        k: object = config.TOP_K_DEFAULT,
        min_score: object = -1.0,
        offset: object = 0,
        collapse: object = 0.0,
        within: str = "",
        language: str = "en",
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """The general query: a text, an example image, or both, minus what to leave out, among
        all images or those the query narrows to (indexing.narrowing): in folder `within`, taken
        in the period the text names (`taken:2019`) near the place it names (`near:Madrid`), of
        the kind (`is:video`), with the keyword (`tag:Ana`), the least rating (`rating:4`) and the
        words of a caption (`caption:birthday`) it names. Texts in `language` go to
        `text_encoder_for(language)`. A narrowing alone browses it: its photos in the order they
        were taken, without scores.

        query = normalise((1 − w)·t + w·i) − mean of the negatives' vectors, normalised again;
        t, i and each negative are unit vectors (text, image, `-word`s and `negative`), w is
        `image_weight`, and a lone text or image is taken as it is.
        """
        query = split_query(text or "")
        positive = query.described
        narrowing = query.narrowing(self._folder_of(within))
        extra = negative.split(",") if isinstance(negative, str) else list(negative)
        negatives = query.left_out + [n.strip() for n in extra if n and n.strip()]
        has_image = image is not None and image != ""
        if not positive and not has_image:
            if narrowing.beyond_folder and not negatives:
                return self._in_date_order(narrowing, k, offset)
            if negatives:
                raise BuscadorError(
                    "the query only says what to leave out: add what you are looking for",
                    "negatives_only",
                )
            raise BuscadorError("the query is empty: type a description or give an image", "empty_query")
        k, min_score, threshold = self._check(k, min_score, collapse)
        weight = _fraction(image_weight)
        offset = whole_number(offset, "offset", 0, config.MAX_K - k)
        only = self._among(narrowing)
        started = time.perf_counter()
        texts = [positive, *negatives] if positive else negatives
        text_vectors = (
            self._encoder(language).embed_texts(texts) if texts else np.empty((0, self.store.dim), np.float32)
        )
        vector = text_vectors[0] if positive else None
        if has_image:
            pixels = self.embedder.embed_pixels(self.embedder.pixels(self.embedder.load(image))[None])[0]
            vector = pixels if vector is None else _normalise((1 - weight) * vector + weight * pixels)
        if negatives:
            vector = _normalise(vector - text_vectors[-len(negatives) :].mean(0))
        _add(timings, "embed", started)
        return self._answer(vector, k, min_score, threshold, timings=timings, offset=offset, only=only)

    def _in_date_order(self, narrowing: Narrowing, k: object, offset: object) -> list[Hit]:
        """Photos offset+1 to offset+K of `narrowing`, in the order they were taken (those of
        the same moment in id order, those that do not say when last)."""
        k, _, _ = self._check(k, -1.0, 0.0)
        offset = whole_number(offset, "offset", 0, config.MAX_K - k)
        if narrowing.period is not None and replace(narrowing, folder="", period=None).everything:
            page = self._period_page(narrowing, k, offset)  # a period's: a page of the date index
        else:  # a place's photos, the videos, a keyword's, a rating's: a few, listed whole
            subset = self.store.among(narrowing)
            page = self.store.in_date_order(subset)[offset : offset + k].tolist()
        items = self.store.items(page)
        found = [items[i] for i in page if i in items]
        return [self._hit(rank, None, item) for rank, item in enumerate(found, start=offset + 1)]

    def _period_page(self, narrowing: Narrowing, k: int, offset: int) -> list[int]:
        """Ids offset+1 to offset+K of a narrowing to a period (in a folder), read through the
        date index."""
        period, folder = narrowing.period, narrowing.folder
        assert period is not None
        if not self.store.catalog.dated:
            self._among(narrowing)  # says why: an index built before dates were read
        page = self.store.catalog.taken_page(
            period.start, period.end, f"{folder}/" if folder else "", k, offset
        )
        if not page and not offset:
            self._among(narrowing)  # says why: no such folder, no dated photo, none then
        return page

    def by_id(
        self,
        item_id: object,
        k: object = config.TOP_K_DEFAULT,
        min_score: object = -1.0,
        *,
        offset: object = 0,
        collapse: object = 0.0,
        within: str = "",
        timings: dict[str, float] | None = None,
    ) -> list[Hit]:
        """Images most like an indexed one ("more like this"), the image itself left out."""
        k, min_score, threshold = self._check(k, min_score, collapse)
        offset = whole_number(offset, "offset", 0, config.MAX_K - k)
        item_id = whole_number(item_id, "ID", 0, 2**62)
        vector = self.store.vector(item_id)
        only = self._among(Narrowing(self._folder_of(within)))
        return self._answer(
            vector, k, min_score, threshold, timings=timings, exclude=item_id, offset=offset, only=only
        )

    def thumbnail(self, item_id: int) -> bytes | None:
        return self.store.thumbnail(item_id)

    def original(self, item_id: int) -> Path | None:
        """The file image `item_id` was indexed from, when this is an index of a folder on this
        machine and the file is still there; else None (a dataset's row, a moved file)."""
        item = self.store.items([item_id]).get(item_id)
        path = self._path(item.key) if item else None
        if path is None or not path.is_file():
            return None
        # As a build does: a link (made since) that leads out of the folder is not followed.
        root = next(folder for folder in self._roots.values() if path.is_relative_to(folder))
        return path if path.resolve().is_relative_to(root.resolve()) else None

    def _path(self, key: str) -> Path | None:
        """Where the image of `key` is, for an index of folders on this machine: never outside
        its folder, whatever a catalog says."""
        return file_of(self._roots, key)

    def _check(self, k: object, min_score: object, collapse: object) -> tuple[int, float, float]:
        k = whole_number(k, "K", 1, self.max_k)
        min_score = score_bound(min_score)
        threshold = duplicate_threshold(collapse)
        if self.store.count == 0:
            raise BuscadorError(
                "the index is empty: build it from a folder or dataset with images", "empty_index"
            )
        return k, min_score, threshold

    def _among(self, narrowing: Narrowing) -> Subset | None:
        """The images of `narrowing`, or None for all."""
        if narrowing.everything:
            return None
        subset = self.store.among(narrowing)
        # A period every image was taken in: a search of the whole index, without a selector
        # (whose cost grows with the ids it holds: 50 ms at a million against 5).
        return None if len(subset.ids) == self.store.count else subset

    def _folder_of(self, within: object) -> str:
        """Folder `within` as its images' keys start (see folder_name)."""
        if not isinstance(within, str):
            raise BuscadorError(f"a folder is a text, not {within!r}", "bad_folder", value=within)
        return folder_name(within)

    def _answer(
        self,
        vector: np.ndarray,
        k: int,
        min_score: float,
        threshold: float,
        *,
        timings: dict[str, float] | None,
        exclude: int | None = None,
        offset: int = 0,
        only: Subset | None = None,
    ) -> list[Hit]:
        """Results offset+1 to offset+K (distinct ones, with a threshold), fetching more candidates
        as near-duplicates are folded, up to config.COLLAPSE_CANDIDATES; among `only`'s images
        where given."""
        k += offset
        wanted = k + (exclude is not None)
        count = self.store.count if only is None else len(only.ids)
        fetch = wanted if not threshold else min(4 * wanted, count)
        while True:
            started = time.perf_counter()
            found = [(i, s) for i, s in self.store.search(vector[None], fetch, only=only)[0] if i != exclude]
            _add(timings, "search", started)
            kept = self._fold(found, k, min_score, threshold)
            bound = min(count, max(config.COLLAPSE_CANDIDATES, wanted))
            if not threshold or len(kept) >= k or fetch >= bound:
                break
            fetch = min(4 * fetch, bound)
        items = self.store.items(item_id for item_id, _, _ in kept[offset:])
        # An image that a build writing this folder has just removed is in the index still, until
        # the app serves the new build (ui.refresh): left out, not an error.
        page = [hit for hit in kept[offset:] if hit[0] in items]
        return [
            self._hit(rank, round(score, 6), items[item_id], folded)
            for rank, (item_id, score, folded) in enumerate(page, start=offset + 1)
        ]

    def _hit(self, rank: int, score: float | None, item: Item, folded: Sequence[int] = ()) -> Hit:
        """Result `rank` (`score`: None for a period browsed): indexed image `item`."""
        return Hit(
            rank,
            score,
            item.id,
            item.key,
            item.label,
            self._path(item.key),
            tuple(folded),
            item.meta,
            item.taken,
            item.place,
            item.country,
            item.seconds,
            item.tags,
            item.rating,
            item.caption,
        )

    def _fold(
        self, found: list[tuple[int, float]], k: int, min_score: float, threshold: float
    ) -> list[tuple[int, float, list[int]]]:
        """Up to k (id, score, folded ids), best first; with a threshold, each candidate at least
        that similar to a kept result is folded into the first such result instead."""
        kept: list[tuple[int, float, list[int]]] = []
        vectors: list[np.ndarray] = []
        stored = self.store.vectors.read([i for i, _ in found]) if threshold else None
        for n, (item_id, score) in enumerate(found):
            if score < min_score:
                break
            if stored is None:
                kept.append((item_id, score, []))
            else:
                vector = stored[n]
                twin = next((j for j, v in enumerate(vectors) if float(v @ vector) >= threshold), None)
                if twin is not None:
                    kept[twin][2].append(item_id)
                    continue
                if len(kept) < k:
                    kept.append((item_id, score, []))
                    vectors.append(vector)
            if len(kept) == k and not threshold:
                break
        return kept


def last_words(read: str, most: int = 6) -> str:
    """The last `most` words of what a text model read of a description (`Searcher.words_read`):
    where it stopped, as the page and the command line quote it."""
    return " ".join(read.split()[-most:])


def _fraction(value: object) -> float:
    return number_in(
        value,
        0.0,
        1.0,
        "the image weight must be a number from 0 (all text) to 1 (all image), not {value!r}",
        "bad_weight",
    )


def _normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def _add(timings: dict[str, float] | None, stage: str, started: float) -> None:
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started
