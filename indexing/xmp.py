"""XMP sidecars: the `.xmp` file a photo editor writes beside a photo (darktable, digiKam,
Lightroom for RAW files, Capture One), with when it was taken and where, as the photographer set
them: a time corrected, a RAW geotagged from a GPS track. What a sidecar says comes before the
photo's own header (which such editors leave as the camera wrote it).

darktable and digiKam name a sidecar after the whole name (`IMG_1234.CR2.xmp`), Lightroom after
the stem (`IMG_1234.xmp`); the first is the one, where both are there. A camera's JPEG beside its
RAW (the one indexed) has the RAW's, where it has none of its own. A folder listing gives each
photo's sidecar its part of the photo's fingerprint (`stamp`), so that a sidecar edited since the
last build has the photo's header read again, and nothing else done.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple, TypeVar

from indexing import camera_raw
from indexing.captions import caption_of
from indexing.files import sidecars_in
from indexing.ratings import rating_of

T = TypeVar("T")
SUFFIX = ".xmp"
# A sidecar is a few kilobytes (a long edit history, a few hundred): a bigger one is not read.
MOST_BYTES = 4 * 1024 * 1024
# The fingerprint of a photo with a sidecar: the photo's, then this, then the sidecar's.
STAMP = " xmp:"


class Told(NamedTuple):
    """What XMP says of a photo: when (the text it writes, an ISO 8601 local time,
    "2019-07-14T18:22:05.12+02:00"; "" for nothing), where (degrees, None for nothing), its
    keywords (`dc:subject`: Lightroom's and digiKam's tags, people's names among them; then the
    names of its face regions, Picasa's and Windows Live Photo Gallery's too), its
    rating (`xmp:Rating`: stars, 1 to 5, -1 rejected; None unrated: indexing.ratings), the
    town its IPTC location names ("Sevilla, ES": the city typed in an editor, for a photo without
    a GPS position; "" for none) and its caption (`dc:title` and `dc:description`, as
    indexing.captions keeps them; "" for none)."""

    taken: str = ""
    lat: float | None = None
    lon: float | None = None
    tags: tuple[str, ...] = ()
    rating: int | None = None
    town: str = ""
    caption: str = ""


# What a photo without a sidecar (or with one that is not XMP) is told.
NOTHING = Told()
# Keywords kept of a photo, and characters of each: a sidecar is the user's, not a store.
MOST_TAGS, MOST_TAG_CHARS = 100, 100
_DC = "{http://purl.org/dc/elements/1.1/}"
_SUBJECT = f"{_DC}subject"
# A title and a description are each a list of translations (rdf:Alt): the default one is kept.
_CAPTIONS = (f"{_DC}title", f"{_DC}description")
_ITEM = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li"
# The names of the people in a photo's face regions, which are keywords too: the Metadata Working
# Group's (Picasa's, digiKam's, Lightroom's, Mylio's) and Windows Live Photo Gallery's.
_PEOPLE = frozenset(
    {
        "{http://www.metadataworkinggroup.com/schemas/regions/}Name",
        "{http://ns.microsoft.com/photo/1.2/t/Region#}PersonDisplayName",
    }
)
_LANGUAGE = "{http://www.w3.org/XML/1998/namespace}lang"
_EXIF = "{http://ns.adobe.com/exif/1.0/}"
# When, most telling first: the shutter, the photo's creation as the editor keeps it, the file's.
_DATES = (f"{_EXIF}DateTimeOriginal", "{http://ns.adobe.com/photoshop/1.0/}DateCreated")
_CREATED = "{http://ns.adobe.com/xap/1.0/}CreateDate"
_RATING = "{http://ns.adobe.com/xap/1.0/}Rating"
# IPTC's location, as Lightroom's, digiKam's and Photo Mechanic's fields write it: the city, the
# state (for the United States) and the country, by code or by name.
_PHOTOSHOP = "{http://ns.adobe.com/photoshop/1.0/}"
_CITY, _STATE, _COUNTRY = f"{_PHOTOSHOP}City", f"{_PHOTOSHOP}State", f"{_PHOTOSHOP}Country"
_COUNTRY_CODE = "{http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/}CountryCode"
_LAT, _LON = f"{_EXIF}GPSLatitude", f"{_EXIF}GPSLongitude"
# XMP's coordinates: degrees, then minutes (with a fraction) or minutes and seconds, then the
# hemisphere: "40,25.0584N", "3,42,7.1W"; some tools write decimal degrees, "40.41764N".
_COORDINATE = re.compile(
    r"\s*(\d{1,3}(?:\.\d+)?)(?:,(\d{1,2}(?:\.\d+)?))?(?:,(\d{1,2}(?:\.\d+)?))?\s*([NSEW])\s*"
)


def sidecar_of(name: str, sidecars: Mapping[str, T]) -> T | None:
    """The sidecar of the photo named `name` among a folder's `sidecars` (by lowercase name), or
    None. A camera's JPEG, which stands for its RAW twin in the index, has the RAW's where it has
    none of its own (a RAW geotagged in darktable, its JPEG never opened there)."""
    stem, suffix = os.path.splitext(name.lower())
    for candidate in (stem + suffix + SUFFIX, stem + SUFFIX):
        if candidate in sidecars:
            return sidecars[candidate]
    if suffix in camera_raw.TWIN_SUFFIXES:
        return next(
            (sidecars[n] for raw in camera_raw.EXTENSIONS if (n := stem + raw + SUFFIX) in sidecars), None
        )
    return None


def stamp(size: int, modified_ns: int) -> str:
    """A sidecar's part of its photo's fingerprint."""
    return f"{STAMP}{size}:{modified_ns}"


def image_part(fingerprint: str) -> str:
    """A fingerprint without its sidecar's part: what says whether the photo itself changed."""
    return fingerprint.split(STAMP, 1)[0]


