"""Google Takeout's sidecars: found by Takeout's naming rules, and read for what a photo's own
header does not say."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from indexing import headers, takeout
from indexing.build import build_index
from indexing.catalog import CATALOG, Catalog
from indexing.search import Searcher
from indexing.sources import FolderSource
from tests.colour_embedder import ColourEmbedder, colour_image

# 2019-07-14T16:22:05 UTC, in Cádiz
SAID = {"photoTakenTime": {"timestamp": "1563121325"}, "geoData": {"latitude": 36.5271, "longitude": -6.2886}}


def _sidecar(folder: Path, name: str, facts: dict | None = None) -> None:
    (folder / name).write_text(json.dumps({"title": "x", **(facts or SAID)}), encoding="utf-8")


def _headers_read(monkeypatch) -> list[str]:
    """The names of the files whose headers are read from now on, in the order they are."""
    asked: list[str] = []
    read = headers.from_file
    monkeypatch.setattr(headers, "from_file", lambda path: asked.append(path.name) or read(path))
    return asked


def test_a_sidecar_is_found_by_takeout_s_names(tmp_path):
    cases = {
        "IMG_1234.jpg": "IMG_1234.jpg.json",
        "IMG_2000.jpg": "IMG_2000.jpg.supplemental-metadata.json",  # Takeout since 2024
        # the name cut to 51 characters
        "PXL_20230501_123456789.NIGHT.jpg": "PXL_20230501_123456789.NIGHT.jpg.supplemental-.json",
        "IMG_3000(1).jpg": "IMG_3000.jpg(1).json",  # a second photo of one name
        "IMG_4000-edited.jpg": "IMG_4000.jpg.json",  # an edited copy: its original's
    }
    for photo, side in cases.items():
        (tmp_path / photo).write_bytes(b"")
        _sidecar(tmp_path, side)
        assert takeout.sidecar(tmp_path / photo) == tmp_path / side, photo
        assert len(side) <= takeout.MOST_CHARS
    (tmp_path / "alone.jpg").write_bytes(b"")
    assert takeout.sidecar(tmp_path / "alone.jpg") is None


def test_a_sidecar_says_what_the_photo_does_not(tmp_path):
    colour_image("red").save(tmp_path / "scan.png")  # no EXIF, no date in its name
    _sidecar(tmp_path, "scan.png.json")  # in UTC: local once the build knows the place's time zone
    assert headers.from_file(tmp_path / "scan.png") == headers.Facts("2019-07-14T16:22:05Z", 36.5271, -6.2886)

    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2018:05:01 10:00:00"  # a camera without GPS
    colour_image("red").save(tmp_path / "camera.jpg", exif=exif)
    _sidecar(tmp_path, "camera.jpg.json")
    assert headers.from_file(tmp_path / "camera.jpg") == headers.Facts(
        "2018-05-01T10:00:00", 36.5271, -6.2886
    )

    colour_image("red").save(tmp_path / "IMG-20200101-WA0001.jpg")  # WhatsApp's: its name's date first
    _sidecar(
        tmp_path,
        "IMG-20200101-WA0001.jpg.json",
        {"photoTakenTime": {"timestamp": "1563121325"}, "geoData": {"latitude": 0.0, "longitude": 0.0}},
    )
    assert headers.from_file(tmp_path / "IMG-20200101-WA0001.jpg") == headers.Facts(
        "2020-01-01T00:00:00"
    )  # 0, 0: none

    colour_image("red").save(tmp_path / "odd.png")
    (tmp_path / "odd.png.json").write_text("[1, 2", encoding="utf-8")
    assert headers.from_file(tmp_path / "odd.png") == headers.Facts()


def test_a_takeout_folder_is_searched_by_when_and_where(tmp_path):
    photos = tmp_path / "Takeout" / "Google Photos" / "Photos from 2019"
    photos.mkdir(parents=True)
    colour_image("red").save(photos / "beach.png")
    _sidecar(photos, "beach.png.json")
    _sidecar(photos.parent, "metadata.json", {"title": "an album"})  # Takeout's album files: no image
    embedder = ColourEmbedder()
    summary = build_index(FolderSource(tmp_path / "Takeout"), tmp_path / "index", embedder, progress=False)
    assert (summary.count, summary.skipped) == (1, [])
    hit = Searcher.open(tmp_path / "index", embedder).by_query("red taken:2019 near:Cádiz", k=1)[0]
    assert (hit.key, hit.taken, hit.town) == (
        "Google Photos/Photos from 2019/beach.png",
        "2019-07-14T18:22:05",  # 16:22:05 UTC, in Cádiz: summer time in Spain
        "Cadiz",
    )


def test_an_index_read_before_sidecars_were_reads_again_once_what_its_photos_did_not_say(
    tmp_path, monkeypatch
):
    photos = tmp_path / "photos"
    photos.mkdir()
    colour_image("red").save(photos / "beach.png")
    colour_image("blue").save(photos / "IMG_20200101_120000.png")  # dated by its name, no position
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    _sidecar(photos, "beach.png.json")  # as an index built by a version before sidecars found them
    catalog = Catalog(tmp_path / "index" / CATALOG)
    catalog.set_meta(headers_reader="1")
    catalog.close()
    asked = _headers_read(monkeypatch)
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert sorted(asked) == ["IMG_20200101_120000.png", "beach.png"]  # what said nothing, once
    hit = Searcher.open(tmp_path / "index", embedder).by_text("red", k=1)[0]
    assert (hit.key, hit.taken, hit.town) == ("beach.png", "2019-07-14T18:22:05", "Cadiz")
    asked.clear()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert asked == []


def test_a_takeout_photo_dated_in_utc_by_an_older_version_gets_its_local_time_once(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    colour_image("red").save(photos / "beach.png")
    _sidecar(photos, "beach.png.json")
    colour_image("blue").save(photos / "IMG_20200101_120000.png")  # dated by its name, placed by hand:
    _sidecar(photos, "IMG_20200101_120000.png.json")  # its sidecar is looked at, and read once more
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    catalog = Catalog(tmp_path / "index" / CATALOG)  # as the version before kept it: UTC, unmarked
    catalog.set_facts([("2019-07-14T16:22:05", 36.5271, -6.2886, None, (), None, "", "beach.png")])
    catalog.set_meta(headers_reader="3")
    catalog.close()
    asked = _headers_read(monkeypatch)
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert sorted(asked) == ["IMG_20200101_120000.png", "beach.png"]
    assert Searcher.open(tmp_path / "index", embedder).by_text("red", k=1)[0].taken == "2019-07-14T18:22:05"
    asked.clear()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert asked == []  # once


def test_the_people_named_in_google_photos_are_keywords_and_a_favourite_has_5_stars(tmp_path, monkeypatch):
    photos = tmp_path / "Takeout" / "Google Photos" / "Photos from 2019"
    photos.mkdir(parents=True)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:07:14 18:22:05"  # its own date: the sidecar was not needed for it
    colour_image("red").save(photos / "party.jpg", exif=exif)
    named = {"people": [{"name": "Ana  García"}, {"name": ""}, {"name": "Luis"}, {"name": "Ana García"}, "x"]}
    _sidecar(photos, "party.jpg.supplemental-metadata.json", SAID | named | {"favorited": True})
    colour_image("blue").save(photos / "sea.png")
    _sidecar(photos, "sea.png.json")  # no one named
    assert headers.from_file(photos / "party.jpg").tags == ("Ana García", "Luis")
    assert (headers.from_file(photos / "party.jpg").rating, headers.from_file(photos / "sea.png").rating) == (
        5,
        None,
    )
    embedder = ColourEmbedder()
    build_index(FolderSource(tmp_path / "Takeout"), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert [hit.key for hit in searcher.by_query("tag:luis")] == ["Google Photos/Photos from 2019/party.jpg"]
    assert searcher.by_query('blue etiqueta:"ana garcia"', k=2)[0].tags == ("Ana García", "Luis")
    assert [hit.key for hit in searcher.by_query("rating:5")] == ["Google Photos/Photos from 2019/party.jpg"]
    # An index read before people were: its photos with a Takeout sidecar are read again, once.
    catalog = Catalog(tmp_path / "index" / CATALOG)
    catalog.set_facts(
        [
            ("2019-07-14T18:22:05", None, None, None, (), None, "", f"Google Photos/Photos from 2019/{n}")
            for n in ("party.jpg", "sea.png")
        ]
    )
    catalog.set_meta(headers_reader="6")
    catalog.close()
    asked = _headers_read(monkeypatch)
    build_index(FolderSource(tmp_path / "Takeout"), tmp_path / "index", embedder, progress=False)
    assert sorted(asked) == ["party.jpg", "sea.png"]
    assert Searcher.open(tmp_path / "index", embedder).by_query("tag:Luis")[0].tags == ("Ana García", "Luis")
    asked.clear()
    build_index(FolderSource(tmp_path / "Takeout"), tmp_path / "index", embedder, progress=False)
    assert asked == []  # once
