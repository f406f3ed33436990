"""A JPEG's (a PNG's, a WebP's, a HEIC's or AVIF's, a TIFF's) picture hash: the same when only its
metadata changes (an editor's keywords, rating, caption written inside the file), different when
its picture or its orientation does; a build of a new index then keeps the photo's vector, where
an older index embeds it again."""

from __future__ import annotations

import io
import os
import sqlite3
import zlib
from functools import partial
from pathlib import Path

import xxhash
from PIL import Image

from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.picture_hash import picture_hash
from indexing.search import Searcher
from indexing.sources import FolderSource, content_hash
from tests.colour_embedder import ColourEmbedder, colour_image


def _jpeg(colour: str = "red", **options: object) -> bytes:
    buffer = io.BytesIO()
    colour_image(colour).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _with_metadata(jpeg: bytes, *segments: bytes) -> bytes:
    """`jpeg` with metadata segments written after its start, as a metadata editor writes them
    (the picture's bytes untouched)."""
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _xmp_packet(stars: int, *keywords: str) -> bytes:
    """An XMP packet as an editor writes a rating and keywords."""
    items = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="{stars}">'
        f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def _xmp(stars: int, *keywords: str) -> bytes:
    """That packet in a JPEG's segment."""
    return _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + _xmp_packet(stars, *keywords))


def _turned(jpeg: bytes, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _with_metadata(jpeg, _segment(0xE1, exif.tobytes()))  # ("Exif\0\0" and a TIFF block)


def test_metadata_leaves_the_picture_hash_as_it_is_and_the_picture_does_not():
    photo = _jpeg("red")
    edited = _with_metadata(photo, _xmp(4, "Ana"), _segment(0xFE, b"a comment"), _segment(0xED, b"IPTC"))
    assert Image.open(io.BytesIO(edited)).info["xmp"]  # a JPEG as readers see it
    assert picture_hash(edited) == picture_hash(photo) != picture_hash(_jpeg("blue"))
    assert content_hash(edited) != content_hash(photo)  # what the whole file's hash says
    # EXIF: a date changes nothing, an orientation turns the picture.
    dated = Image.Exif()
    dated[0x0132] = "2019:07:14 10:00:00"
    assert picture_hash(_with_metadata(photo, _segment(0xE1, dated.tobytes()))) == picture_hash(photo)
    assert picture_hash(_turned(photo, 6)) != picture_hash(photo) == picture_hash(_turned(photo, 1))
    big_endian = bytes.fromhex("4d4d002a00000008000101120003000000010006000000000000")  # MM, orientation 6
    assert picture_hash(_with_metadata(photo, _segment(0xE1, b"Exif\0\0" + big_endian))) == picture_hash(
        _turned(photo, 6)
    )
    assert picture_hash(photo + b"motion photo") != picture_hash(photo)  # a trailer is the file's
    # What is not a whole JPEG is hashed whole.
    for data in (b"GIF89a...", photo[:200], b"\xff\xd8\xff\xe0\x00", b""):
        assert picture_hash(data) == xxhash.xxh3_128_hexdigest(data)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def _with_chunks(png: bytes, *chunks: bytes) -> bytes:
    """`png` with chunks written before its end (IEND, its last 12 bytes), as an editor writes them."""
    return png[:-12] + b"".join(chunks) + png[-12:]


def test_a_png_s_text_chunks_leave_its_picture_hash_as_it_is():
    buffer = io.BytesIO()
    colour_image("red").save(buffer, "PNG")
    png = buffer.getvalue()
    xmp = _chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + b'<x:xmpmeta xmp:Rating="4"/>')
    tagged = _with_chunks(png, xmp, _chunk(b"tEXt", b"Comment\0a comment"), _chunk(b"tIME", bytes(7)))
    assert Image.open(io.BytesIO(tagged)).text["Comment"] == "a comment"  # a PNG as readers see it
    assert picture_hash(tagged) == picture_hash(png) != xxhash.xxh3_128_hexdigest(tagged)
    turned = Image.Exif()
    turned[0x0112] = 6
    assert picture_hash(_with_chunks(png, _chunk(b"eXIf", turned.tobytes()[6:]))) != picture_hash(png)
    upright = Image.Exif()
    upright[0x0112] = 1
    assert picture_hash(_with_chunks(png, _chunk(b"eXIf", upright.tobytes()[6:]))) == picture_hash(png)
    raw = _chunk(b"zTXt", b"Raw profile type exif\0\0" + zlib.compress(b"exif"))  # ImageMagick's EXIF
    assert picture_hash(_with_chunks(png, raw)) != picture_hash(png)
    blue = io.BytesIO()
    colour_image("blue").save(blue, "PNG")
    assert picture_hash(blue.getvalue()) != picture_hash(png)
    assert picture_hash(png[:-6]) == xxhash.xxh3_128_hexdigest(png[:-6])  # cut short: hashed whole


