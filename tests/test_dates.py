"""Dates taken: read from EXIF headers at build time, and `taken:` periods in queries that search
only the photos of that time."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from indexing import headers
from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.dates import dataset_date, date_in_name, exif_date, local_time, parse_period, split_period
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.store import MANIFEST
from tests.colour_embedder import ColourEmbedder, colour_image
from tests.synthetic import save_as_dataset

# name → (colours, date taken as the camera writes it, or None for a photo without EXIF)
PHOTOS = {
    "red-2019.jpg": (("red",), "2019:07:14 18:22:05"),
    "red-2020.jpg": (("red", "red", "red", "blue"), "2020:12:31 23:59:59"),
    "trips/red-2021.jpg": (("red", "red", "blue"), "2021:03:02 08:00:00"),
    "blue-2021.jpg": (("blue",), "2021:03:01 10:00:00"),
    "red-undated.png": (("red", "red", "red", "red", "green"), None),
}


def _exif(taken: str, tag: int = 0x9003) -> bytes:
    """An EXIF block saying `taken` in `tag` (as bytes: Pillow leaves out an Exif object whose
    top level is empty)."""
    exif = Image.Exif()
    if tag == 0x0132:
        exif[tag] = taken
    else:
        exif.get_ifd(0x8769)[tag] = taken
    return exif.tobytes()


def _save(path: Path, colours: tuple[str, ...], taken: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"exif": _exif(taken)} if taken else {}
    colour_image(*colours).save(path, quality=95, **options)


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for name, (colours, taken) in PHOTOS.items():
        _save(folder / name, colours, taken)
    return folder


@pytest.fixture()
def searcher(photos: Path, tmp_path: Path) -> Searcher:
    build_index(FolderSource(photos), tmp_path / "index", ColourEmbedder(), progress=False)
    return Searcher.open(tmp_path / "index", ColourEmbedder())


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2019", "2019-01-01", "2020-01-01"),
        ("2019-06", "2019-06-01", "2019-07-01"),
        ("2019-12", "2019-12-01", "2020-01-01"),
        ("2020-02-29", "2020-02-29", "2020-03-01"),
        ("2018..2020", "2018-01-01", "2021-01-01"),
        ("2019-2021", "2019-01-01", "2022-01-01"),
        ("2019-06..2019-08", "2019-06-01", "2019-09-01"),
        ("2019/6", "2019-06-01", "2019-07-01"),
        ("..2015", "1826", "2016-01-01"),
        ("2020..", "2020-01-01", "2101"),
    ],
)
def test_a_period_is_a_year_month_day_or_a_range_of_them(text, start, end):
    period = parse_period(text)
    assert (period.start, period.end, period.text) == (start, end, text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "bad_period"),
        ("..", "bad_period"),
        ("2019-", "bad_period"),
        ("summer", "bad_period"),
        ("2019-13", "bad_period"),
        ("2019-02-30", "bad_period"),
        ("19", "bad_period"),
        ("2021..2019", "period_backwards"),
    ],
)
def test_a_text_that_is_not_a_period_is_refused_with_examples(text, code):
    with pytest.raises(BuscadorError) as caught:
        parse_period(text)
    assert caught.value.code == code
    if code == "bad_period":
        assert "taken:2018..2020" in str(caught.value)


def test_a_query_names_its_period_after_taken_date_or_fecha():
    words, period = split_period("a beach Taken:2019 at night")
    assert words == "a beach at night" and period is not None and period.start == "2019-01-01"
    assert split_period("playa fecha:2020-06")[1].end == "2020-07-01"  # type: ignore[union-attr]
    assert split_period("beach -people") == ("beach -people", None)
    assert split_period("mistaken:2019 words")[1] is None  # a word that ends so is a word
    with pytest.raises(BuscadorError, match="more than one period"):
        split_period("taken:2019 beach date:2020")
    with pytest.raises(BuscadorError, match="is not a period"):
        split_period("beach taken:summer")
    assert split_period("a date: dinner by the sea") == ("a date: dinner by the sea", None)


def test_exif_dates_are_read_as_sortable_texts_and_unset_clocks_are_no_date():
    assert exif_date("2019:07:14 18:22:05") == "2019-07-14T18:22:05"
    assert exif_date(b"2019:07:14 18:22:05\x00") == "2019-07-14T18:22:05"
    assert exif_date("2019:07:14") == "2019-07-14T00:00:00"
    for unset in ("0000:00:00 00:00:00", "    :  :     :  :  ", "2019:02:30 10:00:00", "", None, 7):
        assert exif_date(unset) == ""


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("IMG_20190714_182205.jpg", "2019-07-14T18:22:05"),  # Android
        ("PXL_20210302_080000123.jpg", "2021-03-02T08:00:00"),  # Pixel, with milliseconds
        ("IMG-20190714-WA0001.jpg", "2019-07-14T00:00:00"),  # WhatsApp
        ("Screenshot_2019-07-14-18-22-05.png", "2019-07-14T18:22:05"),
        ("Photo 2019-07-14 18.22.05.jpg", "2019-07-14T18:22:05"),
        ("20190714.jpg", "2019-07-14T00:00:00"),
        ("IMG_20190714_250000.jpg", "2019-07-14T00:00:00"),  # no such hour: the day alone
        ("DSC01234.jpg", ""),
        ("IMG_1234.JPG", ""),
        ("holiday 2019-07.jpg", ""),
        ("20191332.jpg", ""),  # no 13th month
        ("VID_20190230_120000.jpg", ""),  # no 30 February
        ("a123201907141.jpg", ""),  # inside a longer number
    ],
)
def test_a_date_in_the_file_name_is_read_as_phones_and_apps_write_it(name, taken):
    assert date_in_name(name) == taken


def taken_from_file(path: Path) -> str | None:
    facts = headers.from_file(path)
    return facts.taken if facts is not None else None


def test_the_date_taken_comes_from_the_header_of_each_kind_of_file(tmp_path: Path):
    img = colour_image("red")
    img.save(tmp_path / "original.jpg", exif=_exif("2019:07:14 18:22:05"))
    assert taken_from_file(tmp_path / "original.jpg") == "2019-07-14T18:22:05"
    img.save(tmp_path / "scan.jpg", exif=_exif("1968:05:01 12:00:00", 0x9004))  # digitised
    assert taken_from_file(tmp_path / "scan.jpg") == "1968-05-01T12:00:00"
    img.save(tmp_path / "edited.webp", exif=_exif("2022:01:02 03:04:05", 0x0132))  # file time alone
    assert taken_from_file(tmp_path / "edited.webp") == "2022-01-02T03:04:05"
    img.save(tmp_path / "png.png", exif=_exif("2020:01:01 00:00:00"))
    assert taken_from_file(tmp_path / "png.png") == "2020-01-01T00:00:00"
    img.save(tmp_path / "tiff.tif", exif=_exif("2018:08:08 08:08:08", 0x0132))
    assert taken_from_file(tmp_path / "tiff.tif") == "2018-08-08T08:08:08"
    img.save(tmp_path / "plain.jpg")
    (tmp_path / "broken.jpg").write_bytes((tmp_path / "original.jpg").read_bytes()[:30])
    (tmp_path / "text.jpg").write_text("not an image")
    for name in ("plain.jpg", "broken.jpg", "text.jpg"):
        assert taken_from_file(tmp_path / name) == ""
    assert taken_from_file(tmp_path / "missing.jpg") is None  # not "no date": unknown, read again later
    # No EXIF (WhatsApp strips it): the name's date; the EXIF's first where both are.
    img.save(tmp_path / "IMG-20200505-WA0003.jpg")
    assert taken_from_file(tmp_path / "IMG-20200505-WA0003.jpg") == "2020-05-05T00:00:00"
    img.save(tmp_path / "IMG_20200505_101010.jpg", exif=_exif("2019:07:14 18:22:05"))
    assert taken_from_file(tmp_path / "IMG_20200505_101010.jpg") == "2019-07-14T18:22:05"


def test_a_period_in_the_query_searches_the_photos_taken_then_alone(searcher):
    assert [h.key for h in searcher.by_text("red", k=5)][:2] == ["red-2019.jpg", "red-undated.png"]
    hits = searcher.by_text("red taken:2020..2021", k=5)
    assert [h.key for h in hits] == ["red-2020.jpg", "trips/red-2021.jpg", "blue-2021.jpg"]
    assert [h.taken for h in hits] == ["2020-12-31T23:59:59", "2021-03-02T08:00:00", "2021-03-01T10:00:00"]
    assert [h.key for h in searcher.by_text("blue taken:2021-03-02", k=5)] == ["trips/red-2021.jpg"]
    # A period and a folder together; an image's words and its period.
    assert [h.key for h in searcher.by_text("red taken:2021", k=5, within="trips")] == ["trips/red-2021.jpg"]
    like = searcher.by_query("taken:2019", image=colour_image("blue"), k=5)
    assert [h.key for h in like] == ["red-2019.jpg"]
    undated = searcher.by_text("green", k=1)[0]
    assert undated.key == "red-undated.png" and undated.taken is None
    assert undated.as_dict()["taken"] is None


def test_a_period_that_finds_nothing_says_what_the_index_holds(searcher):
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("red taken:1999", k=5)
    assert caught.value.code == "no_taken"
    assert caught.value.params == {"period": "1999", "first": "2019-07-14", "last": "2021-03-02"}
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("red taken:2019", k=5, within="trips")
    assert caught.value.code == "no_taken_in_folder"
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("taken:2019 -people", k=5)
    assert caught.value.code == "negatives_only"


def test_a_period_alone_lists_its_photos_in_the_order_they_were_taken(searcher):
    hits = searcher.by_text("taken:2020..2021", k=5)
    assert [(h.rank, h.key, h.score) for h in hits] == [
        (1, "red-2020.jpg", None),  # 2020-12-31
        (2, "blue-2021.jpg", None),  # 2021-03-01
        (3, "trips/red-2021.jpg", None),  # 2021-03-02
    ]
    assert [(h.rank, h.key) for h in searcher.by_text("taken:2020..2021", k=2, offset=1)] == [
        (2, "blue-2021.jpg"),
        (3, "trips/red-2021.jpg"),
    ]
    assert [h.key for h in searcher.by_text("taken:2021", k=5, within="trips")] == ["trips/red-2021.jpg"]
    assert searcher.by_text("taken:2020..2021", k=5, offset=3) == []  # past the last
    for query, within, code in [
        ("taken:1999", "", "no_taken"),
        ("taken:2019", "trips", "no_taken_in_folder"),
        ("taken:2019", "beach", "empty_folder"),
    ]:
        with pytest.raises(BuscadorError) as caught:
            searcher.by_text(query, k=5, within=within)
        assert caught.value.code == code


def test_the_manifest_says_how_many_photos_are_dated_and_when(searcher):
    manifest = json.loads((searcher.store.dir / MANIFEST).read_text())
    assert manifest["dates_taken"] == {
        "count": 4,
        "first": "2019-07-14T18:22:05",
        "last": "2021-03-02T08:00:00",
        "years": {"2019": 1, "2020": 1, "2021": 2},
    }


def test_a_changed_photo_has_its_date_read_again_and_the_others_are_not_read(photos, tmp_path, monkeypatch):
    out = tmp_path / "index"
    build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    read: list[str] = []
    monkeypatch.setattr(
        "indexing.headers.from_file",
        lambda path: read.append(path.name) or headers.Facts("2023-05-05T05:05:05"),
    )
    _save(photos / "red-2019.jpg", ("red",), "2023:05:05 05:05:05")
    build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    assert read == ["red-2019.jpg"]
    hits = Searcher.open(out, ColourEmbedder()).by_text("red taken:2023", k=5)
    assert [h.key for h in hits] == ["red-2019.jpg"]


def test_a_photo_that_cannot_be_opened_now_has_its_date_read_by_a_later_build(photos, tmp_path, monkeypatch):
    out = tmp_path / "index"
    readable = headers.from_file
    # As when the disk holding it goes away between the listing and the date pass.
    monkeypatch.setattr(headers, "from_file", lambda path: None if "2019" in path.name else readable(path))
    build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    with pytest.raises(BuscadorError, match="was taken in 2019;"):
        Searcher.open(out, ColourEmbedder()).by_text("red taken:2019", k=5)
    monkeypatch.setattr(headers, "from_file", readable)
    build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)  # nothing changed but that
    hits = Searcher.open(out, ColourEmbedder()).by_text("red taken:2019", k=5)
    assert [h.key for h in hits] == ["red-2019.jpg"]


def test_an_index_built_before_dates_were_read_says_so_and_its_next_build_reads_them(photos, tmp_path):
    out = tmp_path / "index"
    build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    with sqlite3.connect(out / CATALOG) as db:  # as an older version left it
        db.execute("DROP INDEX items_taken")
        db.execute("ALTER TABLE items DROP COLUMN taken")
    old = Searcher.open(out, ColourEmbedder())
    assert old.by_text("red", k=1)[0].taken is None  # it searches as before
    for query in ("red taken:2019", "taken:2019"):
        with pytest.raises(BuscadorError) as caught:
            old.by_text(query, k=5)
        assert caught.value.code == "dates_not_read"
    summary = build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    assert (summary.added, summary.unchanged) == (0, len(PHOTOS))  # nothing embedded again
    hits = Searcher.open(out, ColourEmbedder()).by_text("red taken:2019", k=5)
    assert [h.key for h in hits] == ["red-2019.jpg"]


def test_an_index_of_photos_without_dates_says_none_is_dated(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    colour_image("red").save(folder / "red.png")
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    assert "dates_taken" not in json.loads((tmp_path / "index" / MANIFEST).read_text())
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("red taken:2019", k=5)
    assert caught.value.code == "no_dates"


def test_the_command_line_searches_a_period_and_shows_dates(
    photos, tmp_path, tiny_model, capsys, monkeypatch
):
    from indexing.cli import main

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    out = tmp_path / "index"
    assert main(["build", str(photos), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--text", "a photo", "--taken", "2021", "-k", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[2] for line in lines) == [
        str(photos / "blue-2021.jpg"),
        str(photos / "trips/red-2021.jpg"),
    ]
    assert all(re.search(r"taken 2021-03-0[12]\)$", line) for line in lines)
    image = str(photos / "red-2020.jpg")
    assert main(["search", str(out), "--image", image, "--taken", "..2019", "--paths"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(photos / "red-2019.jpg")]
    assert main(["search", str(out), "--taken", "2020..2021"]) == 0  # a period alone: in date order
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines] == [
        str(photos / "red-2020.jpg"),
        str(photos / "blue-2021.jpg"),
        str(photos / "trips/red-2021.jpg"),
    ]
    assert lines[0].split()[:2] == ["1", "—"]
    assert main(["search", str(out), "--text", "a photo taken:2019", "--taken", "2020"]) == 2
    assert "more than one period" in capsys.readouterr().err
    assert main(["search", str(out), "--text", "a photo", "--taken", "last summer"]) == 2
    assert "'last summer' is not a period" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert info["dates"].strip().startswith("4 images say when they were taken, 2019-07-14 to 2021-03-02")
    assert info["years"].strip() == "2019 (1), 2020 (1), 2021 (2)"


def test_the_page_shows_each_result_s_date_and_says_why_a_period_finds_nothing(searcher):
    import gradio as gr

    import app
    from ui.handlers import Engine, Handlers

    handlers = Handlers(Engine(searcher))
    # The index's line under Options says when its photos were taken and how to search a period.
    line = "· 📅 2019-07-14 – 2021-03-02: `taken:2021` · [2019](?q=taken%3A2019) (1) · "
    assert line + "[2020](?q=taken%3A2020) (1) · [2021](?q=taken%3A2021) (2)" in app.index_status(
        handlers.engine
    )
    assert "`fecha:2021` · [2019](?q=fecha%3A2019) (1)" in app.index_status(handlers.engine, "es")
    assert handlers.info(gr.Request())["dates_taken"]["count"] == 4  # and to programs
    gallery, hits, _, link = handlers.search_text("red taken:2019", 5, -1.0, False, "", gr.Request())
    assert [caption for _, caption in gallery] == ["#1 · 1.0000 · red-2019.jpg · 2019-07-14"]
    assert hits[0]["taken"] == "2019-07-14T18:22:05" and "taken%3A2019" in link
    # A period alone: its photos in date order, no score; More results goes on in that order.
    gallery, hits, _, _ = handlers.search_text("taken:2020..2021", 2, 0.0, True, "", gr.Request())
    assert [caption for _, caption in gallery] == [
        "#1 · red-2020.jpg · 2020-12-31",
        "#2 · blue-2021.jpg · 2021-03-01",
    ]
    last = {
        "kind": "text",
        "query": "taken:2020..2021",
        "k": 2,
        "min_score": 0.0,
        "collapse": True,
        "within": "",
    }
    gallery, hits, _ = handlers.more_results(last, hits, gr.Request())
    assert [caption for _, caption in gallery][2:] == ["#3 · trips/red-2021.jpg · 2021-03-02"]
    assert hits[2]["score"] is None
    undated = handlers.search_text("green", 1, -1.0, False, "", gr.Request())[0]
    assert undated[0][1].endswith(" · red-undated.png")  # no date to show
    with pytest.raises(gr.Error, match="its dates run from 2019-07-14 to 2021-03-02"):
        handlers.search_text("red taken:1999", 5, -1.0, False, "", gr.Request())


def test_a_period_every_photo_was_taken_in_searches_the_whole_index(photos, tmp_path, monkeypatch):
    (photos / "red-undated.png").unlink()  # every photo left says when it was taken
    build_index(FolderSource(photos), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    subsets = []
    search = searcher.store.search

    def searched(queries, k, *, only=None):
        subsets.append(only)
        return search(queries, k, only=only)

    monkeypatch.setattr(searcher.store, "search", searched)
    assert len(searcher.by_text("blue taken:2020..2021", k=5)) == 3
    assert len(searcher.by_text("blue taken:2019..2021", k=5)) == 4
    assert len(subsets[0].ids) == 3 and subsets[1] is None  # all four: no selector


def test_a_dataset_s_images_keep_their_dates_taken(photos, tmp_path):
    from indexing.sources import DatasetSource

    save_as_dataset(photos, tmp_path / "ds")
    source = DatasetSource(str(tmp_path / "ds"), image_column="img")
    build_index(source, tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    hits = searcher.by_text("red taken:2020..2021", k=5)
    assert [h.label for h in hits] == [
        "train[2] red-2020.jpg",
        "train[4] red-2021.jpg",
        "train[0] blue-2021.jpg",
    ]
    assert hits[0].taken == "2020-12-31T23:59:59"
    assert json.loads((tmp_path / "index" / MANIFEST).read_text())["dates_taken"]["count"] == 4


@pytest.mark.parametrize(
    ("value", "taken"),
    [
        ("2010-07-04 15:31:06.0", "2010-07-04T15:31:06"),  # YFCC's date_taken
        ("2019:07:14 18:22:05", "2019-07-14T18:22:05"),
        ("2019-07-14", "2019-07-14T00:00:00"),
        (__import__("datetime").datetime(2019, 7, 14, 18, 22, 5), "2019-07-14T18:22:05"),
        (__import__("datetime").date(2019, 7, 14), "2019-07-14T00:00:00"),
        (1563128525, "2019-07-14T18:22:05Z"),  # Unix seconds: UTC, until a place gives its zone
        ("unknown", ""),
        (None, ""),
        (True, ""),
        (10**20, ""),
    ],
)
def test_a_dataset_s_date_column_may_hold_dates_texts_or_unix_seconds(value, taken):
    assert dataset_date(value) == taken


@pytest.mark.parametrize(
    ("utc", "zone", "local"),
    [
        ("2019-07-14T16:22:05Z", "Europe/Madrid", "2019-07-14T18:22:05"),  # summer time
        ("2019-01-14T16:22:05Z", "Europe/Madrid", "2019-01-14T17:22:05"),
        ("2019-07-15T01:30:00Z", "America/New_York", "2019-07-14T21:30:00"),  # the evening before
        ("2019-07-14T16:22:05Z", "Nowhere/Else", "2019-07-14T16:22:05Z"),  # a zone not known: UTC
        ("2019-07-14T16:22:05", "Europe/Madrid", "2019-07-14T16:22:05"),  # local already
    ],
)
def test_a_utc_time_is_made_the_local_time_of_its_place(utc, zone, local):
    assert local_time(utc, zone) == local


def test_a_dataset_s_date_column_says_when_its_images_were_taken(
    photos, tmp_path, capsys, tiny_model, monkeypatch
):
    import datasets

    from indexing.cli import main
    from indexing.sources import DatasetSource

    undated = sorted(path for path in photos.rglob("*.png"))[0].read_bytes()  # no EXIF
    when = ["2001-02-03 04:05:06.0", "", None]
    rows = {"img": [{"bytes": undated, "path": "x.png"}] * 3, "when": when}
    datasets.Dataset.from_dict(
        rows, features=datasets.Features({"img": datasets.Image(), "when": datasets.Value("string")})
    ).save_to_disk(tmp_path / "ds")
    source = DatasetSource(str(tmp_path / "ds"), image_column="img", date_column="when")
    build_index(source, tmp_path / "index", ColourEmbedder(), progress=False)
    hits = Searcher.open(tmp_path / "index", ColourEmbedder()).by_text("green taken:2001", k=5)
    assert [(h.key, h.taken) for h in hits] == [("train/0", "2001-02-03T04:05:06")]
    # A changed date updates its row, embedding nothing again.
    datasets.Dataset.from_dict(rows | {"when": ["2001-02-03", "2002-01-01", None]}).save_to_disk(
        tmp_path / "ds2"
    )
    again = DatasetSource(str(tmp_path / "ds2"), image_column="img", date_column="when")
    summary = build_index(
        again, tmp_path / "index", ColourEmbedder(), progress=False, replace=True
    )  # saved apart
    assert (summary.updated, summary.reused) == (2, 2)
    hits = Searcher.open(tmp_path / "index", ColourEmbedder()).by_text("green taken:2001..2002", k=5)
    assert sorted((h.key, h.taken) for h in hits) == [  # the same image thrice: equal scores
        ("train/0", "2001-02-03T00:00:00"),
        ("train/1", "2002-01-01T00:00:00"),
    ]
    # The command line names a missing column, and keeps the option for datasets.
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    assert (
        main(
            [
                "build",
                "--dataset",
                str(tmp_path / "ds"),
                "--date-column",
                "date",
                "--out",
                str(tmp_path / "i2"),
            ]
        )
        == 2
    )
    assert "no column 'date'" in capsys.readouterr().err
    assert main(["build", str(photos), "--date-column", "when", "--out", str(tmp_path / "i3")]) == 2
    assert "are for datasets" in capsys.readouterr().err


def test_browser_a_year_under_options_lists_its_photos_in_this_tab(searcher, browser):
    from tests.test_app import _captions, _follow_index_link, opened
    from ui.startup import Engine

    with opened(Engine(searcher), browser) as (page, url):
        page.goto(url)
        page.get_by_text("a cup of coffee", exact=True).wait_for()
        _follow_index_link(page, "2021", "taken:2021")
        assert page.url == url + "?q=taken%3A2021&k=12"  # in this tab (the address bar follows)
        assert len(page.context.pages) == 1
        assert _captions(page) == ["#1 · blue-2021.jpg · 2021-03-01", "#2 · trips/red-2021.jpg · 2021-03-02"]


def test_an_index_with_one_dated_photo_says_so_in_the_singular(tmp_path, capsys):
    import app
    from indexing.cli import main
    from ui.handlers import Engine

    _save(tmp_path / "photos" / "dated.jpg", ("red",), "2019:07:14 18:22:05")
    _save(tmp_path / "photos" / "undated.jpg", ("blue",), None)
    build_index(FolderSource(tmp_path / "photos"), tmp_path / "index", ColourEmbedder(), progress=False)
    assert main(["info", str(tmp_path / "index")]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert info["dates"].strip().startswith("1 image says when it was taken, on 2019-07-14 (search")
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    assert " · 📅 2019-07-14: `taken:2019` · [2019]" in app.index_status(Engine(searcher))  # the page too