def sidecar(path: Path) -> Path | None:
    """The sidecar of the photo at `path`, where there is one: looked up among the sidecars of its
    folder (files.sidecars_in: a stat a photo)."""
    folder, name = os.path.split(path)  # (os.path's, not Path's: every header read asks)
    sidecars = sidecars_in(folder or ".", SUFFIX)
    found = sidecar_of(name, sidecars) if sidecars else None
    return path.parent / found if found else None


def when_and_where(path: Path) -> Told:
    """What the sidecar of the photo at `path` says (see Told); nothing for no sidecar, or one
    that is not XMP."""
    found = sidecar(path)
    if found is None:
        return NOTHING
    try:
        with found.open("rb") as file:
            data = file.read(MOST_BYTES + 1)
    except OSError:
        return NOTHING
    return read(data) if len(data) <= MOST_BYTES else NOTHING


def read(data: bytes) -> Told:
    """What an XMP packet says (a sidecar's, or the one inside a photo's file); nothing for
    anything that is not XMP."""
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError):
        return NOTHING
    said: dict[str, str] = {}
    tags: list[str] = []
    captions: dict[str, str] = {}
    people: list[str] = []
    for element in root.iter():  # a property is an attribute of its description, or an element
        for name, value in element.attrib.items():
            said.setdefault(name, value)
            if name in _PEOPLE:
                people.append(value)
        if element.text and element.text.strip() and not len(element):
            said.setdefault(element.tag, element.text.strip())
            if element.tag in _PEOPLE:
                people.append(element.text)
        if element.tag == _SUBJECT:
            tags += [li.text or "" for li in element.iter(_ITEM)]
        if element.tag in _CAPTIONS:
            captions.setdefault(element.tag, _default_text(element))
    taken = next((said[name] for name in (*_DATES, _CREATED) if said.get(name)), "")
    lat, lon = _degrees(said.get(_LAT, ""), "NS", 90), _degrees(said.get(_LON, ""), "EW", 180)
    kept = kept_tags((*tags, *people))
    rating = rating_of(said.get(_RATING, ""))
    if lat is None or lon is None:
        lat = lon = None
    caption = caption_of(*(captions.get(name, "") for name in _CAPTIONS))
    return Told(taken, lat, lon, kept, rating, _town_named(said), caption)


def kept_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Keywords as the catalog keeps them: spaces made one, cut to MOST_TAG_CHARS, each once, at
    most MOST_TAGS."""
    kept = (" ".join(tag.split())[:MOST_TAG_CHARS] for tag in tags)
    return tuple(dict.fromkeys(tag for tag in kept if tag))[:MOST_TAGS]


def _default_text(element: ET.Element) -> str:
    """The text of a title or a description: its default translation (`x-default`), else its
    first, else its own text (a tool that writes it plain)."""
    translations = [li for li in element.iter(_ITEM) if (li.text or "").strip()]
    default = next((li for li in translations if li.get(_LANGUAGE) == "x-default"), None)
    chosen = default if default is not None else next(iter(translations), None)
    return (chosen.text if chosen is not None else element.text) or ""


def _town_named(said: dict[str, str]) -> str:
    """The town an XMP's IPTC location names (`town_of`)."""
    return town_of(*(said.get(name, "") for name in (_CITY, _STATE, _COUNTRY_CODE, _COUNTRY)))


def town_of(city: str, state: str, code: str, country: str) -> str:
    """The town an IPTC location (XMP's, or an IPTC record's) names, as a `near:` query writes it
    ("Sevilla, ES", "Sevilla, ESP", "Portland, Oregon"): its city, and its country's code (else
    name) or a state of the US; "" without a city."""
    city = " ".join(city.split())
    country = code.strip() or " ".join(country.split())
    state = " ".join(state.split())
    if state and country.upper() in {"US", "USA", "UNITED STATES"}:
        country = state  # the state tells the towns of a name apart better (Portland, Oregon)
    return f"{city}, {country}" if city and country else city


def _degrees(text: str, signs: str, most: float) -> float | None:
    """An XMP coordinate ("40,25.0584N") in signed degrees; None for none or nonsense."""
    found = _COORDINATE.fullmatch(text)
    if not found or found.group(4) not in signs:
        return None
    parts = [float(part) for part in found.groups()[:3] if part is not None]
    # (60 is a rounding's, as in EXIF: indexing.headers._degrees.)
    if any(part > 60 for part in parts[1:]) or ("." in (found.group(1) or "") and len(parts) > 1):
        return None
    degrees = sum(part / 60**n for n, part in enumerate(parts))
    if degrees > most:
        return None
    return -degrees if found.group(4) == signs[1] else degrees
