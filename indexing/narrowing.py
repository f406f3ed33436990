"""Narrowing: which images a query searches among, as one value the search hands the store.

A query may name a folder (the app's "within"), a period (`taken:2019`, indexing.dates), a place
(`near:Madrid`, indexing.places), a kind (`is:video`, indexing.media), a keyword (`tag:Ana`,
indexing.tags) and a least rating (`rating:4`, indexing.ratings); each narrows the images
searched. `split_query` takes them out of a query's text, with what it describes and the words it
leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from indexing.dates import Period, split_period
from indexing.media import split_kind
from indexing.places import Near, gazetteer, split_place
from indexing.ratings import split_rating
from indexing.tags import split_tag

# A word left out: -people, -"red car".
_LEFT_OUT = re.compile(r'(?:^|\s)-(?:"([^"]+)"|(\S+))')


@dataclass(frozen=True)
class Narrowing:
    """The images under `folder` (a prefix of their keys, "a/b" for "a/b/…"; "" for all) taken
    in `period` (None: whenever) near the first place of `near` that has any (none: anywhere),
    videos or photos alone for a `kind` (indexing.media), those with keyword `tag` (as
    indexing.tags.fold writes it), those rated `stars` or more (indexing.ratings)."""

    folder: str = ""
    period: Period | None = None
    near: tuple[Near, ...] = ()
    kind: str | None = None
    tag: str | None = None
    stars: int | None = None

    @property
    def everything(self) -> bool:
        """Whether it narrows nothing: every image of the index."""
        return self == Narrowing()

    @property
    def beyond_folder(self) -> bool:
        """Whether it asks for more than a folder: what a query alone lists in date order."""
        return replace(self, folder="") != Narrowing()

    def key(self) -> tuple[str, ...]:
        """What tells it from another narrowing of the same index (IndexStore keeps subsets by it)."""
        dates = (self.period.start, self.period.end) if self.period else ("", "")
        place = self.near[0].key if self.near else ""
        return (self.folder, *dates, place, self.kind or "", self.tag or "", str(self.stars or ""))


@dataclass(frozen=True)
class QueryParts:
    """A query's text taken apart: what it describes, the words it leaves out (`-word`), and
    what narrows its images: the period (`taken:`), the place (`near:`, with its distance
    `radius_km` when said), the kind (`is:`), the keyword (`tag:`) and the least rating (`rating:`)."""

    described: str
    left_out: list[str] = field(default_factory=list)
    period: Period | None = None
    place: str | None = None
    radius_km: float | None = None
    kind: str | None = None
    tag: str | None = None
    stars: int | None = None

    def narrowing(self, folder: str = "") -> Narrowing:
        """Its images, in `folder`: the place looked up in the gazetteer (a BuscadorError when it
        names none)."""
        near = tuple(gazetteer().find(self.place, self.radius_km)) if self.place else ()
        return Narrowing(folder, self.period, near, self.kind, self.tag, self.stars)


def split_query(text: str) -> QueryParts:
    """'beach -people taken:2019 near:Cádiz is:photo tag:Ana rating:4' taken apart (see QueryParts)."""
    words, period = split_period(text)
    words, place, radius_km = split_place(words)
    words, kind = split_kind(words)
    words, tag = split_tag(words)
    words, stars = split_rating(words)
    described, left_out = split_negatives(words)
    return QueryParts(described, left_out, period, place, radius_km, kind, tag, stars)


def split_negatives(text: str) -> tuple[str, list[str]]:
    """'beach -people -"red car"' → ("beach", ["people", "red car"])."""
    negatives = [quoted or word for quoted, word in _LEFT_OUT.findall(text)]
    return " ".join(_LEFT_OUT.sub(" ", text).split()), negatives
