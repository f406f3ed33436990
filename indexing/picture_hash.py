"""A photo's picture hash: what identifies the picture in a JPEG, PNG, WebP, HEIF (HEIC, AVIF) or
TIFF file (camera RAW files built as TIFFs among them) apart from its metadata.

Photo editors and file managers write keywords, ratings, captions and dates inside a JPEG (digiKam
and Lightroom when told to, Windows' Explorer and Photos always): its EXIF, XMP, IPTC and comment
segments change, its compressed picture does not. A hash of the whole file would call it a new
image, decoded and embedded again; this one leaves those segments out and keeps what makes the
picture: the tables, the frame and every byte from the first scan on (a trailer after the end, a
phone's motion-photo video, with them), plus the EXIF orientation, which turns the picture, and
Adobe's segment, which tells how its colours decode. A PNG likewise without its text chunks (XMP
among them), its time and its EXIF (but the orientation); a WebP without its EXIF and XMP chunks
(but the orientation) and its extended header (`VP8X`, which an editor adds with the first
metadata: its flags say which other chunks there are, and those are hashed). A HEIF still image
(an iPhone's HEIC, an AVIF) by its items but the EXIF and XMP ones, wherever their bytes lie
(`indexing.heif`), with what turns it (its `irot` and `imir` properties, its EXIF orientation). A
TIFF, and a camera RAW file built as one (DNG, NEF, ARW, CR2...), by its directories' entries but
metadata's, each strip's or tile's bytes in place of where it lies (`indexing.tiff`). Anything
else (other RAW files, CR3 among them), or a file whose segments, chunks, boxes or directories do
not read as its format's, is hashed whole.

The hash is XXH3's 128 bits (the `xxhash` package, which `datasets` needs too): 0.15 ms a 3.85 MB
photo, where BLAKE2b, the whole-file hash of indexes made before (`sources.content_hash`), takes
2.7 ms, 4% of what a 4000×3000 photo costs a build on 2 cores (benchmarks/RESULTS.md). A hash
that tells files apart, not one that resists forgery: a collection's own files are not an
adversary's (a dataset's rows keep BLAKE2b).
"""

from __future__ import annotations

from typing import Literal

import xxhash

from indexing import heif, tiff

# What the catalog records (its `content_hash`) for an index whose files are known by this hash.
KIND = "xxh3-picture"

_JPEG, _PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"
_RIFF, _WEBP = b"RIFF", b"WEBP"
# A WebP's chunks that leave the picture as it is (see above).
_WEBP_METADATA = frozenset({b"VP8X", b"EXIF", b"XMP "})
# Its chunks of picture: a still one's (lossy or lossless) and an animation's frames.
_WEBP_PICTURE = frozenset({b"VP8 ", b"VP8L", b"ANMF"})
# A PNG's chunks of metadata: texts (XMP among them, in an iTXt), when it was saved, EXIF.
_PNG_METADATA = frozenset({b"tEXt", b"zTXt", b"iTXt", b"tIME", b"eXIf"})
_RAW_EXIF = b"Raw profile type exif\0"
_SOI, _SOS = 0xD8, 0xDA
_APP0, _APP1, _APP2, _APP14, _APP15, _COM = 0xE0, 0xE1, 0xE2, 0xEE, 0xEF, 0xFE
# Markers without a length: the start, a temporary one and the restart markers.
_STANDALONE = frozenset({_SOI, 0x01, *range(0xD0, 0xD8)})
_ORIENTATION = 0x0112
_BYTE_ORDERS: dict[bytes, Literal["little", "big"]] = {b"II": "little", b"MM": "big"}


def picture_hash(data: bytes) -> str:
    """The hash of the picture of JPEG, PNG, WebP, HEIF or TIFF `data` (see above); that of the
    whole file for anything else."""
    if data.startswith(_JPEG):
        return _jpeg(data)
    if data.startswith(_PNG):
        return _png(data)
    if data.startswith(_RIFF) and data[8:12] == _WEBP:
        return _webp(data)
    if heif.is_iso(data):
        return _heif(data)
    if tiff.is_tiff(data):
        return _tiff(data)
    return _whole(data)


def _jpeg(data: bytes) -> str:
    """A JPEG's picture hash: its segments but metadata's, then its orientation."""
    view = memoryview(data)
    digest = xxhash.xxh3_128(b"jpeg picture")
    orientation, at = 1, 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return _whole(data)  # not a segment where one should start
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == _SOS:  # the first scan: all the rest is picture
            digest.update(view[at:])
            digest.update(orientation.to_bytes(2, "big"))
            return digest.hexdigest()
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == _APP1 and data[at + 4 : at + 10] == b"Exif\0\0" and orientation == 1:
            orientation = _orientation(view[at + 10 : end])
        elif not _metadata(marker, view[at + 4 : at + 16]):
            digest.update(view[at:end])
        at = end
    return _whole(data)  # no scan: not a whole JPEG


