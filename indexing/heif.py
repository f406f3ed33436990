"""A HEIF still image's structure (HEIC, iPhones' photos; AVIF): its items, their data and the
boxes that say how they make the picture, read from the file's boxes (ISO/IEC 23008-12 and
ISO/IEC 14496-12), for its picture hash (indexing.picture_hash). Decoding is Pillow's plug-ins'.

A HEIF file is a `ftyp` box, a `meta` box and the data (`mdat`). `meta` lists the items (`iinf`:
the picture, or its tiles and the grid that joins them, a thumbnail, the EXIF, the XMP), where each
item's bytes lie (`iloc`: in `mdat`, or in `meta`'s own `idat`), how items refer to each other
(`iref`) and their properties (`iprp`: size, colour, rotation, mirroring, the codec's set-up). An
editor that writes metadata (exiftool) rewrites the EXIF or XMP item, which moves the others'
bytes (`iloc` changes), never the bytes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Item types that are metadata: EXIF, and XMP (a `mime` item of this content type).
EXIF, MIME, XMP = "Exif", "mime", "application/rdf+xml"
# References an item of metadata makes to what it describes ("content describes").
DESCRIBES = "cdsc"
# Brands of HEIF still images (HEIC, AVIF and the format's own).
STILL_BRANDS = frozenset({"heic", "heix", "heim", "heis", "mif1", "mif2", "avif"})


@dataclass
class Item:
    """One item of the file: its id, its type ("hvc1", "grid", "Exif", "mime"...), its MIME
    content type for a `mime` item, and its bytes."""

    id: int
    type: str
    content_type: str = ""
    data: bytes = b""


@dataclass
class Still:
    """A HEIF still image: its `ftyp`, its primary item's id, its items in `iinf`'s order, its
    references as (type, from, to ids) and its properties box (`iprp`: properties and which
    items have them)."""

    ftyp: bytes
    primary: int
    items: list[Item]
    references: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)
    properties: bytes = b""


class _Unread(Exception):
    """What the file holds does not read as a HEIF still image this module knows."""


def read_still(data: bytes) -> Still | None:
    """`data`'s HEIF structure, or None where it is not a HEIF still image, or one that does not
    read (cut short, an item stored outside the file or built from another, an image sequence)."""
    if data[4:8] != b"ftyp":
        return None
    try:
        return _still(data)
    except (_Unread, IndexError, ValueError, UnicodeDecodeError):
        return None


def _still(data: bytes) -> Still:
    top = dict(_boxes(data, 0, len(data)))
    if "ftyp" not in top or "meta" not in top or "moov" in top:
        raise _Unread("not a still image")
    start, end = top["ftyp"]
    ftyp = data[start:end]
    brands = {ftyp[i : i + 4].decode("latin-1") for i in (0, *range(8, len(ftyp) - 3, 4))}
    if not brands & STILL_BRANDS:
        raise _Unread("not a HEIF brand")
    meta_start, meta_end = top["meta"]
    meta = dict(_boxes(data, meta_start + 4, meta_end))  # (a full box: version and flags first)
    if not {"pitm", "iinf", "iloc"} <= meta.keys():
        raise _Unread("no items")
    version = data[meta["pitm"][0]]
    primary = _uint(data, meta["pitm"][0] + 4, 2 if version == 0 else 4)
    items = _items(data, *meta["iinf"])
    idat = meta.get("idat", (0, 0))
    for item, item_data in zip(
        items, _locations(data, *meta["iloc"], idat, [i.id for i in items]), strict=True
    ):
        item.data = item_data
    references = _references(data, *meta["iref"]) if "iref" in meta else []
    properties = data[slice(*meta["iprp"])] if "iprp" in meta else b""
    return Still(ftyp, primary, items, references, properties)


def _boxes(data: bytes, at: int, end: int) -> list[tuple[str, tuple[int, int]]]:
    """The boxes between `at` and `end`: (type, (where its content starts, where it ends))."""
    found = []
    while at + 8 <= end:
        size, kind = _uint(data, at, 4), data[at + 4 : at + 8].decode("latin-1")
        header = 8
        if size == 1:
            size, header = _uint(data, at + 8, 8), 16
        elif size == 0:
            size = end - at  # to the end of its container
        if size < header or at + size > end:
            raise _Unread(f"box {kind!r} cut short")
        found.append((kind, (at + header, at + size)))
        at += size
    return found


def _items(data: bytes, at: int, end: int) -> list[Item]:
    """`iinf`'s items: each `infe` box (versions 2 and 3, the ones with a type) in order."""
    version = data[at]
    count = _uint(data, at + 4, 2 if version == 0 else 4)
    entries = _boxes(data, at + (6 if version == 0 else 8), end)
    if len(entries) != count or any(kind != "infe" for kind, _ in entries):
        raise _Unread("item list")
    items = []
    for _, (start, stop) in entries:
        version = data[start]
        if version not in (2, 3):
            raise _Unread("an item without a type")
        width = 2 if version == 2 else 4
        item_id = _uint(data, start + 4, width)
        type_at = start + 4 + width + 2  # (after the protection index)
        kind = data[type_at : type_at + 4].decode("latin-1")
        content_type = ""
        if kind == MIME:
            name_end = data.index(b"\0", type_at + 4, stop)
            content_type = data[name_end + 1 : data.index(b"\0", name_end + 1, stop)].decode("utf-8")
        items.append(Item(item_id, kind, content_type))
    return items