def _saved(kind: str, colour: str = "red", **options: object) -> bytes:
    """A colour image saved as `kind` (Pillow's format name) with `options`."""
    buffer = io.BytesIO()
    colour_image(colour).save(buffer, kind, **options)
    return buffer.getvalue()


_webp, _avif = partial(_saved, "WEBP"), partial(_saved, "AVIF")


def test_a_webp_s_metadata_chunks_leave_its_picture_hash_as_it_is():
    upright, turned = Image.Exif(), Image.Exif()
    upright[0x0112], turned[0x0112] = 1, 6
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmp:Rating="4"/>'
    for kind in ({"lossless": True}, {"quality": 80}):
        plain = _webp(**kind)
        # An editor's metadata: EXIF and XMP chunks, and the extended header that says they are there.
        tagged = _webp(**kind, exif=upright.tobytes(), xmp=xmp)
        assert tagged[12:16] == b"VP8X" and plain[12:16] != b"VP8X"
        assert Image.open(io.BytesIO(tagged)).info["xmp"]  # a WebP as readers see it
        assert picture_hash(tagged) == picture_hash(plain) != xxhash.xxh3_128_hexdigest(tagged)
        assert picture_hash(_webp(**kind, exif=turned.tobytes())) != picture_hash(plain)  # turned
        assert picture_hash(_webp("blue", **kind)) != picture_hash(plain)
        assert picture_hash(plain + b"trailer") != picture_hash(plain)
        assert picture_hash(tagged[:-10]) == xxhash.xxh3_128_hexdigest(tagged[:-10])  # cut short: whole
    no_picture = (
        b"RIFF" + (16).to_bytes(4, "little") + b"WEBP" + b"XMP " + (4).to_bytes(4, "little") + b"<x/>"
    )
    assert picture_hash(no_picture) == xxhash.xxh3_128_hexdigest(no_picture)


def _counted(embedder: ColourEmbedder) -> list[int]:
    embedded: list[int] = []
    embed = embedder.embed_pixels
    embedder.embed_pixels = lambda batch: embedded.append(len(batch)) or embed(batch)  # type: ignore[method-assign]
    return embedded


def _rewritten(path, data: bytes) -> None:
    """`path` rewritten with `data`, a second later."""
    stat = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _edit_inside(path, *segments: bytes) -> None:
    _rewritten(path, _with_metadata(path.read_bytes(), *segments))


