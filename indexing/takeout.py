"""Google Takeout's sidecars: the JSON file Google Photos exports beside each photo or video, with
when it was taken and where (a place set by hand in Google Photos too), for a file whose own header
does not say, the people named in it (the faces its owner named in Google Photos), which join its
keywords, whether it is a favourite (Google Photos' star), which counts as a rating of 5 stars,
and the description written for it there, its caption.

Takeout names a sidecar after its photo: `IMG_1234.jpg.json`, or since 2024
`IMG_1234.jpg.supplemental-metadata.json`, the whole name cut to 51 characters (`….supplemental-
metad.json`); a second photo of one name, `IMG_1234(1).jpg`, gets `IMG_1234.jpg(1).json`; an
edited copy, `IMG_1234-edited.jpg`, none: its original's serves.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from indexing.captions import caption_of
from indexing.files import sidecars_in

# The longest name Takeout gives a file, sidecars included.
MOST_CHARS = 51
_SUFFIXES = (".json", ".supplemental-metadata.json")
_COPY = re.compile(r"^(.*)(\(\d+\))(\.[^.]+)$")  # IMG_1234(1).jpg
_EDITED = re.compile(r"^(.*)-edited(\.[^.]+)$", re.IGNORECASE)


def sidecar(path: Path) -> Path | None:
    """The Takeout sidecar of the photo or video at `path`, where there is one: looked up among
    the JSON files of its folder (files.sidecars_in: a stat per photo, where asking for each name
    the rules give cost two more)."""
    folder, name = os.path.split(path)  # (os.path's, not Path's: every header read asks)
    sidecars = sidecars_in(folder or ".", ".json")  # by lowercase name; Takeout's names match exactly
    if not sidecars:
        return None
    copy = ""
    if found := _EDITED.match(name):
        name = found.group(1) + found.group(2)
    if found := _COPY.match(name):
        name, copy = found.group(1) + found.group(3), found.group(2)
    for suffix in _SUFFIXES:
        stem = name + suffix[: -len(".json")]
        candidate = stem[: MOST_CHARS - len(copy) - len(".json")] + copy + ".json"
        if sidecars.get(candidate.lower()) == candidate:
            return path.parent / candidate
    return None


class Told(NamedTuple):
    """What a Takeout sidecar says of its photo: when (in UTC, as Takeout gives it:
    "YYYY-MM-DDTHH:MM:SS"; "" for nothing), where (latitude and longitude as written, None for
    nothing), who is in it (the names of the faces named in Google Photos), whether it is a
    favourite and its description (as indexing.captions keeps it, "" for none)."""

    taken: str = ""
    lat: Any = None
    lon: Any = None
    people: tuple[str, ...] = ()
    favourite: bool = False
    description: str = ""


# What a photo without a sidecar (most) is told.
NOTHING = Told()
# Names kept of a photo's people, and characters of each: a sidecar is the user's, not a store.
MOST_PEOPLE, MOST_NAME_CHARS = 100, 100


def when_and_where(path: Path) -> Told:
    """What Takeout's sidecar of `path` says of its photo (see Told); nothing for no sidecar or an
    unreadable one."""
    found = sidecar(path)
    if found is None:
        return NOTHING
    try:
        facts = json.loads(found.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return NOTHING
    if not isinstance(facts, dict):
        return NOTHING
    taken = ""
    try:
        seconds = int((facts.get("photoTakenTime") or {}).get("timestamp"))
        taken = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") if seconds > 0 else ""
    except (TypeError, ValueError, OverflowError, OSError, AttributeError):
        pass
    place = facts.get("geoData") if isinstance(facts.get("geoData"), dict) else {}
    people, favourite = _people(facts.get("people")), facts.get("favorited") is True
    description = caption_of(str(facts.get("description") or ""))
    return Told(taken, place.get("latitude"), place.get("longitude"), people, favourite, description)


def _people(named: object) -> tuple[str, ...]:
    """The names of a sidecar's `people` ([{"name": "Ana"}, ...]), each once, in order."""
    people = named if isinstance(named, list) else []
    names = (" ".join(str(person.get("name") or "").split()) for person in people if isinstance(person, dict))
    return tuple(dict.fromkeys(name[:MOST_NAME_CHARS] for name in names if name))[:MOST_PEOPLE]
