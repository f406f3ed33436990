"""XMP sidecars: found by their editors' names, read before the photo's own header, and read again
(nothing else done) when edited."""

from __future__ import annotations

import io
import os
import sqlite3

import gradio as gr
import pytest
from PIL import Image

import app
from indexing import headers, xmp
from indexing.build import build_index
from indexing.catalog import CATALOG, Catalog
from indexing.changes import plan_build
from indexing.cli import main
from indexing.duplicates import find_duplicates
from indexing.errors import BuscadorError
from indexing.ratings import split_rating
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.tags import split_tag
from tests.colour_embedder import ColourEmbedder, colour_image
from ui import text
from ui.handlers import Handlers
from ui.startup import Engine

# darktable's (and digiKam's) way: properties as attributes of the description.
DARKTABLE = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:exif="http://ns.adobe.com/exif/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
    xmp:Rating="3"
    exif:DateTimeOriginal="{taken}"
    exif:GPSLatitude="{lat}"
    exif:GPSLongitude="{lon}"
    darktable:xmp_version="5">
   <darktable:history><rdf:Seq/></darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""
# Lightroom's way: properties as elements.
LIGHTROOM = """<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmlns:exif="http://ns.adobe.com/exif/1.0/">
   <photoshop:DateCreated>2021-03-02T08:00:00.25+01:00</photoshop:DateCreated>
   <exif:GPSLatitude>48,51.504N</exif:GPSLatitude>
   <exif:GPSLongitude>2,17,40.2E</exif:GPSLongitude>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def _darktable(path, taken="2019-07-14T18:22:05", lat="36,31.626N", lon="6,17.316W"):
    path.write_text(DARKTABLE.format(taken=taken, lat=lat, lon=lon), encoding="utf-8")


def _camera_photo(path, colour="red", taken="2018:05:01 10:00:00"):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken  # when the shutter fired, as the camera's clock said
    colour_image(colour).save(path, exif=exif)


def test_a_photo_s_own_xmp_gives_its_date_and_position_where_its_exif_has_none(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    packet = LIGHTROOM.encode()  # as Lightroom or Photoshop export a PNG: XMP alone, no EXIF
    png = PngInfo()
    png.add_itxt("XML:com.adobe.xmp", LIGHTROOM)
    colour_image("red").save(tmp_path / "export.png", pnginfo=png)
    colour_image("red").save(tmp_path / "export.webp", xmp=packet)
    colour_image("red").save(tmp_path / "export.jpg", xmp=packet, exif=Image.Exif())
    for name in ("export.png", "export.webp", "export.jpg"):
        assert headers.from_file(tmp_path / name) == headers.Facts("2021-03-02T08:00:00", 48.8584, 2.2945), (
            name
        )
    _camera_photo(tmp_path / "camera.jpg")  # its EXIF's date comes first
    exif = Image.open(tmp_path / "camera.jpg").getexif()
    colour_image("red").save(tmp_path / "camera.jpg", exif=exif, xmp=packet)
    assert headers.from_file(tmp_path / "camera.jpg").taken == "2018-05-01T10:00:00"


def _with_iptc(jpeg: bytes, *datasets: tuple[int, bytes]) -> bytes:
    """A JPEG with an IPTC record (datasets of record 2) as Picasa writes one: Photoshop's APP13
    segment, its IPTC resource."""
    record = b"".join(b"\x1c\x02" + bytes([n]) + len(v).to_bytes(2, "big") + v for n, v in datasets)
    resource = b"8BIM\x04\x04\x00\x00" + len(record).to_bytes(4, "big") + record + b"\x00" * (len(record) % 2)
    payload = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def test_keywords_and_captions_in_iptc_or_windows_tags_are_read_where_xmp_says_none(tmp_path):
    plain = io.BytesIO()
    colour_image("red").save(plain, "JPEG")
    picasa = _with_iptc(
        plain.getvalue(), (25, "Ana María".encode()), (25, b"Playa"), (120, "Cumpleaños de Ana".encode())
    )
    (tmp_path / "picasa.jpg").write_bytes(picasa)
    facts = headers.from_file(tmp_path / "picasa.jpg")
    assert (facts.tags, facts.caption) == (("Ana María", "Playa"), "Cumpleaños de Ana")
    latin = _with_iptc(plain.getvalue(), (25, "Señor".encode("cp1252")), (105, b"Fiesta"))  # an older tool's
    (tmp_path / "latin.jpg").write_bytes(latin)
    assert (
        headers.from_file(tmp_path / "latin.jpg").tags,
        headers.from_file(tmp_path / "latin.jpg").caption,
    ) == (
        ("Señor",),
        "Fiesta",
    )
    exif = Image.Exif()
    exif[0x9C9E] = "Ana;Playa;".encode("utf-16-le") + b"\x00\x00"  # Windows' Explorer's tags
    colour_image("red").save(tmp_path / "windows.jpg", exif=exif)
    assert headers.from_file(tmp_path / "windows.jpg").tags == ("Ana", "Playa")
    xmp_said = io.BytesIO()  # XMP, where it says, comes first
    colour_image("red").save(xmp_said, "JPEG", xmp=_keywords("Luis").encode())
    (tmp_path / "both.jpg").write_bytes(_with_iptc(xmp_said.getvalue(), (25, b"Ana")))
    assert headers.from_file(tmp_path / "both.jpg").tags == ("Luis",)


def test_the_names_of_a_photo_s_face_regions_are_keywords():
    rdf = 'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    picasa = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {rdf}>
     <rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
       xmlns:dc="http://purl.org/dc/elements/1.1/">
      <dc:subject><rdf:Bag><rdf:li>Playa</rdf:li><rdf:li>Ana</rdf:li></rdf:Bag></dc:subject>
      <mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>
       <rdf:li><rdf:Description mwg-rs:Name="Ana" mwg-rs:Type="Face"/></rdf:li>
       <rdf:li><rdf:Description mwg-rs:Type="Face">
        <mwg-rs:Name>Luis  Pérez</mwg-rs:Name></rdf:Description></rdf:li>
      </rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>
     </rdf:Description></rdf:RDF></x:xmpmeta>"""
    assert xmp.read(picasa.encode()).tags == ("Playa", "Ana", "Luis Pérez")  # each once, subject first
    gallery = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF {rdf}>
     <rdf:Description rdf:about="" xmlns:MP="http://ns.microsoft.com/photo/1.2/"
       xmlns:MPRI="http://ns.microsoft.com/photo/1.2/t/RegionInfo#"
       xmlns:MPReg="http://ns.microsoft.com/photo/1.2/t/Region#">
      <MP:RegionInfo rdf:parseType="Resource"><MPRI:Regions><rdf:Bag>
       <rdf:li MPReg:PersonDisplayName="Marta" MPReg:Rectangle="0.1, 0.2, 0.3, 0.4"/>
      </rdf:Bag></MPRI:Regions></MP:RegionInfo>
     </rdf:Description></rdf:RDF></x:xmpmeta>"""
    assert xmp.read(gallery.encode()).tags == ("Marta",)  # Windows Live Photo Gallery's


def test_a_sidecar_is_found_by_its_editors_names(tmp_path):
    for name in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.NEF", "scan.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "IMG_1.CR2.xmp").write_text("")  # darktable's, digiKam's: the whole name
    (tmp_path / "IMG_1.xmp").write_text("")  # Lightroom's: the stem
    (tmp_path / "img_2.XMP").write_text("")  # another case
    assert xmp.sidecar(tmp_path / "IMG_1.CR2") == tmp_path / "IMG_1.CR2.xmp"  # the whole name's first
    assert xmp.sidecar(tmp_path / "IMG_1.JPG") == tmp_path / "IMG_1.xmp"  # the RAW+JPEG's shot
    assert xmp.sidecar(tmp_path / "IMG_2.NEF") == tmp_path / "img_2.XMP"
    (tmp_path / "IMG_3.JPG").write_bytes(b"")  # a camera's RAW+JPEG, the RAW edited in darktable
    (tmp_path / "IMG_3.ARW.xmp").write_text("")
    assert xmp.sidecar(tmp_path / "IMG_3.JPG") == tmp_path / "IMG_3.ARW.xmp"
    assert xmp.sidecar(tmp_path / "scan.png") is None


def test_a_sidecar_comes_before_the_photo_s_own_header(tmp_path):
    _camera_photo(tmp_path / "a.jpg")  # a camera without GPS, its clock an hour off
    assert headers.from_file(tmp_path / "a.jpg") == headers.Facts("2018-05-01T10:00:00")
    _darktable(tmp_path / "a.jpg.xmp", taken="2018:05:01 11:00:00")  # corrected and geotagged
    assert headers.from_file(tmp_path / "a.jpg") == headers.Facts(
        "2018-05-01T11:00:00", 36.5271, -6.2886, rating=3
    )
    colour_image("red").save(tmp_path / "b.png")
    (tmp_path / "b.xmp").write_text(LIGHTROOM, encoding="utf-8")
    assert headers.from_file(tmp_path / "b.png") == headers.Facts(
        "2021-03-02T08:00:00", 48.8584, round(2 + 17 / 60 + 40.2 / 3600, 5)
    )
    _camera_photo(tmp_path / "c.jpg")
    _darktable(tmp_path / "c.jpg.xmp", taken="", lat="", lon="")  # no time, no place: the photo's own
    assert headers.from_file(tmp_path / "c.jpg") == headers.Facts("2018-05-01T10:00:00", rating=3)
    for odd in ("<x:xmpmeta", "not xml at all", "<a>" * 10 + "&undefined;"):
        (tmp_path / "c.jpg.xmp").write_text(odd, encoding="utf-8")
        assert headers.from_file(tmp_path / "c.jpg") == headers.Facts("2018-05-01T10:00:00"), odd


@pytest.mark.parametrize(
    ("latitude", "degrees"),
    [
        ("40,25.0584N", 40.41764),
        ("3,42,7.2S", -(3 + 42 / 60 + 7.2 / 3600)),
        ("40.41764N", 40.41764),  # decimal degrees, as some tools write them
        ("95,0N", None),  # beyond a pole
        ("40,61N", None),  # 61 minutes
        ("40,59,60N", 41.0),  # a rounding's 60 seconds
        ("40,25.1E", None),  # a longitude's hemisphere
        ("40.5,25N", None),
        ("", None),
    ],
)
def test_an_xmp_position_is_read_as_degrees(tmp_path, latitude, degrees):
    _darktable(tmp_path / "a.jpg.xmp", lat=latitude, lon="3,42,7.2W")
    told = xmp.when_and_where(tmp_path / "a.jpg")
    lat, lon = told.lat, told.lon
    if degrees is None:
        assert (lat, lon) == (None, None)  # half a position is none
    else:
        assert (lat, lon) == (pytest.approx(degrees), pytest.approx(-(3 + 42 / 60 + 7.2 / 3600)))


def test_an_edited_sidecar_has_its_photo_s_header_read_again_and_nothing_else(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    _camera_photo(photos / "beach.jpg", "red")
    _camera_photo(photos / "snow.jpg", "blue")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    first = {hit.key: hit.id for hit in Searcher.open(tmp_path / "index", embedder).by_text("red", k=2)}
    _darktable(photos / "beach.jpg.xmp")  # geotagged in darktable since
    plan = plan_build(FolderSource(photos), tmp_path / "index", progress=False)
    assert (plan.changed, plan.retold, plan.unchanged) == ([], ["beach.jpg"], 2)
    assert "sidecar edited, when and where read again: beach.jpg" in plan.report()
    asked = []
    read = headers.from_file
    monkeypatch.setattr(headers, "from_file", lambda path: asked.append(path.name) or read(path))
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.added, summary.updated, summary.reused, summary.unchanged) == (0, 0, 0, 2)
    assert summary.retold == 1 and ", 1 with an edited sidecar read again" in summary.report()
    assert asked == ["beach.jpg"]  # its header alone
    searcher = Searcher.open(tmp_path / "index", embedder)
    hit = searcher.by_query("red near:Cádiz taken:2019", k=1)[0]
    assert (hit.key, hit.id, hit.taken, hit.town) == (
        "beach.jpg",
        first["beach.jpg"],
        "2019-07-14T18:22:05",
        "Cadiz",
    )
    asked.clear()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert asked == []  # read once
    _darktable(photos / "beach.jpg.xmp", taken="2019-08-01T09:00:00")  # edited again: a later day
    os.utime(photos / "beach.jpg.xmp", ns=(1, 1))
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert Searcher.open(tmp_path / "index", embedder).by_text("red", k=1)[0].taken == "2019-08-01T09:00:00"
    (photos / "beach.jpg.xmp").unlink()  # gone: the photo's own header again
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    hit = Searcher.open(tmp_path / "index", embedder).by_text("red", k=1)[0]
    assert (hit.id, hit.taken, hit.town) == (first["beach.jpg"], "2018-05-01T10:00:00", None)
    assert asked == ["beach.jpg", "beach.jpg"]


def _keywords(*tags: str) -> str:
    items = "".join(f"<rdf:li>{tag}</rdf:li>" for tag in tags)
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def test_a_keyword_is_searched_with_tag(tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "2019").mkdir(parents=True)
    colour_image("red").save(photos / "party.png")
    (photos / "party.png.xmp").write_text(_keywords("Ana", "Cumpleaños", "Ana"), encoding="utf-8")
    exported = _keywords("Playa").encode()  # a JPEG exported by Lightroom: its keywords inside it
    colour_image("blue").save(photos / "2019" / "sea.jpg", xmp=exported)
    colour_image("red").save(photos / "other.png")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    listed = searcher.by_query("tag:ana")  # a keyword alone lists its photos
    assert [(hit.key, hit.tags, hit.score) for hit in listed] == [("party.png", ("Ana", "Cumpleaños"), None)]
    assert [hit.key for hit in searcher.by_query('red etiqueta:"cumpleanos"', k=3)] == ["party.png"]
    assert [hit.key for hit in searcher.by_query("red tag:PLAYA", k=3)] == ["2019/sea.jpg"]
    with pytest.raises(BuscadorError, match="no image of this index has the keyword 'nobody'"):
        searcher.by_query("red tag:nobody")
    with pytest.raises(BuscadorError, match="none of the images searched has the keyword 'ana'"):
        searcher.by_query("red tag:ana", within="2019")
    with pytest.raises(BuscadorError, match="more than one keyword"):
        searcher.by_query("tag:ana tag:playa")
    with pytest.raises(BuscadorError, match="names no keyword"):
        searcher.by_query('red tag:""')
    assert split_tag("beach tag:ana_maría") == ("beach", "ana maria", ())
    assert split_tag("beach -tag:Ana -etiqueta:luis tag:Sol") == ("beach", "sol", ("ana", "luis"))
    assert main(["search", str(tmp_path / "index"), "--text", "tag:ana"]) == 0  # a listing: no model
    assert capsys.readouterr().out.rstrip().endswith(", tagged Ana, Cumpleaños)")
    assert main(["search", str(tmp_path / "index"), "--tag", "Cumpleaños", "--paths"]) == 0  # by a flag
    assert capsys.readouterr().out.split() == [str(photos / "party.png")]
    assert searcher.store.manifest["tags"] == {"count": 2, "top": {"Ana": 1, "Cumpleaños": 1, "Playa": 1}}
    assert " · 🏷️ 2: `tag:Ana` · [Ana](?q=tag%3A%22Ana%22) (1) · " in app.index_status(Engine(searcher))
    assert "[Cumpleaños](?q=etiqueta%3A%22Cumplea%C3%B1os%22) (1)" in app.index_status(Engine(searcher), "es")
    assert main(["info", str(tmp_path / "index")]) == 0
    assert "keywords:    2 images have some; Ana (1), Cumpleaños (1), Playa (1)" in capsys.readouterr().out


def _rated(stars: str, *, as_element: bool = False) -> str:
    """A sidecar that rates its photo: darktable's way (an attribute) or Lightroom's (an element)."""
    rating = f"<xmp:Rating>{stars}</xmp:Rating>" if as_element else ""
    attribute = "" if as_element else f' xmp:Rating="{stars}"'
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"{attribute}>{rating}'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def test_a_rating_is_searched_with_rating(tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "2019").mkdir(parents=True)
    _camera_photo(photos / "best.jpg", "red", taken="2019:07:14 10:00:00")
    (photos / "best.jpg.xmp").write_text(_rated("5"), encoding="utf-8")  # darktable
    _camera_photo(photos / "good.jpg", "red", taken="2019:07:13 10:00:00")
    (photos / "good.xmp").write_text(_rated("4", as_element=True), encoding="utf-8")  # Lightroom
    exported = _rated("3").encode()  # a JPEG exported with its rating inside
    colour_image("blue").save(photos / "2019" / "sea.jpg", xmp=exported)
    windows = Image.Exif()
    windows[0x4746] = 2  # rated in Windows' Photos: EXIF's Rating
    colour_image("green").save(photos / "2019" / "field.jpg", exif=windows)
    _camera_photo(photos / "blurred.jpg", "red")
    (photos / "blurred.jpg.xmp").write_text(_rated("-1"), encoding="utf-8")  # rejected
    colour_image("red").save(photos / "unrated.png")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    listed = searcher.by_query("rating:4")  # a rating alone lists its photos, in the order taken
    assert [(hit.key, hit.rating, hit.score) for hit in listed] == [
        ("good.jpg", 4, None),
        ("best.jpg", 5, None),
    ]
    rated = [hit.key for hit in searcher.by_query("red rating:1", k=6)]  # neither rejected nor unrated
    assert sorted(rated[:2]) == ["best.jpg", "good.jpg"]
    assert sorted(rated[2:]) == ["2019/field.jpg", "2019/sea.jpg"]
    assert searcher.by_query("green estrellas:2+", k=6)[0].key == "2019/field.jpg"
    assert len(searcher.by_query("green estrellas:3", k=6)) == 3
    assert [hit.key for hit in searcher.by_query("rating:★★★", within="2019")] == ["2019/sea.jpg"]
    with pytest.raises(BuscadorError, match="none of the images searched is rated 4 stars or more"):
        searcher.by_query("red rating:4", within="2019")
    with pytest.raises(BuscadorError, match="'6' is not a rating"):
        searcher.by_query("red rating:6")
    with pytest.raises(BuscadorError, match="more than one rating"):
        searcher.by_query("rating:4 rating:5")
    assert split_rating("a poster, film rating: PG") == ("a poster, film rating: PG", None)
    assert split_rating("Rating:5+ beach") == ("beach", 5)
    assert searcher.store.manifest["ratings"] == {"5": 1, "4": 1, "3": 1, "2": 1}  # (not the rejected)
    assert " · ⭐ 4: `rating:4` · [5★](?q=rating%3A5) (1) · [4★+](?q=rating%3A4) (2) · " in app.index_status(
        Engine(searcher)
    )
    assert "[3★+](?q=estrellas%3A3) (3)" in app.index_status(Engine(searcher), "es")
    gallery = Handlers(Engine(searcher)).search_text("rating:4", 5, -1.0, False, "", gr.Request())[0]
    assert [caption for _, caption in gallery] == [
        "#1 · good.jpg · 2019-07-13 · ★★★★",
        "#2 · best.jpg · 2019-07-14 · ★★★★★",
    ]
    assert text.error("es", BuscadorError("", "no_rated_among", stars=4)) == (
        "Ninguna de las imágenes buscadas tiene 4 estrellas o más."
    )
    assert main(["search", str(tmp_path / "index"), "--text", "rating:5"]) == 0  # a listing: no model
    assert capsys.readouterr().out.rstrip().endswith(", ★★★★★)")
    assert main(["search", str(tmp_path / "index"), "--rating", "4", "--paths"]) == 0  # the same by a flag
    assert capsys.readouterr().out.split() == [str(photos / "good.jpg"), str(photos / "best.jpg")]
    assert main(["search", str(tmp_path / "index"), "--like", "0", "--rating", "4"]) == 2
    assert (
        "leave out --text, --image, --taken, --near, --tag, --rating and --caption" in capsys.readouterr().err
    )
    assert main(["info", str(tmp_path / "index")]) == 0
    assert "ratings:     4 rated: 5★ (1), 4★ (1), 3★ (1), 2★ (1)" in capsys.readouterr().out
    assert (
        main(["duplicates", str(tmp_path / "index"), "--threshold", "0.99"]) == 0
    )  # which of a burst to keep
    listed = capsys.readouterr().out
    assert "best.jpg  (id " in listed and ", ★★★★★)" in listed and "unrated.png  (id " in listed
    red = next(g for g in find_duplicates(searcher.store, 0.99) if "best.jpg" in {m.key for m in g})
    assert {m.key: m.stars for m in red} == {
        "best.jpg": "★★★★★",
        "good.jpg": "★★★★",
        "blurred.jpg": "",
        "unrated.png": "",
    }
    unrated = tmp_path / "unrated"
    unrated.mkdir()
    colour_image("red").save(unrated / "a.png")
    build_index(FolderSource(unrated), tmp_path / "index2", embedder, progress=False)
    with pytest.raises(BuscadorError, match="no image of this index has a rating"):
        Searcher.open(tmp_path / "index2", embedder).by_query("red rating:1")


@pytest.mark.parametrize("reader", ["4", "5"])  # before keywords were read; before ratings were
def test_an_index_read_before_keywords_or_ratings_reads_its_headers_again_once(tmp_path, reader):
    photos = tmp_path / "photos"
    photos.mkdir()
    colour_image("red").save(photos / "party.png")
    rated = 'rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"'
    (photos / "party.png.xmp").write_text(_keywords("Ana").replace('rdf:about=""', rated), encoding="utf-8")
    exported = _keywords("Luis").replace('rdf:about=""', rated).encode()  # inside the file: no sidecar
    colour_image("blue").save(photos / "export.jpg", xmp=exported)
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    catalog = Catalog(tmp_path / "index" / CATALOG)  # as an older version left it
    catalog.set_facts([("", None, None, None, (), None, "", key) for key in ("party.png", "export.jpg")])
    catalog.set_meta(headers_reader=reader)
    catalog.close()
    said = "2 headers read again, once: this version reads more in them"
    assert said in plan_build(FolderSource(photos), tmp_path / "index", progress=False).report()
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert f"\n{said}\n" in summary.report()
    searcher = Searcher.open(tmp_path / "index", embedder)
    found = {(hit.key, hit.tags, hit.rating) for hit in searcher.by_query("rating:5")}
    assert found == {("party.png", ("Ana",), 5), ("export.jpg", ("Luis",), 5)}
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert "read again" not in summary.report()  # once


def test_an_index_that_does_not_record_keywords_or_ratings_says_to_build_it_again(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    colour_image("red").save(photos / "party.png")
    (photos / "party.png.xmp").write_text(_rated("5"), encoding="utf-8")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    with sqlite3.connect(tmp_path / "index" / CATALOG) as db:  # as a version before them left it
        db.execute("DROP INDEX items_rated")
        db.execute("DROP TRIGGER tags_key_stale")
        db.execute("ALTER TABLE items DROP COLUMN rating")
        db.execute("ALTER TABLE items DROP COLUMN tags_key")
        db.execute("ALTER TABLE items DROP COLUMN tags")
        db.execute("UPDATE meta SET value='4' WHERE name='headers_reader'")
    old = Searcher.open(tmp_path / "index", embedder)
    assert old.by_text("red", k=1)[0].key == "party.png"  # it searches as before
    for query, code in (("rating:4", "ratings_not_read"), ("red tag:Ana", "keywords_not_read")):
        with pytest.raises(BuscadorError, match="build it again") as caught:
            old.by_query(query)
        assert caught.value.code == code
    assert "vuelve a crearlo" in text.error("es", caught.value)
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)  # reads them
    assert Searcher.open(tmp_path / "index", embedder).by_query("rating:4")[0].key == "party.png"


def _located(city: str, country: str = "", *, code: str = "", state: str = "", gps: str = "") -> str:
    """A sidecar whose IPTC location names a city (Lightroom's Location fields), and a GPS position
    if given."""
    said = f'photoshop:City="{city}" photoshop:State="{state}" photoshop:Country="{country}"'
    said += f' Iptc4xmpCore:CountryCode="{code}"'
    if gps:
        lat, lon = gps.split()
        said += f' exif:GPSLatitude="{lat}" exif:GPSLongitude="{lon}"'
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
        'xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/" '
        f'xmlns:exif="http://ns.adobe.com/exif/1.0/" {said}/></rdf:RDF></x:xmpmeta>'
    )


def test_a_photo_without_gps_is_placed_in_the_town_its_iptc_location_names(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    sidecars = {
        "scan.png": _located("Sevilla", "España", code="ES"),  # a scan, its city typed in Lightroom
        "slide.png": _located("Portland", "United States", state="Oregon"),  # the state tells which
        "film.png": _located("Córdoba", "Argentina"),  # a country by name
        "gps.png": _located("Madrid", code="ES", gps="36,31.626N 6,17.316W"),  # GPS wins: Cádiz
        "nowhere.png": _located("Atlantis", code="ES"),  # no such town: no position
    }
    for name, sidecar in sidecars.items():
        colour_image("red").save(photos / name)
        (photos / f"{name}.xmp").write_text(sidecar, encoding="utf-8")
    jpeg = io.BytesIO()
    colour_image("red").save(jpeg, "JPEG")
    # An older Photo Mechanic's: an IPTC record alone, its country's code in ISO's three letters.
    iptc = _with_iptc(jpeg.getvalue(), (90, "Málaga".encode()), (100, b"ESP"), (101, "España".encode()))
    (photos / "press.jpg").write_bytes(iptc)
    assert headers.from_file(photos / "press.jpg").town == "Málaga, ESP"
    assert headers.from_file(photos / "scan.png").town == "Sevilla, ES"
    assert headers.from_file(photos / "gps.png").town == ""
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    towns = {hit.key: hit.place for hit in searcher.by_text("red", k=6)}
    assert towns == {
        "press.jpg": "Málaga, Spain",
        "scan.png": "Sevilla, Spain",  # GeoNames' name
        "slide.png": "Portland, OR, United States",
        "film.png": "Córdoba, Argentina",
        "gps.png": "Cadiz, Spain",
        "nowhere.png": None,
    }
    assert [hit.key for hit in searcher.by_query("near:Sevilla")] == ["scan.png"]


def test_a_minus_leaves_out_a_keyword_or_a_kind_and_refuses_what_cannot_be_left_out(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, colour, tags in (
        ("ana.png", "red", ("Ana",)),
        ("both.png", "red", ("Ana", "Luis")),
        ("none.png", "red", ()),
    ):
        colour_image(colour).save(photos / name)
        if tags:
            (photos / f"{name}.xmp").write_text(_keywords(*tags), encoding="utf-8")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert {hit.key for hit in searcher.by_query("red -tag:luis", k=5)} == {"ana.png", "none.png"}
    assert [hit.key for hit in searcher.by_query("tag:Ana -tag:Luis")] == ["ana.png"]  # alone: a listing
    assert {hit.key for hit in searcher.by_query("-etiqueta:ana", k=5)} == {"none.png"}
    assert len(searcher.by_query("red -is:video", k=5)) == 3  # the photos: no video here
    with pytest.raises(BuscadorError, match="this index holds no video"):
        searcher.by_query("red -is:photo")
    with pytest.raises(BuscadorError, match="every image searched has a keyword left out"):
        searcher.by_query("red tag:ana -tag:ana")
    for negated in ("-taken:2019", "-near:Madrid", "-rating:4", "-fecha:2019"):
        with pytest.raises(BuscadorError, match=f"{negated} cannot be left out") as caught:
            searcher.by_query(f"red {negated}")
    assert "no se puede excluir" in text.error("es", caught.value)
    assert [hit.key for hit in searcher.by_query('red -people -"red car"', k=1)]  # words, as before


def test_a_keyword_search_scans_keywords_as_compared_and_checks_those_an_older_version_changed(tmp_path):
    import numpy as np

    from indexing.catalog import Catalog, Row
    from indexing.tags import fold

    catalog = Catalog(tmp_path / CATALOG)
    rows = [Row(key, key, "f", np.zeros(4, np.float32), b"") for key in ("a.jpg", "b.jpg", "c.jpg", "d.jpg")]
    a, b, c, d = ids = catalog.assign_ids(rows)[0]
    catalog.write(rows, ids)

    def said(key: str, *tags: str) -> tuple:
        return (None, None, None, None, tags, None, None, key)

    def found(tag: str) -> list[int]:
        """`tag:`'s images by the scan, checked against every keyword's ids read (the old way)."""
        scanned = catalog.ids_tagged(fold(tag)).tolist()
        assert scanned == catalog.ids_by_keyword(fold).get(fold(tag), np.empty(0)).tolist()
        return scanned

    catalog.set_facts(
        [said("a.jpg", "Ana María", "Playa"), said("b.jpg", "ANA"), said("c.jpg", "Ana María de la Playa")]
    )
    assert found("ana maria") == [a] and found("Ana") == [b] and found("playa") == [a]
    assert found("maria") == [] and found("ana maría de la playa") == [c]
    # A version before the keys changes keywords: the key goes, and those images are checked as they are.
    catalog._db.execute("UPDATE items SET tags='Luis' WHERE key='b.jpg'")
    catalog._db.execute("UPDATE items SET tags='Gaviota' WHERE key='d.jpg'")
    assert catalog._db.execute("SELECT tags_key FROM items WHERE key='b.jpg'").fetchone() == (None,)
    assert found("ana") == [] and found("luis") == [b] and found("gaviota") == [d]
    catalog.close()
    catalog = Catalog(tmp_path / CATALOG)  # opened for the next build: the keys written again
    assert catalog._db.execute(
        "SELECT tags_key FROM items WHERE key IN ('b.jpg', 'd.jpg') ORDER BY id"
    ).fetchall() == [
        ("\nluis\n",),
        ("\ngaviota\n",),
    ]
    catalog.set_facts([said("b.jpg", "LUIS", "luis")])  # changed in case alone: the same key, found still
    assert found("luis") == [b] and found("gaviota") == [d]
    catalog.close()


def test_the_most_used_keywords_are_counted_from_the_keys_as_folding_every_keyword_counts_them(tmp_path):
    from collections import Counter

    import numpy as np

    from indexing.catalog import Catalog, Row
    from indexing.tags import fold

    catalog = Catalog(tmp_path / CATALOG)
    keys = [f"{i}.jpg" for i in range(9)]
    rows = [Row(key, key, "f", np.zeros(4, np.float32), b"") for key in keys]
    catalog.write(rows, catalog.assign_ids(rows)[0])
    sets = [
        ("Playa", "ana"),
        ("ANA", "Playa"),
        ("Ana",),
        ("Cumpleaños", "Playa", "PLAYA"),
        ("cumpleanos",),
        ("Luis",),
        ("Ana", "Playa"),
        ("Gaviota", "luis"),
    ]
    catalog.set_facts(
        [(None, None, None, None, tags, None, None, key) for key, tags in zip(keys[:8], sets, strict=True)]
    )
    catalog._db.execute("UPDATE items SET tags='Perro\nLUIS' WHERE key='5.jpg'")  # a version before the keys

    def folding_every_keyword(most: int) -> list[tuple[str, int]]:
        """What the count was before the keys: every image's keywords folded, the first image's form shown."""
        tags = [
            t.split("\n")
            for (t,) in catalog._db.execute("SELECT tags FROM items WHERE tags IS NOT NULL ORDER BY id")
        ]
        counts = Counter(key for each in tags for key in {fold(t) for t in each})
        shown: dict[str, str] = {}
        for each in tags:
            for key, tag in {fold(t): t for t in each}.items():
                shown.setdefault(key, tag)
        return [(shown[k], n) for k, n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))[:most]]

    assert catalog._db.execute("SELECT tags_key FROM items WHERE key='5.jpg'").fetchone() == (None,)
    assert catalog.top_tags(3) == (8, [("ana", 4), ("Playa", 4), ("Cumpleaños", 2)])
    assert catalog.top_tags(10) == (8, folding_every_keyword(10))
    expected = folding_every_keyword(10)
    catalog._db.execute("DROP TRIGGER tags_key_stale")
    catalog._db.execute("ALTER TABLE items DROP COLUMN tags_key")  # as a version before the keys left it
    catalog.close()
    old = Catalog(tmp_path / CATALOG, readonly=True)
    assert not old.tags_keyed and old.top_tags(10) == (8, expected)
    old.close()
