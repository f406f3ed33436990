"""What a photo's header says: when it was taken (EXIF dates, else its own XMP's, else a date in
its name) and where (EXIF GPS, else its own XMP's); its keywords, rating and caption (its XMP's,
else IPTC's, else Windows'); a video's, from its container's metadata; else Google Takeout's
sidecar. A photo editor's XMP sidecar comes first. Headers alone are read: no pixel is decoded."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from PIL import Image, IptcImagePlugin

from indexing import camera_raw, heif, takeout, tiff, video, xmp
from indexing.captions import caption_of
from indexing.dates import date_in_name, exif_date, in_utc
from indexing.errors import BadImage
from indexing.guard import guarded
from indexing.images import open_picture
from indexing.ratings import rating_of

# EXIF tags, most telling first: when the shutter fired, when it was digitised (a scan), when the
# file was last written (an editor may set it to the edit's day; still better than nothing).
_EXIF_IFD = 0x8769
_ORIGINAL, _DIGITIZED, _DATETIME = 0x9003, 0x9004, 0x0132
# The GPS IFD: latitude's hemisphere (N/S) and degrees, minutes, seconds, then longitude's (E/W).
_GPS_IFD = 0x8825
_LAT_REF, _LAT, _LON_REF, _LON = 1, 2, 3, 4
# Windows' star rating, in the main IFD (Explorer's and Photos' "Rating": 0 to 5).
_RATING = 0x4746
# Windows' keywords in the main IFD (Explorer's "Tags": UTF-16, separated by semicolons).
_XP_KEYWORDS = 0x9C9E
# IPTC's record of a JPEG or TIFF: its keywords, its headline and its caption (Picasa's, and older
# Photo Mechanic's and newsrooms' tools, which write no XMP); where it was taken: city, state,
# country's code (ISO's three letters, mostly) and name.
_IPTC_KEYWORDS, _IPTC_HEADLINE, _IPTC_CAPTION = (2, 25), (2, 105), (2, 120)
_IPTC_PLACE = ((2, 90), (2, 95), (2, 100), (2, 101))
# A TIFF's XMP packet, an entry of its main IFD.
_XMP = 700
# Decimal places kept of a position: 5 is about a metre.
PLACES = 5


@dataclass(frozen=True)
class Facts:
    """When (`taken`, "YYYY-MM-DDTHH:MM:SS", "" when the photo does not say) and where (`lat`,
    `lon` in degrees, None when it does not say) a photo was taken; how long a video lasts
    (`seconds`, None for a photo); its keywords (`tags`, XMP's: indexing.xmp) and its rating
    (stars, 1 to 5, -1 rejected, None unrated: indexing.ratings); for a photo without a position,
    the town its XMP's IPTC location names (`town`, "Sevilla, ES"; placed by the header pass); its
    caption (its XMP's title and description, or Takeout's: indexing.captions)."""

    taken: str = ""
    lat: float | None = None
    lon: float | None = None
    seconds: float | None = None
    tags: tuple[str, ...] = ()
    rating: int | None = None
    town: str = ""
    caption: str = ""


def from_file(path: Path | None) -> Facts | None:
    """What the photo (or video) at `path` says (nothing for no file); None when the file cannot be
    opened now, a disk gone or a permission lost, so that a later build reads it again.

    When: its XMP sidecar's time (as a photo editor set it), else its header's local time (EXIF,
    else the file's own XMP; an iPhone video's own), else a date in its name (phones and
    messaging apps name files by date: WhatsApp strips EXIF; Android's VID_20190714_182205.mp4),
    else Google Takeout's sidecar's, else a video container's creation time: these two in UTC,
    marked so ("…Z", made local once the build knows the place: indexing.dates). Where: its XMP
    sidecar's position, else its header's (EXIF's, else its own XMP's), else Takeout's sidecar's.
    How long: a video's container's. Keywords: its XMP sidecar's, else those inside its file (an
    editor's export) with the people Takeout's sidecar names. Rating: its XMP sidecar's, else its
    file's, else 5 stars for a favourite in Takeout's sidecar. Caption: its XMP sidecar's, else
    its file's, else Takeout's sidecar's description.
    """
    if path is None:
        return Facts()
    told = xmp.when_and_where(path)
    found = _from_file(path)
    if found is None or told == xmp.NOTHING:
        return found
    lat, lon = dataset_position(told.lat, told.lon)
    where = (lat, lon) if lat is not None else (found.lat, found.lon)
    return Facts(
        exif_date(told.taken) or found.taken,
        *where,
        found.seconds,
        told.tags or found.tags,
        told.rating if told.rating is not None else found.rating,
        "" if where[0] is not None else told.town or found.town,
        told.caption or found.caption,
    )


def _from_file(path: Path) -> Facts | None:
    """What the photo (or video) at `path` says of itself (and Takeout's sidecar): from_file's
    facts but an XMP sidecar's."""
    try:
        file = path.open("rb")
    except OSError:
        return None
    last = ""  # a video container's creation time: the last resort
    with file:
        if video.named_video(path):
            found = _video_header(path)
            facts = Facts(exif_date(found.local), *dataset_position(found.lat, found.lon), found.seconds)
            last = found.utc
        else:
            facts = _read(file)
    if not facts.taken and camera_raw.named_raw(path):  # a RAW Pillow cannot read (.CR3, ...): LibRaw can
        facts = replace(facts, taken=_raw_taken(path))
    if not facts.taken:
        facts = replace(facts, taken=date_in_name(path.name))
    told = takeout.when_and_where(path)  # (most photos have no sidecar: one look in a dictionary)
    if told is not takeout.NOTHING:
        lat, lon = (facts.lat, facts.lon) if facts.lat is not None else dataset_position(told.lat, told.lon)
        facts = replace(
            facts,
            taken=facts.taken or in_utc(exif_date(told.taken)),
            lat=lat,
            lon=lon,
            tags=tuple(dict.fromkeys((*facts.tags, *told.people)))[: xmp.MOST_TAGS],  # faces named: keywords
            rating=5 if facts.rating is None and told.favourite else facts.rating,  # a favourite: 5 stars
            town="" if lat is not None else facts.town,
            caption=facts.caption or told.description,
        )
    return facts if facts.taken else replace(facts, taken=in_utc(exif_date(last)))


def from_bytes(data: bytes) -> Facts:
    """What the photo whose file is `data` (a dataset's row) says."""
    return _read(io.BytesIO(data))


def _video_header(path: Path) -> video.Header:
    """What a video's container says (FFmpeg's to read: in a guard process, indexing.guard)."""
    try:
        return guarded(video.header, path)
    except BadImage:  # (FFmpeg crashed on it)
        return video.Header()


def _raw_taken(path: Path) -> str:
    """When a camera RAW's EXIF, as LibRaw reads it, says it was taken (in a guard process)."""
    try:
        return guarded(camera_raw.taken, path)
    except BadImage:  # (LibRaw crashed on it)
        return ""


def _read(file: BinaryIO) -> Facts:
    """The facts of an EXIF header (none for a file Pillow cannot read, but a TIFF-built one or a
    HEIF)."""
    head = file.read(12)
    if heif.is_iso(head):
        return _heif_read(head + file.read())
    file.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_picture(file) as img:
                # Keywords, a rating, a town and a caption an editor wrote inside the file (an export's).
                told = _told(img.info.get("xmp"))
                raw = img.info.get("exif")
                if isinstance(raw, bytes):
                    exif = Image.Exif()
                    exif.load(raw)
                elif img.format == "TIFF":  # its tags are its header
                    exif = img.getexif()
                else:  # a PNG's eXIf chunk after its pixels is not worth decoding them for
                    exif = Image.Exif()
                return _facts(exif, told, _iptc(img))
    except Exception:  # Pillow's header parsers raise many kinds: any means "nothing said"
        return _tiff_read(file)


def _tiff_read(file: BinaryIO) -> Facts:
    """The facts of a TIFF-built file that Pillow cannot open (a camera RAW: a DNG, where Lightroom
    writes its keywords and rating; a NEF, ARW, CR2): its directories read as an EXIF header, each
    value where it lies in the file (the XMP of a DNG whose metadata was rewritten may be at its
    end); none for anything else."""
    try:
        file.seek(0)
        if not tiff.is_tiff(file.read(4)):
            return Facts()
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif = Image.Exif()
            exif.load_from_fp(file)
            return _facts(exif, _told(exif.get(_XMP)))
    except Exception:  # (as above)
        return Facts()


def _heif_read(data: bytes) -> Facts:
    """The facts of a HEIF still image (HEIC, AVIF): its EXIF and
    XMP items, read by indexing.heif (libheif, which can crash on damaged files, is not needed);
    none for anything else (an MP4 in a dataset's row)."""
    still = heif.read_still(data)
    if still is None:
        return Facts()
    exif, told = Image.Exif(), xmp.NOTHING
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for item in still.items:
                if item.type == heif.EXIF and len(item.data) >= 4 and not len(exif):
                    start = 4 + int.from_bytes(item.data[:4], "big")  # (its TIFF header's offset first)
                    exif.load(item.data[start:])
                elif (item.type, item.content_type) == (heif.MIME, heif.XMP) and told is xmp.NOTHING:
                    told = _told(item.data)
            return _facts(exif, told)
    except Exception:  # (as Pillow's header parsers: any means nothing said)
        return Facts()


def _told(packet: object) -> xmp.Told:
    """What an XMP packet inside the file says (nothing for none, or one too long)."""
    return xmp.read(packet) if isinstance(packet, bytes) and len(packet) <= xmp.MOST_BYTES else xmp.NOTHING


@dataclass(frozen=True)
class _Iptc:
    """What the IPTC record inside a JPEG or a TIFF says: keywords, caption (headline and caption),
    the town its location names (`xmp.town_of`)."""

    tags: tuple[str, ...] = ()
    caption: str = ""
    town: str = ""


def _iptc(img: Image.Image) -> _Iptc:
    """What the IPTC record inside a JPEG or a TIFF says; nothing for other formats, or a record
    that does not read."""
    try:
        record = IptcImagePlugin.getiptcinfo(img) or {}  # type: ignore[arg-type]
    except Exception:  # (as Pillow's header parsers: any means nothing said)
        return _Iptc()
    keywords = record.get(_IPTC_KEYWORDS, [])
    return _Iptc(
        xmp.kept_tags(_text(k) for k in (keywords if isinstance(keywords, list) else [keywords])),
        caption_of(_text(record.get(_IPTC_HEADLINE, b"")), _text(record.get(_IPTC_CAPTION, b""))),
        xmp.town_of(*(_text(record.get(field, b"")) for field in _IPTC_PLACE)),
    )


def _text(value: object) -> str:
    """An IPTC or EXIF text: UTF-8 (which Picasa writes without saying so), else Windows' Latin."""
    if not isinstance(value, bytes):
        return ""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("cp1252", "replace")


def _windows_tags(value: object) -> tuple[str, ...]:
    """Windows' keywords (EXIF's XPKeywords: UTF-16 text, "Ana;Playa")."""
    if not isinstance(value, bytes):
        return ()
    return xmp.kept_tags(value.decode("utf-16-le", "replace").rstrip("\0").split(";"))


def _facts(exif: Image.Exif, told: xmp.Told, iptc: _Iptc = _Iptc()) -> Facts:
    """The facts of an EXIF header and what the file's XMP says: its date and position where the
    EXIF has none (a PNG or TIFF an editor exported, with XMP alone); its keywords, caption and
    town where it has none, else the IPTC record's, else (keywords) Windows'."""
    inner = exif.get_ifd(_EXIF_IFD)
    dates = (inner.get(_ORIGINAL), inner.get(_DIGITIZED), exif.get(_DATETIME), told.taken)
    taken = next((found for value in dates if (found := exif_date(value))), "")
    lat, lon = _position(exif.get_ifd(_GPS_IFD)) if _GPS_IFD in exif else (None, None)
    if lat is None:
        lat, lon = dataset_position(told.lat, told.lon)
    rating = told.rating if told.rating is not None else rating_of(exif.get(_RATING))
    town = (told.town or iptc.town) if lat is None else ""
    tags = told.tags or iptc.tags or _windows_tags(exif.get(_XP_KEYWORDS))
    return Facts(taken, lat, lon, tags=tags, rating=rating, town=town, caption=told.caption or iptc.caption)


def dataset_position(lat: object, lon: object) -> tuple[float | None, float | None]:
    """A dataset's latitude and longitude fields (numbers, or texts of them, in degrees) as a
    position; (None, None) for empty fields, nonsense or 0° 0′ (no fix)."""
    try:
        lat, lon = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None, None
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return (None, None) if lat == 0 and lon == 0 else (round(lat, PLACES), round(lon, PLACES))


def _position(gps: dict[int, object]) -> tuple[float | None, float | None]:
    """(latitude, longitude) of an EXIF GPS IFD; (None, None) when it holds none or nonsense (a
    receiver without a fix writes 0° 0′ 0″, out of the ocean off Africa)."""
    lat = _degrees(gps.get(_LAT), gps.get(_LAT_REF), "NS", 90)
    lon = _degrees(gps.get(_LON), gps.get(_LON_REF), "EW", 180)
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None, None
    return lat, lon


def _degrees(value: object, ref: object, signs: str, most: float) -> float | None:
    """Degrees, minutes and seconds (rationals) and a hemisphere letter as signed degrees."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if not isinstance(value, tuple) or not 1 <= len(value) <= 3:
        return None
    if not isinstance(ref, str) or ref.strip().upper()[:1] not in signs:
        return None
    try:
        parts = [float(part) for part in value]  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    # (A minute or second of 60 is a rounding's: exiftool writes 40.4° as 40° 23′ 60″.)
    if not all(math.isfinite(part) and part >= 0 for part in parts) or any(p > 60 for p in parts[1:]):
        return None
    degrees = sum(part / 60**n for n, part in enumerate(parts))
    if degrees > most:
        return None
    sign = -1 if ref.strip().upper()[:1] == signs[1] else 1
    return round(sign * degrees, PLACES)
