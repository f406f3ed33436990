"""A HEIF still image's structure (HEIC, iPhones' photos; AVIF): its items, their data and the
boxes that say how they make the picture, read from the file's boxes (ISO/IEC 23008-12 and
ISO/IEC 14496-12), for its picture hash (indexing.picture_hash), a check before libheif decodes
it (`well_formed`), and its thumbnail as a file of its own (`thumbnail_file`, a build's quick
decode). Decoding is Pillow's plug-ins'.

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


def is_iso(head: bytes) -> bool:
    """Whether a file whose first bytes are `head` is an ISO base media file (a `ftyp` box first):
    a HEIF (HEIC, AVIF), or an MP4, a MOV, a CR3."""
    return head[4:8] == b"ftyp"


def read_still(data: bytes) -> Still | None:
    """`data`'s HEIF structure, or None where it is not a HEIF still image, or one that does not
    read (cut short, an item stored outside the file or built from another, an image sequence)."""
    if not is_iso(data):
        return None
    try:
        return _still(data)
    except (_Unread, IndexError, ValueError, UnicodeDecodeError):
        return None


def well_formed(data: bytes) -> bool:
    """Whether HEIF still image `data` reads whole here: its boxes, items and their bytes, and its
    properties and references naming only what is there. libheif crashed the process on some
    damaged files (0.4% of randomly damaged ones in a fuzzing run); most of those were refused by
    this check first (benchmarks/RESULTS.md)."""
    still = read_still(data)
    if still is None:
        return False
    try:
        _listed_and_associated(still)
    except (_Unread, IndexError, ValueError):
        return False
    ids = {item.id for item in still.items}
    return still.primary in ids and all(
        source in ids and set(targets) <= ids for _, source, targets in still.references
    )


def _listed_and_associated(still: Still) -> tuple[list[bytes], dict[int, list[tuple[int, bool]]]]:
    """A HEIF's properties (each box whole, in `ipco`'s order) and which items have them (`ipma`:
    item id → [(index from 1, essential)]), checked to name only properties and items there are."""
    props = still.properties  # (`iprp`'s content: `ipco`, then `ipma`)
    boxes = {kind: (content, end) for kind, _, content, end in _spans(props, 0, len(props))}
    if "ipco" not in boxes or "ipma" not in boxes:
        raise _Unread("no properties")
    listed = [props[start:end] for _, start, _, end in _spans(props, *boxes["ipco"])]
    having = _associations(props, *boxes["ipma"])
    ids = {item.id for item in still.items}
    if not having.keys() <= ids or any(not 1 <= i <= len(listed) for m in having.values() for i, _ in m):
        raise _Unread("a property or an item that is not there")
    return listed, having


def thumbnail_file(data: bytes, min_side: int) -> bytes | None:
    """A HEIF file whose picture is the smallest HEVC thumbnail of HEIF `data`'s primary picture
    with both sides at least `min_side`, turned as the picture is (an iPhone's HEIC holds one of
    320×240: its decoding is a reduced-size decode of a 12-megapixel photo); None where `data`
    has none so large, or does not read."""
    still = read_still(data)
    if still is None:
        return None
    try:
        return _thumbnail_file(still, min_side)
    except (_Unread, IndexError, ValueError):
        return None


def _thumbnail_file(still: Still, min_side: int) -> bytes | None:
    listed, having = _listed_and_associated(still)
    items = {item.id: item for item in still.items}
    sizes = {}
    for kind, thumb, targets in still.references:
        item = items.get(thumb)
        if kind == "thmb" and still.primary in targets and item is not None and item.type == "hvc1":
            found = [listed[i - 1] for i, _ in having.get(thumb, []) if listed[i - 1][4:8] == b"ispe"]
            if found and min(w := _uint(found[0], 12, 4), h := _uint(found[0], 16, 4)) >= min_side:
                sizes[thumb] = w * h
    if not sizes:
        return None
    thumb = min(sizes, key=sizes.__getitem__)
    kept = [(listed[i - 1], essential) for i, essential in having[thumb]]
    if not any(box[4:8] in (b"irot", b"imir") for box, _ in kept):  # turned as its picture is
        kept += [
            (listed[i - 1], True)
            for i, _ in having.get(still.primary, [])
            if listed[i - 1][4:8] in (b"irot", b"imir")
        ]
    if len(kept) > 127:
        return None
    ipco = _box(b"ipco", *(box for box, _ in kept))
    marks = bytes((0x80 if essential else 0) | n for n, (_, essential) in enumerate(kept, 1))
    ipma = _box(b"ipma", (1).to_bytes(4, "big"), (1).to_bytes(2, "big"), bytes([len(kept)]), marks, version=0)
    ftyp = _box(b"ftyp", still.ftyp)

    def meta(offset: int) -> bytes:
        return _box(
            b"meta",
            _box(b"hdlr", bytes(4), b"pict", bytes(12), b"\0", version=0),
            _box(b"pitm", (1).to_bytes(2, "big"), version=0),
            _box(b"iinf", (1).to_bytes(2, "big"), _box(b"infe", b"\0\x01\0\0hvc1\0", version=2), version=0),
            _box(
                b"iloc",
                b"\x44\0\0\x01\0\x01\0\0\0\x01",
                offset.to_bytes(4, "big"),
                len(items[thumb].data).to_bytes(4, "big"),
                version=0,
            ),
            _box(b"iprp", ipco, ipma),
            version=0,
        )

    offset = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(offset) + _box(b"mdat", items[thumb].data)


def _associations(data: bytes, at: int, end: int) -> dict[int, list[tuple[int, bool]]]:
    """`ipma`'s associations: item id → [(property index, from 1; whether essential)]."""
    version, flags = data[at], data[at + 3]
    width, wide = (2 if version == 0 else 4), bool(flags & 1)
    count, at = _uint(data, at + 4, 4), at + 8
    found: dict[int, list[tuple[int, bool]]] = {}
    for _ in range(count):
        item, at = _uint(data, at, width), at + width
        n, at = data[at], at + 1
        marks = []
        for _ in range(n):
            value, at = _uint(data, at, 2 if wide else 1), at + (2 if wide else 1)
            top = 0x8000 if wide else 0x80
            marks.append((value & (top - 1), bool(value & top)))
        found[item] = marks
    if at > end:
        raise _Unread("property associations")
    return found


def _box(kind: bytes, *payload: bytes, version: int | None = None) -> bytes:
    """A box of `payload` (a full box, flags 0, where `version` is given)."""
    body = (b"" if version is None else bytes([version, 0, 0, 0])) + b"".join(payload)
    return (8 + len(body)).to_bytes(4, "big") + kind + body


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
    return [(kind, (content, stop)) for kind, _, content, stop in _spans(data, at, end)]


def _spans(data: bytes, at: int, end: int) -> list[tuple[str, int, int, int]]:
    """The boxes between `at` and `end`: (type, where it starts, where its content starts, where
    it ends)."""
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
        found.append((kind, at, at + header, at + size))
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
