"""Keywords: the part of a query that asks for the photos with one (`tag:Ana`, `tag:"Ana María"`;
`etiqueta:` in Spanish), and how keywords compare: case and accents aside, as people type them.

A photo's keywords are the ones a photo editor wrote in its XMP (indexing.xmp: Lightroom's and
digiKam's tags, people's names among them), in its sidecar or inside its file.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

from indexing.errors import BuscadorError

# The keyword follows the colon at once, quoted where it has spaces (or with _ for them); a minus
# before it leaves out the photos with it.
_OPERATOR = re.compile(r'(?:^|\s)(-?)(?:tag|etiqueta):(?:"([^"]*)"|(\S+))', re.IGNORECASE)


def split_tag(text: str) -> tuple[str, str | None, tuple[str, ...]]:
    """'beach tag:Ana -tag:Luis' → ("beach", "ana", ("luis",)): the keyword the photos have and
    those they must not have, as `fold` compares them ('tag:"Ana María"' and 'tag:ana_maría' give
    "ana maría"); a text without `tag:` → (text, None, ())."""
    return split_named(
        text,
        _OPERATOR,
        fold,
        unnamed=BuscadorError('tag: names no keyword: write tag:Ana or tag:"Ana María"', "no_tag_named"),
        twice=BuscadorError("the query names more than one keyword (tag:…): give one", "two_tags"),
    )


def split_named(
    text: str,
    operator: re.Pattern[str],
    compare: Callable[[str], str],
    *,
    unnamed: BuscadorError,
    twice: BuscadorError,
) -> tuple[str, str | None, tuple[str, ...]]:
    """`text` without what `operator` finds in it (a minus or none, then a quoted value or a word,
    `_` for its spaces), the one value it asks for and those a minus leaves out, each as `compare`
    writes it: a keyword's (`split_tag`), a caption's words (indexing.captions). Raises `unnamed`
    for an empty value, `twice` for two values asked for."""
    named = []
    for minus, quoted, word in operator.findall(text):
        value = compare(quoted or word.replace("_", " "))
        if not value:
            raise unnamed
        named.append((minus, value))
    if not named:
        return text, None, ()
    wanted = [value for minus, value in named if not minus]
    if len(wanted) > 1:
        raise twice
    left_out = tuple(dict.fromkeys(value for minus, value in named if minus))
    return " ".join(operator.sub(" ", text).split()), wanted[0] if wanted else None, left_out


@functools.lru_cache(maxsize=1 << 16)
def fold(keyword: str) -> str:
    """`keyword` as keywords are compared (`folded`), kept for the keywords seen last: a
    collection's few hundred are folded once, not once a photo (a keyword search of a million
    photos, half of them with three keywords, took 2.6 s)."""
    return folded(keyword)


def folded(text: str) -> str:
    """`text` as words are compared: case and accents aside, spaces (and line breaks) as one."""
    if text.isascii():  # (no accent to take off: most keywords, 8 times as fast)
        return " ".join(text.lower().split())
    plain = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in plain if not unicodedata.combining(ch)).split())
