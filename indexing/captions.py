"""Captions: the part of a query that asks for the photos whose caption has some words
(`caption:birthday`, `caption:"Ana's birthday"`; `leyenda:` or `descripción:` in Spanish) or
leaves out those whose caption has them (`-caption:work`), and how a caption is kept and compared.

A photo's caption is the title and the description a photo editor wrote in its XMP (`dc:title`,
`dc:description`: Lightroom's Title and Caption, digiKam's and darktable's), in its sidecar or
inside its file, else the description given it in Google Photos (Google Takeout's sidecar). What a
picture shows CLIP finds; what only its owner knows (who, which birthday, the name of a boat) a
caption says. Words are compared case and accents aside (indexing.tags.folded), each from the
start of a word of the caption, in any order: `caption:cumple` finds "¡Cumpleaños de Ana!", and so
does `caption:"ana cumpleaños"`; `caption:ana` does not find "banana".
"""

from __future__ import annotations

import re
from collections.abc import Callable

from indexing.errors import BuscadorError
from indexing.tags import folded, split_named

# Characters kept of a caption: a caption is a few sentences, not a document.
MOST_CHARS = 2000
# What cameras and phones write as every photo's description (EXIF's ImageDescription, which
# Lightroom and exiftool copy to XMP's dc:description): no one's caption. Compared case aside.
CAMERA_WORDS = frozenset(
    {
        *("olympus digital camera", "sony dsc", "digital camera", "nikon digital camera", "samsung csc"),
        *("samsung digital camera", "konica minolta digital camera", "minolta digital camera", "dcim"),
        *("exif_jpeg_picture", "default", "image", "picture", "photo", "camera", "untitled", "--"),
    }
)
# Words of a description that say nothing a caption would be found by (English's and Spanish's
# commonest of three letters or more; shorter ones are left out too).
_COMMON = frozenset(
    {
        *("the", "and", "with", "for", "from", "that", "this", "are", "was", "its", "his", "her"),
        *("their", "our", "your", "una", "uno", "unos", "unas", "los", "las", "del", "con", "por"),
        *("para", "que", "sus", "mis", "tus"),
    }
)
# The words follow the colon at once, quoted where they are several; a minus before it leaves out
# the photos whose caption has them.
_OPERATOR = re.compile(r'(?:^|\s)(-?)(?:caption|leyenda|descripci[oó]n):(?:"([^"]*)"|(\S+))', re.IGNORECASE)


def split_caption(text: str) -> tuple[str, str | None, tuple[str, ...]]:
    """'beach caption:"Ana's birthday" -caption:work' → ("beach", "ana's birthday", ("work",)):
    the words the photos' captions have and those each left out, as `folded` writes them
    (`caption:ana_maría` gives "ana maría"); a text without `caption:` → (text, None, ())."""
    return split_named(
        text,
        _OPERATOR,
        folded,
        unnamed=BuscadorError(
            'caption: names no words: write caption:birthday or caption:"Ana\'s birthday"', "no_caption_named"
        ),
        twice=BuscadorError("the query names more than one caption (caption:…): give one", "two_captions"),
    )


def caption_of(*parts: str) -> str:
    """A photo's caption as kept, from its title and its description: each with its spaces and
    line breaks as one space, each once (editors often write the same in both), a line apart, but
    what a camera writes in every photo (`CAMERA_WORDS`); "" for none. At most MOST_CHARS
    characters."""
    kept = dict.fromkeys(" ".join(part.split()) for part in parts)
    return "\n".join(part for part in kept if part and part.casefold() not in CAMERA_WORDS)[:MOST_CHARS]


def with_words(words: str) -> Callable[[str], bool]:
    """Whether a caption (as `folded` writes it) has each of `words` (folded too), in any order,
    each from a word's start: the test, made once for the captions of a search."""
    starts = [re.compile(r"(?<!\w)" + re.escape(word)) for word in words.split()]
    return lambda caption_key: all(start.search(caption_key) for start in starts)


def stored(caption: str | None) -> tuple[str | None, str | None]:
    """A caption as the catalog keeps it: itself and as words are compared (`folded`); none for
    none."""
    return (caption, folded(caption)) if caption else (None, None)


def looked_up(description: str) -> str:
    """The words of a description that captions are looked up by (as `folded` writes them):
    those of three letters or more but the commonest; "" for none ("a dog on the beach" →
    "dog beach")."""
    words = [word.strip(".,;:!?¡¿\"'()") for word in folded(description).split()]
    return " ".join(dict.fromkeys(word for word in words if len(word) >= 3 and word not in _COMMON))


def longest(words: str) -> str:
    """The longest of `words`: the one fewest captions hold, to look for first."""
    return max(words.split(), key=len, default="")


def words_query(words: str) -> tuple[str, bool]:
    """The full-text query (SQLite's FTS5, its words as `with_words` sees them: letters, digits
    and "_") for the captions that may have `words` (as `folded` writes them): each run of word
    characters in them as the start of a word of the caption ("ana's cumple" → '"ana"* "s"*
    "cumple"*'; "" where there is none); and whether what it finds is just what `with_words` keeps:
    where each word is one run of ASCII letters, digits or "_" (accents are off already), the
    start of a word of the caption either way. Else it finds more, to be checked."""
    query = " ".join(f'"{run}"*' for run in re.findall(r"\w+", words))
    return query, bool(query) and all(re.fullmatch(r"\w+", word, re.ASCII) for word in words.split())
