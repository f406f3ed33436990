"""Google Takeout's sidecars: the JSON file Google Photos exports beside each photo or video, with
when it was taken and where (a place set by hand in Google Photos too), read for a file whose own
header does not say.

Takeout names a sidecar after its photo: `IMG_1234.jpg.json`, or since 2024
`IMG_1234.jpg.supplemental-metadata.json`, the whole name cut to 51 characters (`….supplemental-
metad.json`); a second photo of one name, `IMG_1234(1).jpg`, gets `IMG_1234.jpg(1).json`; an
edited copy, `IMG_1234-edited.jpg`, none: its original's serves.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    sidecars = sidecars_in(path.parent, ".json")  # by lowercase name; Takeout's names match exactly
    if not sidecars:
        return None
    name, copy = path.name, ""
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


def holds_sidecars(folder: Path) -> bool:
    """Whether `folder` holds JSON files, as Takeout's sidecars are (one look at the folder)."""
    return bool(sidecars_in(folder, ".json"))


def when_and_where(path: Path) -> tuple[str, Any, Any]:
    """When (in UTC, as Takeout gives it: "YYYY-MM-DDTHH:MM:SS"; "" for nothing) and where
    (latitude and longitude as written, None for nothing) Takeout's sidecar of `path` says its
    photo was taken; nothing for no sidecar or an unreadable one."""
    found = sidecar(path)
    try:
        facts = json.loads(found.read_text(encoding="utf-8")) if found else {}
    except (OSError, ValueError):
        return "", None, None
    if not isinstance(facts, dict):
        return "", None, None
    taken = ""
    try:
        seconds = int((facts.get("photoTakenTime") or {}).get("timestamp"))
        taken = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") if seconds > 0 else ""
    except (TypeError, ValueError, OverflowError, OSError, AttributeError):
        pass
    place = facts.get("geoData") if isinstance(facts.get("geoData"), dict) else {}
    return taken, place.get("latitude"), place.get("longitude")