def _png(data: bytes) -> str:
    """A PNG's picture hash: its chunks but metadata's (`_PNG_METADATA`), then its orientation."""
    view = memoryview(data)
    digest = xxhash.xxh3_128(b"png picture")
    orientation, at = 1, len(_PNG)
    while at + 12 <= len(data):
        kind, end = data[at + 4 : at + 8], at + 12 + int.from_bytes(data[at : at + 4], "big")
        if end > len(data):
            break  # cut short: not a whole PNG
        if kind == b"eXIf":
            exif = view[at + 8 : end - 4]
            orientation = _orientation(exif[6:] if bytes(exif[:6]) == b"Exif\0\0" else exif)
        elif kind not in _PNG_METADATA or bytes(view[at + 8 : at + 8 + len(_RAW_EXIF)]) == _RAW_EXIF:
            digest.update(view[at:end])  # (EXIF as ImageMagick writes it in a text chunk: Pillow turns by it)
        at = end
        if kind == b"IEND":  # the end: what follows, a trailer, is the file's
            digest.update(view[at:])
            digest.update(orientation.to_bytes(2, "big"))
            return digest.hexdigest()
    return _whole(data)


def _webp(data: bytes) -> str:
    """A WebP's picture hash: its chunks but metadata's (`_WEBP_METADATA`), what follows the RIFF
    container (a trailer), then its orientation. Its container's size is left out: it changes
    with the metadata."""
    view = memoryview(data)
    digest = xxhash.xxh3_128(b"webp picture")
    orientation, at, pictured = 1, 12, False
    container_end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    while at + 8 <= container_end:
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        if at + 8 + size > len(data):
            return _whole(data)  # cut short: not a whole WebP
        if kind == b"EXIF":
            exif = view[at + 8 : at + 8 + size]
            orientation = _orientation(exif[6:] if bytes(exif[:6]) == b"Exif\0\0" else exif)
        elif kind not in _WEBP_METADATA:
            digest.update(view[at : at + 8 + size])
            pictured = pictured or kind in _WEBP_PICTURE
        at += 8 + size + (size & 1)  # (a chunk of an odd size is padded to an even one)
    if not pictured:
        return _whole(data)
    digest.update(view[container_end:])
    digest.update(orientation.to_bytes(2, "big"))
    return digest.hexdigest()


def _heif(data: bytes) -> str:
    """A HEIF still image's picture hash (HEIC, AVIF): its brands, its primary item, its items'
    types and bytes but the EXIF's and the XMP's, their references but the metadata's to what it
    describes, and their properties (rotation and mirroring among them), then the EXIF
    orientation; not where the items' bytes lie, which a metadata edit changes."""
    still = heif.read_still(data)
    if still is None:
        return _whole(data)
    digest = xxhash.xxh3_128(b"heif picture")
    orientation = 1
    for part in (still.ftyp, still.primary.to_bytes(4, "big"), still.properties):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    for item in still.items:
        if item.type == heif.EXIF and len(item.data) >= 4:  # (its TIFF header's offset first)
            orientation = _orientation(memoryview(item.data)[4 + int.from_bytes(item.data[:4], "big") :])
        elif item.type != heif.EXIF and (item.type, item.content_type) != (heif.MIME, heif.XMP):
            digest.update(f"item {item.id} {item.type} {item.content_type} {len(item.data)}\n".encode())
            digest.update(item.data)
    for kind, source, targets in still.references:
        if kind != heif.DESCRIBES:
            digest.update(f"reference {kind} {source} {targets}\n".encode())
    digest.update(orientation.to_bytes(2, "big"))
    return digest.hexdigest()


def _tiff(data: bytes) -> str:
    """A TIFF's picture hash (a scan's, or a camera RAW file's built as a TIFF: DNG, NEF...): its
    directories' entries but metadata's, with its strips' and tiles' bytes (indexing.tiff); the
    orientation is an entry of them."""
    parts = tiff.picture_parts(data)
    if parts is None:
        return _whole(data)
    digest = xxhash.xxh3_128(b"tiff picture")
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _whole(data: bytes) -> str:
    """The hash of a whole file (not a JPEG, PNG, WebP, HEIF still image or TIFF, or not a whole
    one)."""
    return xxhash.xxh3_128_hexdigest(data)


def _metadata(marker: int, start: memoryview) -> bool:
    """Whether a segment is metadata that leaves the picture as it is: an application segment
    (EXIF, XMP, IPTC, JFIF, a maker's) but Adobe's and an ICC colour profile, or a comment."""
    if marker == _COM:
        return True
    if marker == _APP14 or (marker == _APP2 and bytes(start).startswith(b"ICC_PROFILE\0")):
        return False
    return _APP0 <= marker <= _APP15


def _orientation(tiff: memoryview) -> int:
    """The orientation an EXIF block (a TIFF header and its first directory) gives: 1 to 8, 1
    for none or one that does not read."""
    order = _BYTE_ORDERS.get(bytes(tiff[:2]))
    if order is None or len(tiff) < 8:
        return 1
    directory = int.from_bytes(tiff[4:8], order)
    if directory + 2 > len(tiff):
        return 1
    for n in range(int.from_bytes(tiff[directory : directory + 2], order)):
        entry = directory + 2 + 12 * n
        if entry + 12 > len(tiff):
            break
        if int.from_bytes(tiff[entry : entry + 2], order) == _ORIENTATION:
            value = int.from_bytes(tiff[entry + 8 : entry + 10], order)
            return value if 1 <= value <= 8 else 1
    return 1