def _locations(data: bytes, at: int, end: int, idat: tuple[int, int], ids: list[int]) -> list[bytes]:
    """The bytes of each item of `ids`, in that order (`iloc`: extents in the file or in `idat`)."""
    version = data[at]
    offset_size, length_size = data[at + 4] >> 4, data[at + 4] & 15
    base_size, index_size = data[at + 5] >> 4, (data[at + 5] & 15 if version in (1, 2) else 0)
    width = 4 if version == 2 else 2
    count, at = _uint(data, at + 6, width), at + 6 + width
    located: dict[int, bytes] = {}
    total = 0  # bytes the items take: at most the file's (one made to repeat its bytes is refused)
    for _ in range(count):
        item_id, at = _uint(data, at, width), at + width
        method = 0
        if version in (1, 2):
            method, at = _uint(data, at, 2) & 15, at + 2
        reference, at = _uint(data, at, 2), at + 2
        base, at = _uint(data, at, base_size), at + base_size
        extents, at = _uint(data, at, 2), at + 2
        if reference != 0 or method not in (0, 1):
            raise _Unread("an item stored elsewhere")
        origin, limit = (0, len(data)) if method == 0 else idat
        parts = []
        for _ in range(extents):
            at += index_size
            offset, at = _uint(data, at, offset_size), at + offset_size
            length, at = _uint(data, at, length_size), at + length_size
            start = origin + base + offset
            total += length
            if length == 0 or start + length > limit or total > len(data):
                raise _Unread("an extent out of the file")
            parts.append(data[start : start + length])
        located[item_id] = b"".join(parts)
    if at > end or not set(ids) <= located.keys():
        raise _Unread("item locations")
    return [located[i] for i in ids]


def _references(data: bytes, at: int, end: int) -> list[tuple[str, int, tuple[int, ...]]]:
    """`iref`'s references: (type, from, to ids)."""
    width = 2 if data[at] == 0 else 4
    found = []
    for kind, (start, stop) in _boxes(data, at + 4, end):
        source, count = _uint(data, start, width), _uint(data, start + width, 2)
        if start + width + 2 + width * count > stop:
            raise _Unread("references")
        found.append(
            (kind, source, tuple(_uint(data, start + width + 2 + width * n, width) for n in range(count)))
        )
    return found


def _uint(data: bytes, at: int, size: int) -> int:
    """A big-endian unsigned integer of `size` bytes at `at` (0 for a size of 0)."""
    if at + size > len(data):
        raise _Unread("cut short")
    return int.from_bytes(data[at : at + size], "big")
