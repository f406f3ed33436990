"""Keywords: the part of a query that asks for the photos with one (`tag:Ana`, `tag:"Ana María"`;
`etiqueta:` in Spanish), and how keywords compare: case and accents aside, as people type them.

A photo's keywords are the ones a photo editor wrote in its XMP (indexing.xmp: Lightroom's and
digiKam's tags, people's names among them), in its sidecar or inside its file.
"""

from __future__ import annotations

import re
import unicodedata

from indexing.errors import BuscadorError

# The keyword follows the colon at once, quoted where it has spaces (or with _ for them).
_OPERATOR = re.compile(r'(?:^|\s)(?:tag|etiqueta):(?:"([^"]*)"|(\S+))', re.IGNORECASE)


def split_tag(text: str) -> tuple[str, str | None]:
    """'beach tag:Ana' → ("beach", "Ana"); 'tag:"Ana María"' and 'tag:ana_maría' give "ana maría"
    as `fold` compares it; a text without `tag:` → (text, None)."""
    found = _OPERATOR.findall(text)
    if not found:
        return text, None
    if len(found) > 1:
        raise BuscadorError("the query names more than one keyword (tag:…): give one", "two_tags")
    quoted, word = found[0]
    tag = fold(quoted or word.replace("_", " "))
    if not tag:
        raise BuscadorError('tag: names no keyword: write tag:Ana or tag:"Ana María"', "no_tag_named")
    return " ".join(_OPERATOR.sub(" ", text).split()), tag


def fold(keyword: str) -> str:
    """`keyword` as keywords are compared: case and accents aside, spaces as one."""
    plain = unicodedata.normalize("NFKD", keyword.casefold())
    return " ".join("".join(ch for ch in plain if not unicodedata.combining(ch)).split())
