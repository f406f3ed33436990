"""Star ratings: the part of a query that asks for the photos rated so many stars or more
(`rating:4`; `estrellas:4` in Spanish), as a photo editor's filter does ("the best of the trip").

A photo's rating is the one a photo editor wrote in its XMP (`xmp:Rating`, indexing.xmp: Lightroom,
darktable, digiKam, Capture One), in its sidecar or inside its file, else the one Windows writes in
its EXIF: 1 to 5 stars; 0 is unrated, and -1 (Lightroom's and darktable's "rejected") is never found.
"""

from __future__ import annotations

import re

from indexing.errors import BuscadorError

STARS = range(1, 6)
# The stars follow the colon at once, with or without a "+" (rating:4 and rating:4+ are the same):
# "a film rating: PG" is a description.
_OPERATOR = re.compile(r"(?:^|\s)(?:rating|estrellas):(\S+)", re.IGNORECASE)
_WRITTEN = re.compile(r"([1-5])\+?|(★{1,5})\+?")


def split_rating(text: str) -> tuple[str, int | None]:
    """'beach rating:4' → ("beach", 4): the photos rated 4 stars or more; a text without
    `rating:` → (text, None)."""
    found = _OPERATOR.findall(text)
    if not found:
        return text, None
    if len(found) > 1:
        raise BuscadorError("the query names more than one rating (rating:…): give one", "two_ratings")
    written = _WRITTEN.fullmatch(found[0])
    if written is None:
        raise BuscadorError(
            f"{found[0]!r} is not a rating: write rating:4 for the photos of 4 stars or more (1 to 5)",
            "bad_rating",
            word=found[0],
        )
    digits, stars = written.groups()
    return " ".join(_OPERATOR.sub(" ", text).split()), int(digits) if digits else len(stars)


def rating_of(value: object) -> int | None:
    """A rating as XMP or EXIF writes it ("4", "4.0", 4; "-1" rejected) in stars, 1 to 5 or -1;
    None for none, 0 (unrated) or nonsense (a percentage, as some Windows tools write, is not stars)."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() and -1 <= number <= 5 and number != 0 else None


def stars(rating: int | None) -> str:
    """A rating as the results show it: "★★★★" for 4; "" for none or a rejected photo (-1)."""
    return "★" * max(rating or 0, 0)