def _indexed(tmp_path, photos: dict[str, bytes]) -> tuple[Path, ColourEmbedder, list[int]]:
    """A folder of `photos` (name: bytes) indexed, its embedder, and the batches it embeds next."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, data in photos.items():
        (folder / name).write_bytes(data)
    embedder = ColourEmbedder()
    build_index(FolderSource(folder), tmp_path / "index", embedder, progress=False)
    return folder, embedder, _counted(embedder)


def test_a_rating_written_inside_a_photo_keeps_its_vector(tmp_path):
    photos, embedder, embedded = _indexed(tmp_path, {"party.jpg": _jpeg("red"), "sea.jpg": _jpeg("blue")})
    _edit_inside(photos / "party.jpg", _xmp(4, "Ana"))  # rated and tagged in Windows' Explorer
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.updated, summary.reused, embedded) == (1, 1, [])  # read again, not embedded
    hit = Searcher.open(tmp_path / "index", embedder).by_query("rating:4")[0]
    assert (hit.key, hit.tags, hit.id) == ("party.jpg", ("Ana",), 0)
    (photos / "party.jpg").write_bytes(_turned((photos / "party.jpg").read_bytes(), 8))  # turned
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.updated, summary.reused, embedded) == (1, 0, [1])


def test_an_index_made_before_keeps_hashing_whole_files(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "party.jpg").write_bytes(_jpeg("red"))
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    with sqlite3.connect(tmp_path / "index" / CATALOG) as db:  # as a version before picture hashes left it
        (content,) = db.execute("SELECT content FROM items").fetchone()
        assert content == picture_hash((photos / "party.jpg").read_bytes())
        db.execute("DELETE FROM meta WHERE name='content_hash'")
        db.execute("UPDATE items SET content=?", (content_hash((photos / "party.jpg").read_bytes()),))
    (photos / "copy.jpg").write_bytes((photos / "party.jpg").read_bytes())
    embedded = _counted(embedder)
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.added, summary.reused, embedded) == (1, 1, [])  # a copy still known by its whole file
    _edit_inside(photos / "party.jpg", _xmp(4, "Ana"))
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.updated, embedded) == (1, [1])  # as before: its file changed


def test_a_heif_still_s_metadata_items_leave_its_picture_hash_as_it_is():
    upright, turned = Image.Exif(), Image.Exif()
    upright[0x0112], turned[0x0112] = 1, 6
    upright[0x010F] = "a camera maker"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmp:Rating="4"/>'
    plain = _avif()  # (libavif's encoder, as Pillow writes AVIF: a HEIF still, as HEIC is)
    tagged = _avif(exif=upright.tobytes(), xmp=xmp)  # EXIF and XMP items: the picture's bytes move
    assert Image.open(io.BytesIO(tagged)).info["xmp"] and plain != tagged  # an AVIF as readers see it
    assert picture_hash(tagged) == picture_hash(plain) != xxhash.xxh3_128_hexdigest(tagged)
    assert picture_hash(_avif(exif=turned.tobytes())) != picture_hash(plain)  # turned
    assert picture_hash(_avif("blue")) != picture_hash(plain)
    assert picture_hash(_avif(quality=40)) != picture_hash(plain)
    assert picture_hash(tagged[:-10]) == xxhash.xxh3_128_hexdigest(tagged[:-10])  # cut short: whole


def _box(kind: bytes, *payload: bytes, version: int | None = None) -> bytes:
    """An ISO BMFF box (a full box where a version is given)."""
    body = (b"" if version is None else bytes([version, 0, 0, 0])) + b"".join(payload)
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def _heic(items: list[tuple[int, bytes, bytes, str]], *, angle: int = 0, moved: bool = False) -> bytes:
    """A HEIC as a camera or an editor lays it out: `items` (id, type, bytes, "idat" to keep them in
    `meta`, "mdat" in the file's data, or a MIME content type), the first the primary picture,
    turned by `angle` quarter turns; `moved` puts the data of the items in `mdat` in reverse."""
    u16, u32 = (lambda n: n.to_bytes(2, "big")), (lambda n: n.to_bytes(4, "big"))
    infe = [
        _box(
            b"infe",
            u16(i),
            u16(0),
            kind,
            b"\0",
            b"" if where in ("idat", "mdat") else where.encode() + b"\0",
            version=2,
        )
        for i, kind, _, where in items
    ]
    in_mdat = [(i, data) for i, _, data, where in items if where != "idat"]
    in_idat = [(i, data) for i, _, data, where in items if where == "idat"]
    idat = b"".join(data for _, data in in_idat)
    properties = _box(
        b"iprp",
        _box(b"ipco", _box(b"ispe", u32(64), u32(48), version=0), _box(b"irot", bytes([angle]))),
        _box(b"ipma", u32(1), u16(items[0][0]), bytes([2, 0x81, 0x02]), version=0),
    )
    references = [
        _box(b"cdsc", u16(i), u16(1), u16(items[0][0]))
        for i, kind, _, _ in items
        if kind in (b"Exif", b"mime")
    ]
    ftyp = _box(b"ftyp", b"heic", u32(0), b"mif1heic")

    def meta(offsets: dict[int, int]) -> bytes:
        places, at = [], 0
        for i, data in in_idat:
            places.append(u16(i) + u16(1) + u16(0) + u16(1) + u32(at) + u32(len(data)))
            at += len(data)
        places += [
            u16(i) + u16(0) + u16(0) + u16(1) + u32(offsets.get(i, 0)) + u32(len(data)) for i, data in in_mdat
        ]
        return _box(
            b"meta",
            _box(b"hdlr", u32(0), b"pict", bytes(12), b"\0", version=0),
            _box(b"pitm", u16(items[0][0]), version=0),
            _box(b"iinf", u16(len(infe)), *infe, version=0),
            _box(b"iloc", bytes([0x44, 0x00]), u16(len(places)), *places, version=1),
            _box(b"iref", *references, version=0),
            properties,
            _box(b"idat", idat),
            version=0,
        )

    start = len(ftyp) + len(meta({})) + 8
    offsets = {}
    for i, data in reversed(in_mdat) if moved else in_mdat:
        offsets[i], start = start, start + len(data)
    return (
        ftyp + meta(offsets) + _box(b"mdat", *(data for _, data in (reversed(in_mdat) if moved else in_mdat)))
    )


def test_a_heic_s_metadata_items_leave_its_picture_hash_as_it_is_wherever_its_bytes_lie():
    tile, grid = b"hevc tile " * 50, bytes([0, 0, 0, 47, 0, 63])  # (a grid of one tile, kept in `idat`)
    exif = Image.Exif()
    exif[0x0112] = 1
    metadata = [
        (3, b"Exif", bytes(4) + exif.tobytes()[6:], "mdat"),
        (4, b"mime", b"<x:xmpmeta/>", "application/rdf+xml"),
    ]
    photo = [(1, b"grid", grid, "idat"), (2, b"hvc1", tile, "mdat")]
    plain = _heic(photo)
    edited = _heic(photo + metadata, moved=True)  # as exiftool writes them: other bytes in other places
    assert picture_hash(edited) == picture_hash(plain) != xxhash.xxh3_128_hexdigest(plain)
    assert picture_hash(_heic(photo, angle=1)) != picture_hash(plain)  # turned (the `irot` property)
    exif[0x0112] = 6
    turned = [(3, b"Exif", bytes(4) + exif.tobytes()[6:], "mdat")]
    assert picture_hash(_heic(photo + turned)) != picture_hash(plain)  # turned (its EXIF)
    assert picture_hash(_heic([photo[0], (2, b"hvc1", tile[::-1], "mdat")])) != picture_hash(plain)
    assert picture_hash(_heic([(1, b"grid", grid[:5] + b"\x40", "idat"), photo[1]])) != picture_hash(plain)
    cut = edited[: len(edited) - 8]
    assert picture_hash(cut) == xxhash.xxh3_128_hexdigest(cut)
    video = _box(b"ftyp", b"isom", bytes(4), b"isommp41") + _box(b"moov", b"...") + _box(b"mdat", tile)
    assert picture_hash(video) == xxhash.xxh3_128_hexdigest(video)  # not a HEIF still: whole


def test_an_avif_rewritten_with_metadata_keeps_its_vector(tmp_path):
    photos, embedder, embedded = _indexed(tmp_path, {"party.avif": _avif("red"), "sea.avif": _avif("blue")})
    _rewritten(photos / "party.avif", _avif("red", xmp=_xmp_packet(4, "Ana")))  # rated and tagged
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.updated, summary.reused, embedded) == (1, 1, [])  # read again, not embedded
    hit = Searcher.open(tmp_path / "index", embedder).by_query("rating:4")[0]
    assert (hit.key, hit.tags, hit.id) == ("party.avif", ("Ana",), 0)
    (photos / "party.avif").write_bytes(_avif("green"))
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.updated, embedded) == (1, [1])


def test_a_tiff_s_metadata_entries_leave_its_picture_hash_as_it_is():
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    def tiff(picture: Image.Image, compression: str = "raw", **tags: object) -> bytes:
        entries = ImageFileDirectory_v2()
        for tag, value in tags.items():
            entries[int(tag[1:])] = value
        buffer = io.BytesIO()
        picture.save(buffer, "TIFF", tiffinfo=entries, compression=compression, strip_size=4096)
        return buffer.getvalue()

    photo = colour_image("red").resize((240, 180))
    keywords = "Ana;Playa".encode("utf-16-le")
    for compression in ("raw", "tiff_lzw"):  # (one strip after the entries; strips before them)
        plain = tiff(photo, compression)
        # An editor's: a description, software, a date, XMP, Windows' keywords and rating.
        edited = tiff(
            photo,
            compression,
            t270="a beach",
            t305="an editor",
            t306="2021:08:14 19:30:00",
            t700=_xmp_packet(4),
        )
        assert (
            picture_hash(edited)
            == picture_hash(plain)
            == picture_hash(tiff(photo, compression, t40094=keywords, t18246=4))
        )
        assert picture_hash(plain) != xxhash.xxh3_128_hexdigest(plain)
        assert picture_hash(tiff(photo, compression, t274=6)) != picture_hash(plain)  # turned
        assert picture_hash(tiff(colour_image("blue").resize((240, 180)), compression)) != picture_hash(plain)
        strips = Image.open(io.BytesIO(plain)).tag_v2[273]
        changed = bytearray(plain)
        changed[strips[-1] + 5] ^= 1  # one byte of the picture's last strip
        assert picture_hash(bytes(changed)) != picture_hash(plain)
    assert Image.open(io.BytesIO(edited)).tag_v2[273] == strips and len(strips) > 1  # LZW: strips
    raw, edited_raw = tiff(photo), tiff(photo, t700=_xmp_packet(4))
    assert Image.open(io.BytesIO(edited_raw)).tag_v2[273] != Image.open(io.BytesIO(raw)).tag_v2[273]  # moved
    assert picture_hash(raw[:-10]) == xxhash.xxh3_128_hexdigest(raw[:-10])  # cut short: whole
    first = int.from_bytes(raw[4:8], "little")
    count = int.from_bytes(raw[first : first + 2], "little")
    looped = bytearray(raw)
    looped[first + 2 + 12 * count : first + 6 + 12 * count] = raw[4:8]  # the next directory: itself
    assert picture_hash(bytes(looped)) == xxhash.xxh3_128_hexdigest(bytes(looped))
