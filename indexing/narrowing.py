"""Narrowing: which images a query searches among, as one value the search hands the store.

A query may name a folder (the app's "within"), a period (`taken:2019`, indexing.dates), a place
(`near:Madrid`, indexing.places), a kind (`is:video`, indexing.media), a keyword (`tag:Ana`, or
keywords left out, `-tag:Luis`: indexing.tags), a least rating (`rating:4`, indexing.ratings) and
words of a caption (`caption:birthday`, indexing.captions); each narrows the images searched.
`split_query` takes them out of a query's text, with what it describes and the words it leaves out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from indexing.captions import split_caption
from indexing.dates import Period, split_period
from indexing.errors import BuscadorError
from indexing.media import split_kind
from indexing.places import Near, gazetteer, split_place
from indexing.ratings import split_rating
from indexing.tags import split_tag

# A word left out: -people, -"red car".
_LEFT_OUT = re.compile(r'(?:^|\s)-(?:"([^"]+)"|(\S+))')
# What only narrows and cannot be left out with a minus (a period, a place, a rating).
_FILTER = re.compile(r"(?:taken|date|fecha|near|cerca|rating|estrellas):", re.IGNORECASE)


@dataclass(frozen=True)
class Narrowing:
    """The images under `folder` (a prefix of their keys, "a/b" for "a/b/…"; "" for all) taken
    in `period` (None: whenever) near the first place of `near` that has any (none: anywhere),
    videos or photos alone for a `kind` (indexing.media), those with keyword `tag` (as
    indexing.tags.fold writes it) and none of `without_tags`, those rated `stars` or more
    (indexing.ratings), those whose caption has the words `caption` and none of
    `without_captions` (folded: indexing.captions)."""

    folder: str = ""
    period: Period | None = None
    near: tuple[Near, ...] = ()
    kind: str | None = None
    tag: str | None = None
    stars: int | None = None
    without_tags: tuple[str, ...] = ()
    caption: str | None = None
    without_captions: tuple[str, ...] = ()

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
        stars, without = str(self.stars or ""), "\n".join(self.without_tags)
        return (
            self.folder,
            *dates,
            place,
            self.kind or "",
            self.tag or "",
            stars,
            without,
            self.caption or "",
            "\n".join(self.without_captions),
        )


@dataclass(frozen=True)
class QueryParts:
    """A query's text taken apart: what it describes, the words it leaves out (`-word`), and
    what narrows its images: the period (`taken:`), the place (`near:`, with its distance
    `radius_km` when said), the kind (`is:`), the keyword (`tag:`) and those left out (`-tag:`),
    the least rating (`rating:`), the words of the caption (`caption:`) and those left out
    (`-caption:`)."""

    described: str
    left_out: list[str] = field(default_factory=list)
    period: Period | None = None
    place: str | None = None
    radius_km: float | None = None
    kind: str | None = None
    tag: str | None = None
    stars: int | None = None
    without_tags: tuple[str, ...] = ()
    caption: str | None = None
    without_captions: tuple[str, ...] = ()

    def narrowing(self, folder: str = "") -> Narrowing:
        """Its images, in `folder`: the place looked up in the gazetteer (a BuscadorError when it
        names none)."""
        near = tuple(gazetteer().find(self.place, self.radius_km)) if self.place else ()
        return Narrowing(
            folder,
            self.period,
            near,
            self.kind,
            self.tag,
            self.stars,
            self.without_tags,
            self.caption,
            self.without_captions,
        )


def split_query(text: str) -> QueryParts:
    """'beach -people taken:2019 near:Cádiz is:photo tag:Ana rating:4 caption:birthday' taken apart
    (see QueryParts)."""
    words, period = split_period(text)
    words, place, radius_km = split_place(words)
    words, kind = split_kind(words)
    words, tag, without_tags = split_tag(words)
    words, stars = split_rating(words)
    words, caption, without_captions = split_caption(words)
    described, left_out = split_negatives(words)
    return QueryParts(
        described,
        left_out,
        period,
        place,
        radius_km,
        kind,
        tag,
        stars,
        without_tags,
        caption,
        without_captions,
    )


def split_negatives(text: str) -> tuple[str, list[str]]:
    """'beach -people -"red car"' → ("beach", ["people", "red car"]). A period, a place or a rating
    with a minus (`-taken:2019`) is refused: what a picture shows is left out, not what it says."""
    negatives = [quoted or word for quoted, word in _LEFT_OUT.findall(text)]
    if said := next((word for word in negatives if _FILTER.match(word)), None):
        raise BuscadorError(
            f"-{said} cannot be left out: a minus leaves out what the pictures show (-people), a "
            "keyword (-tag:Ana), a caption's words (-caption:work) or a kind (-is:video)",
            "negated_filter",
            word=f"-{said}",
        )
    return " ".join(_LEFT_OUT.sub(" ", text).split()), negatives
