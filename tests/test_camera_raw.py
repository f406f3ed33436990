"""Camera RAW files: developed or previewed upright, indexed beside other photos (not beside their
own JPEG), and reported with what reads them where rawpy is missing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import rawpy
from PIL import Image

from indexing import camera_raw, headers
from indexing.build import build_index
from indexing.catalog import CATALOG, Catalog
from indexing.errors import BadImage
from indexing.images import load_image
from indexing.search import Searcher
from indexing.sources import FolderSource
from tests import synthetic
from tests.isolation import output_without


def write_dng(
    path: Path,
    *,
    square: tuple[int, int, int],
    ground: tuple[int, int, int],
    orientation: int = 1,
    taken: str = "",
    xmp: bytes = b"",
):
    """A 384×256 DNG: a `square` of one colour (12-bit) in the middle of a `ground` of another."""
    planes = np.empty((3, 256, 384))
    for channel in range(3):
        planes[channel] = ground[channel]
        planes[channel, 64:192, 96:288] = square[channel]
    synthetic.write_dng(path, planes, orientation=orientation, taken=taken, xmp=xmp)


RED, BLUE, GREEN = (4000, 0, 200), (200, 0, 3000), (300, 3500, 300)


def _dominant(pixel) -> str:
    return "RGB"[int(np.argmax(pixel))]


def test_a_dng_is_developed_upright_with_its_colours(tmp_path):
    write_dng(tmp_path / "shot.dng", square=RED, ground=BLUE)
    picture = load_image(tmp_path / "shot.dng", min_side=224)
    assert picture.mode == "RGB" and picture.size == (192, 128)  # developed at half size
    pixels = np.asarray(picture)
    assert (_dominant(pixels[64, 96]), _dominant(pixels[5, 5])) == ("R", "B")
    write_dng(tmp_path / "turned.dng", square=RED, ground=BLUE, orientation=6)  # held on its side
    assert load_image(tmp_path / "turned.dng").size == (128, 192)
    as_bytes = load_image((tmp_path / "shot.dng").read_bytes(), camera=True)  # a dataset's row
    assert np.array_equal(np.asarray(as_bytes), pixels)


class _Raw:
    """What rawpy.imread gives, for a RAW whose embedded preview is `preview` (JPEG bytes)."""

    def __init__(self, preview: bytes, flip: int) -> None:
        self.preview = preview
        self.sizes = type("Sizes", (), {"flip": flip, "width": 1200, "height": 800})
        self.developed = False

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False

    def extract_thumb(self):
        return rawpy.Thumbnail(format=rawpy.ThumbFormat.JPEG, data=self.preview)

    def postprocess(self, **options):
        assert options["half_size"]
        self.developed = True
        return np.full((400, 600, 3), (0, 0, 255), np.uint8)


@pytest.mark.parametrize(("side", "used"), [(600, "preview"), (120, "development")])
def test_the_camera_s_preview_is_taken_when_large_enough_and_turned_as_the_raw_says(
    monkeypatch, decoders_here, side, used
):
    preview = io.BytesIO()
    Image.new("RGB", (side * 3 // 2, side), (0, 200, 0)).save(preview, "JPEG")
    raw = _Raw(preview.getvalue(), flip=6)  # the camera was held on its side
    monkeypatch.setattr(camera_raw.rawpy, "imread", lambda file: raw)
    picture = load_image(b"a RAW", camera=True, min_side=224)
    if used == "preview":
        assert picture.size == (300, 450) and _dominant(picture.getpixel((10, 10))) == "G"  # halved, turned
        assert not raw.developed
    else:  # too small for the crop and the thumbnail: developed instead
        assert raw.developed and _dominant(picture.getpixel((10, 10))) == "B"


def test_a_folder_build_indexes_raw_files_but_not_beside_their_jpeg(tmp_path, embedder):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_dng(photos / "shot.dng", square=RED, ground=BLUE)
    write_dng(photos / "pair.NEF", square=GREEN, ground=BLUE)
    Image.new("RGB", (384, 256), (0, 200, 0)).save(photos / "pair.jpg")  # RAW+JPEG: the JPEG is kept
    (photos / "broken.cr2").write_bytes(b"II*\x00 not a raw at all")
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert summary.count == 2 and [name for name, _ in summary.skipped] == ["broken.cr2"]
    assert summary.skipped[0][1].startswith("corrupt or truncated image")
    searcher = Searcher.open(tmp_path / "index", embedder)
    hit = searcher.by_image(photos / "shot.dng", k=1)[0]
    assert hit.key == "shot.dng" and hit.score > 0.999
    assert searcher.thumbnail(hit.id)[:2] == b"\xff\xd8"


def test_a_dng_whose_metadata_an_editor_wrote_inside_keeps_its_vector(tmp_path, embedder):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_dng(photos / "shot.dng", square=RED, ground=BLUE)
    write_dng(photos / "other.dng", square=GREEN, ground=BLUE)
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    embedded: list[int] = []
    embed = embedder.embed_pixels
    embedder.embed_pixels = lambda batch: embedded.append(len(batch)) or embed(batch)
    try:
        stat = (photos / "shot.dng").stat()
        xmp = (  # as Lightroom writes a rating and a keyword inside a DNG
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="4">'
            b"<dc:subject><rdf:Bag><rdf:li>Ana</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
        )
        write_dng(photos / "shot.dng", square=RED, ground=BLUE, taken="2021:08:14 19:30:00", xmp=xmp)
        os.utime(photos / "shot.dng", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
        assert (summary.updated, summary.reused, embedded) == (1, 1, [])  # read again, not embedded
        hit = Searcher.open(tmp_path / "index", embedder).by_query("rating:4")[0]  # (Pillow cannot open it)
        assert (hit.key, hit.tags, hit.taken) == ("shot.dng", ("Ana",), "2021-08-14T19:30:00")
        catalog = Catalog(tmp_path / "index" / CATALOG)  # as a version that could not read them left it
        catalog.set_facts([("2021-08-14T19:30:00", None, None, None, (), None, "", "shot.dng")])
        catalog.set_meta(headers_reader="9")
        catalog.close()
        summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
        assert "2 headers read again, once" in summary.report() and embedded == []
        assert Searcher.open(tmp_path / "index", embedder).by_query("tag:ana")[0].key == "shot.dng"
        write_dng(photos / "shot.dng", square=BLUE, ground=RED)  # developed again: a new picture
        summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
        assert (summary.updated, embedded) == (1, [1])
    finally:
        del embedder.embed_pixels


def test_without_rawpy_raw_files_are_reported_with_what_reads_them(tmp_path):
    for name in ("a.nef", "b.nef", "b.jpg"):
        (tmp_path / name).write_bytes(b"")
    script = (
        "from pathlib import Path\n"
        "from indexing.errors import BadImage\n"
        "from indexing.images import load_image\n"
        "from indexing.sources import FolderSource\n"
        f"source = FolderSource({str(tmp_path)!r})\n"
        "print([item.key for item in source.items()], source.left_out)\n"
        "try:\n"
        f"    load_image(Path({str(tmp_path / 'a.nef')!r}).with_name('x.nef'))\n"
        "except BadImage as exc:\n"
        "    print(exc)\n"
    )
    (tmp_path / "x.nef").write_bytes(b"II*\x00")
    lines = output_without("rawpy", script)
    assert lines[0] == "['b.jpg'] [('a.nef', 'camera RAW', 'pip install rawpy to index them'), " + (
        "('x.nef', 'camera RAW', 'pip install rawpy to index them')]"
    )
    assert lines[1] == "a camera RAW file: pip install rawpy to read it"


def test_a_raw_says_when_it_was_taken_where_pillow_cannot_read_it(tmp_path):
    write_dng(tmp_path / "shot.dng", square=RED, ground=BLUE, taken="2021:08:14 19:30:00")
    write_dng(tmp_path / "IMG_20190714_182205.dng", square=RED, ground=BLUE)  # no date inside
    with pytest.raises(OSError):
        Image.open(tmp_path / "shot.dng")  # a mosaic, not a picture
    assert headers.from_file(tmp_path / "shot.dng") == headers.Facts("2021-08-14T19:30:00")
    assert headers.from_file(tmp_path / "IMG_20190714_182205.dng") == headers.Facts("2019-07-14T18:22:05")


def test_a_raw_too_large_to_develop_is_refused_before_it_is(tmp_path, monkeypatch, decoders_here):
    write_dng(tmp_path / "shot.dng", square=RED, ground=BLUE)
    monkeypatch.setattr("indexing.images.MAX_DECODED_PIXELS", 20_000)  # 192×128 is more
    with pytest.raises(BadImage, match=r"image too large \(192×128 pixels"):
        load_image(tmp_path / "shot.dng")


def test_a_file_that_is_no_raw_is_a_bad_image(tmp_path):
    with pytest.raises(BadImage, match="corrupt or truncated image"):
        load_image(b"II*\x00 nothing", camera=True)
    write_dng(tmp_path / "shot.dng", square=RED, ground=BLUE)
    (tmp_path / "cut.dng").write_bytes((tmp_path / "shot.dng").read_bytes()[:-4000])  # a copy cut short
    with pytest.raises(BadImage) as caught:  # (LibRaw's "Input/output error", in bytes, is no disk's)
        load_image(tmp_path / "cut.dng")
    assert (
        str(caught.value)
        == "corrupt or truncated image (its data runs past the end of the file: cut short, or damaged)"
    )


def test_a_damaged_raw_whose_development_is_no_colour_picture_is_a_bad_image(monkeypatch, decoders_here):
    raw = _Raw(b"", flip=0)
    raw.extract_thumb = lambda: (_ for _ in ()).throw(rawpy.LibRawNoThumbnailError())
    raw.postprocess = lambda **options: np.zeros((1, 1, 1), np.uint8)  # a fuzzed DNG's, one channel
    monkeypatch.setattr(camera_raw.rawpy, "imread", lambda file: raw)
    with pytest.raises(BadImage, match=r"its development is no colour picture"):
        load_image(b"a RAW", camera=True)
