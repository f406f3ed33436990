"""Photos or videos: the part of a query that asks for one kind alone (`is:video`, `is:photo`;
`es:vídeo`, `es:foto` in Spanish), as photo managers' searches do ("videos of the beach").

An image of the index is a video when its key names one (indexing.video.EXTENSIONS): a folder's
videos, indexed by a frame of each. A dataset's rows are photos.
"""

from __future__ import annotations

import re

from indexing.errors import BuscadorError

VIDEO, PHOTO = "video", "photo"
# What `is:` takes, in English and Spanish, singular or plural, with or without the accent.
_KINDS = {
    "video": VIDEO,
    "videos": VIDEO,
    "vídeo": VIDEO,
    "vídeos": VIDEO,
    "photo": PHOTO,
    "photos": PHOTO,
    "foto": PHOTO,
    "fotos": PHOTO,
}
# The kind follows the colon at once: "what it is: a cat" is a description. A minus before it
# asks for the other kind.
_OPERATOR = re.compile(r"(?:^|\s)(-?)(?:is|es):(\S+)", re.IGNORECASE)


def split_kind(text: str) -> tuple[str, str | None]:
    """'beach is:video' → ("beach", "video"), and 'beach -is:video' → ("beach", "photo"): the
    videos left out are the photos; a text without `is:` → (text, None)."""
    found = _OPERATOR.findall(text)
    if not found:
        return text, None
    kinds = {_other(_KINDS.get(word.lower()), minus) for minus, word in found}
    if None in kinds:
        word = next(word for _, word in found if word.lower() not in _KINDS)
        raise BuscadorError(
            f"{word!r} is not a kind of image: write is:video or is:photo", "bad_kind", word=word
        )
    if len(kinds) > 1:
        raise BuscadorError(
            "the query asks for videos and photos at once: give one of is:video, is:photo", "two_kinds"
        )
    return " ".join(_OPERATOR.sub(" ", text).split()), kinds.pop()


def _other(kind: str | None, minus: str) -> str | None:
    """`kind`, or with a minus before it the other one (-is:video: the photos)."""
    if kind is None or not minus:
        return kind
    return PHOTO if kind == VIDEO else VIDEO
