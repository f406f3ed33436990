"""Places: GPS positions read from EXIF headers at build time, each named by its nearest town, and
`near:` in queries that search only the photos taken there."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexing import headers
from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.errors import BuscadorError
from indexing.places import gazetteer, split_place
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.store import MANIFEST
from tests.colour_embedder import ColourEmbedder, colour_image
from tests.synthetic import save_as_dataset

# Degrees, minutes, seconds of a few places: (lat ref, lat, lon ref, lon).
SOL = ("N", (40.0, 25.0, 0.6), "W", (3.0, 42.0, 12.0))  # Puerta del Sol, Madrid
ALCALA = ("N", (40.0, 28.0, 55.0), "W", (3.0, 21.0, 52.0))  # Alcalá de Henares, 27 km from Sol
CADIZ = ("N", (36.0, 31.0, 45.0), "W", (6.0, 17.0, 19.0))
BROOKLYN = ("N", (40.0, 40.0, 42.0), "W", (73.0, 56.0, 39.0))
SUVA = ("S", (18.0, 8.0, 31.0), "E", (178.0, 26.0, 28.0))  # Fiji, by the 180th meridian
# name → (colours, where it was taken, or None for a photo without GPS)
PHOTOS = {
    "red-sol.jpg": (("red",), SOL),
    "red-alcala.jpg": (("red", "red", "red", "blue"), ALCALA),
    "trips/red-cadiz.jpg": (("red", "red", "blue"), CADIZ),
    "trips/blue-brooklyn.jpg": (("blue",), BROOKLYN),
    "red-nowhere.jpg": (("red", "red", "red", "red", "green"), None),
}


def _exif(where: tuple | None, taken: str | None = None) -> bytes:
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    if where:
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2], gps[3], gps[4] = where
    return exif.tobytes()


def _save(path: Path, colours: tuple[str, ...], where: tuple | None, taken: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour_image(*colours).save(path, quality=95, exif=_exif(where, taken))


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for name, (colours, where) in PHOTOS.items():
        _save(folder / name, colours, where)
    return folder


@pytest.fixture()
def searcher(photos: Path, tmp_path: Path) -> Searcher:
    build_index(FolderSource(photos), tmp_path / "index", ColourEmbedder(), progress=False)
    return Searcher.open(tmp_path / "index", ColourEmbedder())


def test_the_position_comes_from_the_gps_header_and_nonsense_is_none(tmp_path: Path):
    _save(tmp_path / "sol.jpg", ("red",), SOL, "2019:07:14 18:22:05")
    facts = headers.from_file(tmp_path / "sol.jpg")
    assert facts is not None
    assert (facts.taken, facts.lat, facts.lon) == ("2019-07-14T18:22:05", 40.41683, -3.70333)
    _save(tmp_path / "suva.webp", ("red",), SUVA)
    assert headers.from_bytes((tmp_path / "suva.webp").read_bytes()) == headers.Facts(
        "", -18.14194, 178.44111
    )
    for name, where in [
        ("no-fix.jpg", ("N", (0.0, 0.0, 0.0), "E", (0.0, 0.0, 0.0))),  # a receiver without a fix
        ("too-far.jpg", ("N", (91.0, 0.0, 0.0), "E", (3.0, 0.0, 0.0))),
        ("no-hemisphere.jpg", ("X", (40.0, 0.0, 0.0), "E", (3.0, 0.0, 0.0))),
        ("sixty-one-minutes.jpg", ("N", (40.0, 61.0, 0.0), "E", (3.0, 0.0, 0.0))),
    ]:
        _save(tmp_path / name, ("red",), where)
        assert headers.from_file(tmp_path / name) == headers.Facts(), name
    _save(tmp_path / "rounded.jpg", ("red",), ("N", (40.0, 23.0, 60.0), "W", (3.0, 42.0, 0.0)))  # as exiftool
    assert headers.from_file(tmp_path / "rounded.jpg") == headers.Facts("", 40.4, -3.7)  # writes 40.4, -3.7
    (tmp_path / "text.jpg").write_text("not an image")
    assert headers.from_file(tmp_path / "text.jpg") == headers.Facts()


def test_a_place_is_a_town_or_a_country_by_any_of_their_names():
    towns = gazetteer()
    assert [n.name for n in towns.find("Madrid")][:2] == ["Madrid, Spain", "Madrid, Colombia"]
    assert towns.find("madrid")[0].name == "Madrid, Spain"  # case, accents and dashes alike
    assert towns.find("Leganes")[0].name == "Leganés, Spain"
    assert towns.find("Londres")[0].name == "London, United Kingdom"  # its name in Spanish
    assert towns.find("東京")[0].name == "Tokyo, Japan"  # in any script
    assert towns.find("Москва")[0].name == "Moscow, Russia"
    assert towns.find("Αθήνα")[0].name == "Athens, Greece"
    assert towns.find("London, Canada")[0].name == "London, Canada"
    assert towns.find("London,ca")[0].name == "London, Canada"
    assert towns.find("London, CAN")[0].name == "London, Canada"  # ISO's three letters (IPTC's)
    assert [n.name for n in towns.find("ESP")] == ["Spain"]
    # A state of the US after the comma, by its name or its postal code.
    portland = towns.find("Portland, Oregon")[0]
    assert (portland.name, round(portland.lon)) == ("Portland, OR, United States", -123)  # its state too
    assert round(towns.find("Portland, ME")[0].lon) == -70  # Maine, not Montenegro
    assert round(towns.find("San Diego, CA")[0].lon) == -117  # California: Canada has none
    assert round(towns.find("Springfield, IL")[0].lon) == -90  # Illinois, not Israel
    assert round(towns.find("Kansas City, Kansas")[0].lon) == round(towns.find("Kansas City, KS")[0].lon)
    assert towns.find("Kansas City, KS")[0].lat != towns.find("Kansas City, MO")[0].lat
    assert towns.find("Portland, OR, US")[0].lon == portland.lon  # as the manifest's towns write it
    spain = towns.find("Spain")[0]
    assert (spain.name, spain.country, spain.lat) == ("Spain", "ES", None)
    assert towns.find("ES")[0].name == "Spain"
    assert towns.find("Netherlands")[0].name == "The Netherlands"
    assert towns.find("Países Bajos")[0].name == "The Netherlands"  # in Spanish
    assert towns.find("England")[0].name == "United Kingdom"  # and as people call them
    assert towns.find("Córdoba, España")[0].name == "Córdoba, Spain"
    assert towns.find("LA")[0].name == "Laos"  # a code in capitals is a country
    with pytest.raises(BuscadorError) as caught:
        towns.find("Spain", 5.0)
    assert caught.value.code == "country_radius"  # a distance is for towns
    with pytest.raises(BuscadorError) as caught:
        towns.find("Qwertyville")
    assert caught.value.code == "unknown_place"
    with pytest.raises(BuscadorError) as caught:
        towns.find("London, Narnia")
    assert caught.value.code == "unknown_country"
    with pytest.raises(BuscadorError) as caught:
        towns.find("x" * 5000)  # a pasted paragraph is quoted cut short
    assert caught.value.params["place"] == "x" * 100 + "…" and len(str(caught.value)) < 300


def test_near_is_read_from_the_query_with_quotes_or_underscores():
    assert split_place("beach near:Cádiz") == ("beach", "Cádiz", None)  # the town's own reach
    assert split_place('near:"New York" at night') == ("at night", "New York", None)
    assert split_place("cerca:nueva_york") == ("", "nueva york", None)
    assert split_place("a place: home") == ("a place: home", None, None)
    assert split_place("beach near:Madrid~5km") == ("beach", "Madrid", 5.0)
    assert split_place('near:"New York"~2,5KM') == ("", "New York", 2.5)
    with pytest.raises(BuscadorError, match="more than one place"):
        split_place("near:Madrid near:Paris")
    for far in ("~5", "~5miles", "~0km", "~5000km"):
        with pytest.raises(BuscadorError) as caught:
            split_place(f"near:Madrid{far}")
        assert caught.value.code == "bad_radius"


def test_a_build_names_each_photos_town_and_the_manifest_counts_the_countries(searcher, tmp_path):
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert manifest["places"] == {
        "count": 4,
        "countries": {"ES": 3, "US": 1},
        "towns": {"Alcalá de Henares, ES": 1, "Cadiz, ES": 1, "Madrid, ES": 1, "New York City, NY, US": 1},
        "naming": "cities-3",
    }
    hits = {hit.key: hit for hit in searcher.by_text("red", k=5)}
    assert hits["red-sol.jpg"].place == "Madrid, Spain"
    assert hits["red-alcala.jpg"].place == "Alcalá de Henares, Spain"
    assert hits["trips/red-cadiz.jpg"].place == "Cadiz, Spain"
    assert hits["red-nowhere.jpg"].place is None
    # Its nearest town is Bushwick, one of the districts GeoNames counts as towns: its city's name.
    assert hits["trips/blue-brooklyn.jpg"].as_dict()["place"] == "New York City, NY, United States"


def test_near_searches_the_photos_taken_around_a_town_or_in_a_country(searcher):
    # The reddest photo of all is the one without a place: near: leaves it out.
    assert [h.key for h in searcher.by_text("red near:Madrid", k=5)] == ["red-sol.jpg"]  # Alcalá: 27 km
    hits = searcher.by_text("red near:Madrid~30km", k=5)  # as far as the query says
    assert sorted(h.key for h in hits) == ["red-alcala.jpg", "red-sol.jpg"]
    assert [h.key for h in searcher.by_text("red near:Alcalá_de_Henares", k=5)] == ["red-alcala.jpg"]
    assert sorted(h.key for h in searcher.by_text("red near:Spain", k=5)) == [
        "red-alcala.jpg",
        "red-sol.jpg",
        "trips/red-cadiz.jpg",
    ]
    assert [h.key for h in searcher.by_text('red near:"New York"', k=5)] == ["trips/blue-brooklyn.jpg"]
    assert [h.key for h in searcher.by_text("red near:Spain", k=5, within="trips")] == ["trips/red-cadiz.jpg"]
    hits = searcher.by_query(image=colour_image("red"), text="near:ES", k=1)
    assert [h.key for h in hits] == ["red-sol.jpg"]


def test_a_town_of_a_name_is_the_one_near_which_there_are_photos(tmp_path):
    folder = tmp_path / "photos"
    _save(folder / "mezquita.jpg", ("red",), ("N", (37.0, 52.0, 44.0), "W", (4.0, 46.0, 47.0)))
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    assert gazetteer().find("Cordoba")[0].name == "Córdoba, Argentina"  # the biggest of the name
    hits = searcher.by_text("red cerca:Cordoba", k=5)  # but the photos were taken in Spain's
    assert [(h.key, h.place) for h in hits] == [("mezquita.jpg", "Córdoba, Spain")]


def test_a_place_alone_lists_its_photos_in_the_order_they_were_taken(tmp_path):
    folder = tmp_path / "photos"
    _save(folder / "b.jpg", ("red",), SOL, "2021:01:01 10:00:00")
    _save(folder / "a.jpg", ("blue",), SOL, "2019:01:01 10:00:00")
    _save(folder / "c.jpg", ("green",), SOL)  # no date: last
    _save(folder / "d.jpg", ("green",), CADIZ, "2018:01:01 10:00:00")
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    hits = searcher.by_query("near:Madrid", k=2)
    assert [(h.key, h.score, h.rank) for h in hits] == [("a.jpg", None, 1), ("b.jpg", None, 2)]
    assert [h.key for h in searcher.by_query("near:Madrid", k=2, offset=2)] == ["c.jpg"]
    assert [h.key for h in searcher.by_query("near:Madrid taken:2021", k=5)] == ["b.jpg"]


def test_a_place_without_photos_says_where_the_photos_were_taken(searcher):
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("red near:Tokyo", k=5)
    assert caught.value.code == "no_near"
    assert (
        "within 25 km of Tokyo, Japan (near:Tokyo~100km looks farther); its photos were taken in Spain (3), "
        "United States (1)" in str(caught.value)
    )
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("red near:Brooklyn", k=5, within="holidays")
    assert caught.value.code == "empty_folder"
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("blue near:Madrid", k=5, within="trips")
    assert caught.value.code == "no_near_in_folder"
    with pytest.raises(BuscadorError) as caught:
        searcher.by_text("red near:Qwertyville", k=5)
    assert caught.value.code == "unknown_place"


def test_an_index_without_positions_says_none_says_where(tmp_path):
    folder = tmp_path / "photos"
    _save(folder / "red.jpg", ("red",), None)
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    assert "places" not in json.loads((tmp_path / "index" / MANIFEST).read_text())
    with pytest.raises(BuscadorError) as caught:
        Searcher.open(tmp_path / "index", ColourEmbedder()).by_text("red near:Madrid", k=5)
    assert caught.value.code == "no_places"


def test_an_index_built_before_places_reads_them_once_without_embedding_again(photos, tmp_path):
    out = tmp_path / "index"
    build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    with sqlite3.connect(out / CATALOG) as db:  # as a version that read dates alone left it
        db.execute("DROP INDEX items_position")
        db.execute("DROP INDEX items_country")
        db.execute("DROP INDEX items_unplaced")
        for column in ("lat", "lon", "place", "country"):
            db.execute(f"ALTER TABLE items DROP COLUMN {column}")
    with pytest.raises(BuscadorError) as caught:
        Searcher.open(out, ColourEmbedder()).by_text("red near:Madrid", k=5)
    assert caught.value.code == "places_not_read"
    summary = build_index(FolderSource(photos), out, ColourEmbedder(), progress=False)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, len(PHOTOS))
    hits = Searcher.open(out, ColourEmbedder()).by_text("red near:Madrid", k=5)
    assert [(h.key, h.place) for h in hits] == [("red-sol.jpg", "Madrid, Spain")]


@pytest.mark.parametrize("before", ["dates", "places"])
def test_a_dataset_index_built_before_dates_or_places_reads_them_from_its_rows_once(photos, tmp_path, before):
    from indexing.sources import DatasetSource

    save_as_dataset(photos, tmp_path / "ds")
    source = DatasetSource(str(tmp_path / "ds"), image_column="img")
    out = tmp_path / "index"
    build_index(source, out, ColourEmbedder(), progress=False)
    with sqlite3.connect(out / CATALOG) as db:  # as a version that read no dates, or dates alone, left it
        for index in ("items_position", "items_country", "items_unplaced"):
            db.execute(f"DROP INDEX {index}")
        if before == "dates":
            db.execute("DROP INDEX items_taken")
        dropped = ["lat", "lon", "place", "country"] + (["taken"] if before == "dates" else [])
        for column in dropped:
            db.execute(f"ALTER TABLE items DROP COLUMN {column}")
    summary = build_index(source, out, ColourEmbedder(), progress=False)
    assert (summary.added, summary.updated, summary.unchanged) == (0, 0, len(PHOTOS))  # none embedded again
    searcher = Searcher.open(out, ColourEmbedder())
    hits = searcher.by_text("red near:Madrid", k=5)
    assert [(h.label, h.place) for h in hits] == [("train[2] red-sol.jpg", "Madrid, Spain")]
    with sqlite3.connect(out / CATALOG) as db:  # each read ("": it says no date), none left unread
        assert db.execute("SELECT COUNT(*) FROM items WHERE taken = ''").fetchone() == (len(PHOTOS),)
        assert db.execute("SELECT value FROM meta WHERE name='headers_unread'").fetchall() == []


def test_the_nearest_town_is_the_one_a_full_scan_finds():
    towns = gazetteer()
    rng = np.random.default_rng(0)
    near = rng.integers(0, len(towns.lat), 300)  # where photos are taken: a few km from a town
    lat = np.concatenate([rng.uniform(-60, 70, 300), towns.lat[near] + rng.normal(0, 0.05, 300)])
    lon = np.concatenate([rng.uniform(-180, 180, 300), towns.lon[near] + rng.normal(0, 0.05, 300)])
    found = towns.nearest(lat, lon)
    phi, lam = np.radians(lat)[:, None], np.radians(lon)[:, None]
    tphi, tlam = np.radians(towns.lat)[None], np.radians(towns.lon)[None]
    cosine = np.sin(phi) * np.sin(tphi) + np.cos(phi) * np.cos(tphi) * np.cos(lam - tlam)
    assert (found == cosine.argmax(1)).all()


@pytest.mark.parametrize(
    ("where", "lat", "lon", "named"),
    [
        ("the Eiffel Tower (nearest: Paris 16 Passy)", 48.8584, 2.2945, "Paris"),
        ("Tower Bridge (Shadwell)", 51.5055, -0.0754, "London"),
        ("the Brandenburg Gate (Mitte)", 52.5163, 13.3777, "Berlin"),
        ("Shibuya crossing (Shibuya)", 35.6595, 139.7005, "Tokyo"),
        ("the Sagrada Família (a district of that name)", 41.4036, 2.1744, "Barcelona"),
        ("Boulogne-Billancourt, 8.5 km from Paris", 48.8352, 2.2409, "Boulogne-Billancourt"),
        ("Hoboken, across the river from New York: another state", 40.7440, -74.0324, "Hoboken"),
        ("Alcalá de Henares", 40.4818, -3.3643, "Alcalá de Henares"),
        ("Leganés, 11 km from Madrid", 40.3272, -3.7635, "Leganés"),
    ],
)
def test_a_photo_taken_in_a_city_s_district_is_named_by_the_city(where, lat, lon, named):
    towns = gazetteer()
    found = towns.city_of(towns.nearest(np.array([lat]), np.array([lon])))
    assert towns.names[found[0]] == named, where


def test_a_district_reaches_its_surroundings_and_a_city_its_suburbs():
    towns = gazetteer()
    shibuya, tokyo = towns.find("Shibuya")[0], towns.find("Tokyo")[0]
    assert (tokyo.radius_km, round(shibuya.radius_km, 1)) == (25.0, 3.8)
    manhattan = next(near for near in towns.find("Manhattan") if near.town == "Manhattan, NY")  # after NYC
    assert round(manhattan.radius_km) == 10  # 1.5 million people
    assert towns.find("Shibuya", 10.0)[0].radius_km == 10.0  # near:Shibuya~10km
    east = np.array([0.0, 1.0, 5.0]) / (111.32 * np.cos(np.radians(shibuya.lat)))  # 0, 1 and 5 km
    lat, lon = np.full(3, shibuya.lat), shibuya.lon + east
    assert shibuya.within(lat, lon).tolist() == [True, True, False]
    assert tokyo.within(lat, lon).all()
    assert shibuya.where() == "within 3.8 km of Shibuya, Japan"  # as errors say it
    assert shibuya.where("es") == "a menos de 3,8 km de Shibuya, Japón"
    assert towns.find("Spain")[0].where("es") == "en España"
    assert shibuya.farther() == " (near:Shibuya~10km looks farther)"
    assert towns.find("Portland, OR")[0].farther("es") == ' (cerca:"Portland, OR"~100km busca más lejos)'
    assert towns.find("Spain")[0].farther() == "" and towns.find("Madrid", 1000.0)[0].farther() == ""
    with pytest.raises(BuscadorError) as caught:
        towns.find("Spain", 25.0)  # a distance a query gave, even the default one
    assert caught.value.code == "country_radius"


def test_an_index_whose_towns_an_older_rule_named_has_them_named_again(searcher, tmp_path):
    out = tmp_path / "index"
    with sqlite3.connect(out / CATALOG) as db:  # as the tenth session's builds named them
        db.execute("UPDATE items SET place='Bushwick' WHERE key='trips/blue-brooklyn.jpg'")
        db.execute("DELETE FROM meta WHERE name='towns_named'")
    summary = build_index(FolderSource(tmp_path / "photos"), out, ColourEmbedder(), progress=False)
    assert (summary.added, summary.updated) == (0, 0)
    with sqlite3.connect(out / CATALOG) as db:
        assert (
            db.execute("SELECT place FROM items WHERE key='trips/blue-brooklyn.jpg'").fetchone()[0]
            == "New York City, NY"
        )
        assert db.execute("SELECT value FROM meta WHERE name='towns_named'").fetchone()[0] == "cities-3"


def test_the_command_line_searches_near_a_place_and_shows_it(
    photos, tmp_path, tiny_model, capsys, monkeypatch
):
    from indexing.cli import main

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    out = tmp_path / "index"
    assert main(["build", str(photos), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--text", "a photo", "--near", "New York", "--paths"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(photos / "trips/blue-brooklyn.jpg")]
    assert main(["search", str(out), "--near", "Madrid~30km", "--paths"]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == [
        str(photos / "red-alcala.jpg"),
        str(photos / "red-sol.jpg"),
    ]
    assert main(["search", str(out), "--near", "Spain", "-k", "2"]) == 0  # a place alone
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.split()[1] == "—" for line in lines)
    assert all(line.endswith(", Spain)") for line in lines)
    _save(photos / "half-dome.jpg", ("red",), _where(37.746, -119.533))  # in the US, near no town
    assert main(["build", str(photos), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--near", "USA"]) == 0
    lines = {line.split()[2].rpartition("/")[2]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["half-dome.jpg"].endswith(", in United States)")
    assert lines["blue-brooklyn.jpg"].endswith(", near New York City, NY, United States)")
    assert main(["search", str(out), "--near", "Qwertyville"]) == 2
    assert "no town or country is named 'Qwertyville'" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert info["places"].strip().startswith("5 images say where they were taken")
    assert info["countries"].strip() == "Spain (3), United States (2)"
    towns = "Alcalá de Henares, ES (1), Cadiz, ES (1), Madrid, ES (1), New York City, NY, US (1)"
    assert info["towns"].strip() == towns  # the manifest's
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["places"]["towns"]  # as an index built before the manifest named them
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert main(["info", str(out)]) == 0
    assert dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())["towns"].strip() == towns


def test_the_app_shows_each_photos_town_and_links_the_countries(searcher):
    import gradio as gr

    import app
    from ui.handlers import Engine, Handlers

    handlers = Handlers(Engine(searcher))
    line = "· 📍 4: `near:Spain` · [Spain](?q=near%3AES) (3) · [United States](?q=near%3AUS) (1)"
    assert line in app.index_status(handlers.engine)
    spanish = "`cerca:España` · [España](?q=cerca%3AES) (3) · [Estados Unidos](?q=cerca%3AUS) (1)"
    assert spanish in app.index_status(handlers.engine, "es")
    assert handlers.info(gr.Request())["places"]["countries"] == {"ES": 3, "US": 1}
    towns = " · 🏙️ [Alcalá de Henares](?q=near%3A%22Alcal%C3%A1%20de%20Henares%2C%20ES%22) (1) · [Cadiz]("
    assert towns in app.index_status(handlers.engine)
    spanish_town = "[Cádiz](?q=cerca%3A%22Cadiz%2C%20ES%22) (1)"  # named in Spanish, asked as GeoNames has it
    assert spanish_town in app.index_status(handlers.engine, "es")
    nyc = "[New York City, NY](?q=near%3A%22New%20York%20City%2C%20NY%2C%20US%22) (1)"  # with its state
    assert nyc in app.index_status(handlers.engine)
    assert handlers.search_text('near:"New York City, NY, US"', 5, -1.0, False, "", gr.Request())[1]
    gallery, hits, _, link = handlers.search_text("blue near:Brooklyn", 5, -1.0, False, "", gr.Request())
    assert [caption for _, caption in gallery] == [
        "#1 · 1.0000 · trips/blue-brooklyn.jpg · New York City, NY"
    ]
    assert hits[0]["place"] == "New York City, NY, United States" and "near%3ABrooklyn" in link
    with pytest.raises(gr.Error, match="its photos were taken in Spain"):
        handlers.search_text("red near:Tokyo", 5, -1.0, False, "", gr.Request())
    spanish = gr.Request(headers={"accept-language": "es-ES,es"})
    with pytest.raises(
        gr.Error,
        match=r"a menos de 25 km de Tokio, Japón \(cerca:Tokio~100km busca más lejos\); sus fotos se",
    ):
        handlers.search_text("rojo cerca:Tokio", 5, -1.0, False, "", spanish)


def test_a_dataset_s_images_keep_their_places_and_merged_shards_too(photos, tmp_path):
    from indexing.merge import merge_shards
    from indexing.sources import DatasetSource, Shard

    save_as_dataset(photos, tmp_path / "ds")
    for n in range(2):
        source = DatasetSource(str(tmp_path / "ds"), image_column="img")
        build_index(source, tmp_path / f"shard-{n}", ColourEmbedder(), progress=False, shard=Shard(n, 2))
    merge_shards([tmp_path / "shard-0", tmp_path / "shard-1"], tmp_path / "index", progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    hits = searcher.by_text("red near:Madrid", k=5)
    assert [(h.label, h.place) for h in hits] == [("train[2] red-sol.jpg", "Madrid, Spain")]
    assert json.loads((tmp_path / "index" / MANIFEST).read_text())["places"]["count"] == 4


def test_the_towns_names_can_be_made_ready_before_the_first_query():
    from indexing.places import prepare

    prepare()  # what the app does at start-up, on a thread of its own, for an index with places
    assert gazetteer()._named is not None and gazetteer()._alternates == []
    assert gazetteer()._cities is not None


def test_browser_a_country_under_options_lists_its_photos_in_a_spanish_page(searcher, browser):
    from tests.test_app import _captions, _follow_index_link, opened
    from ui.startup import Engine

    with opened(Engine(searcher), browser, "es") as (page, url):
        page.goto(url)
        page.get_by_text("una taza de café", exact=True).wait_for()
        _follow_index_link(page, "Estados Unidos", "cerca:US")
        assert page.url == url + "?q=cerca%3AUS&k=12"  # in this tab (the address bar follows)
        assert _captions(page) == ["#1 · trips/blue-brooklyn.jpg · Nueva York, NY"]  # in Spanish
        _follow_index_link(page, "Cádiz", 'cerca:"Cadiz, ES"')  # and a town's
        assert _captions(page) == ["#1 · trips/red-cadiz.jpg · Cádiz"]


@pytest.mark.parametrize(
    ("lat", "lon", "position"),
    [
        (40.4168, -3.7038, (40.4168, -3.7038)),
        ("40.4168", "-3.7038", (40.4168, -3.7038)),  # texts of numbers
        (None, None, (None, None)),
        ("", "", (None, None)),
        (0.0, 0.0, (None, None)),  # no fix
        (91, 3, (None, None)),
        (float("nan"), 3, (None, None)),
    ],
)
def test_a_dataset_s_position_columns_may_hold_numbers_or_texts(lat, lon, position):
    assert headers.dataset_position(lat, lon) == position


def test_a_dataset_s_position_columns_say_where_its_images_were_taken(
    tmp_path, capsys, tiny_model, monkeypatch
):
    import datasets

    from indexing.cli import main
    from indexing.sources import DatasetSource

    _save(tmp_path / "plain.jpg", ("green",), None)
    plain = (tmp_path / "plain.jpg").read_bytes()  # no GPS in its EXIF
    rows = {
        "img": [{"bytes": plain, "path": "x.jpg"}] * 3,
        "lat": [40.4168, None, 0.0],
        "lon": [-3.7038, None, 0.0],
    }
    features = datasets.Features(
        {"img": datasets.Image(), "lat": datasets.Value("float64"), "lon": datasets.Value("float64")}
    )
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(tmp_path / "ds")
    source = DatasetSource(str(tmp_path / "ds"), image_column="img", position_columns=("lat", "lon"))
    build_index(source, tmp_path / "index", ColourEmbedder(), progress=False)
    hits = Searcher.open(tmp_path / "index", ColourEmbedder()).by_text("green near:Madrid", k=5)
    assert [(h.key, h.place) for h in hits] == [("train/0", "Madrid, Spain")]
    # A changed position updates its row, embedding nothing again.
    moved = rows | {"lat": [40.4168, 36.5293, None], "lon": [-3.7038, -6.2886, None]}
    datasets.Dataset.from_dict(moved, features=features).save_to_disk(tmp_path / "ds2")
    again = DatasetSource(str(tmp_path / "ds2"), image_column="img", position_columns=("lat", "lon"))
    summary = build_index(
        again, tmp_path / "index", ColourEmbedder(), progress=False, replace=True
    )  # saved apart
    assert (summary.updated, summary.unchanged, summary.reused) == (1, 2, 1)
    hits = Searcher.open(tmp_path / "index", ColourEmbedder()).by_text("green near:Spain", k=5)
    assert sorted((h.key, h.place) for h in hits) == [
        ("train/0", "Madrid, Spain"),
        ("train/1", "Cadiz, Spain"),
    ]
    # The command line takes two columns, names a missing one, and keeps the option for datasets.
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    build = ["build", "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "i2")]
    assert main([*build, "--position-columns", "lat"]) == 2
    assert "takes two columns" in capsys.readouterr().err
    assert main([*build, "--position-columns", "latitude,longitude"]) == 2
    assert "no column 'latitude'" in capsys.readouterr().err
    assert main(["build", str(tmp_path), "--position-columns", "lat,lon", "--out", str(tmp_path / "i3")]) == 2
    assert "are for datasets" in capsys.readouterr().err


def test_a_place_by_the_180th_meridian_finds_photos_on_both_sides(tmp_path):
    folder = tmp_path / "photos"
    _save(folder / "suva.jpg", ("red",), SUVA)  # 178° 26′ E
    _save(folder / "east.jpg", ("red", "blue"), ("S", (18.0, 6.0, 0.0), "W", (179.0, 54.0, 0.0)))  # 175 km
    _save(folder / "far.jpg", ("red",), ("S", (18.0, 6.0, 0.0), "W", (178.0, 0.0, 0.0)))  # 375 km
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    west, east = gazetteer().find("Suva", 200.0)[0].box()[2:]
    assert west > east  # the box wraps round
    assert sorted(h.key for h in searcher.by_query("near:Suva~200km", k=5)) == ["east.jpg", "suva.jpg"]


def test_decode_processes_read_the_headers_beside_their_decoding(photos, tmp_path, embedder, monkeypatch):
    # A GPU build's decode processes read them, not a pass on the model's thread after it.
    readable = headers.from_file
    read_here: list[str] = []
    monkeypatch.setattr(headers, "from_file", lambda path: read_here.append(path.name) or readable(path))
    out = tmp_path / "index"
    build_index(FolderSource(photos), out, embedder, progress=False, decode="processes", workers=2)
    assert read_here == []
    manifest = json.loads((out / MANIFEST).read_text())
    assert (manifest["places"]["count"], manifest["places"]["countries"]) == (4, {"ES": 3, "US": 1})
    with sqlite3.connect(out / CATALOG) as db:
        rows = dict(db.execute("SELECT key, place FROM items WHERE taken IS NOT NULL"))
    assert rows == {
        "red-sol.jpg": "Madrid",
        "red-alcala.jpg": "Alcalá de Henares",
        "trips/red-cadiz.jpg": "Cadiz",
        "trips/blue-brooklyn.jpg": "New York City, NY",
        "red-nowhere.jpg": None,
    }


@pytest.mark.parametrize("decode", ["processes", "threads", "gpu"])
def test_a_dataset_s_headers_are_read_where_its_rows_are_decoded(
    photos, tmp_path, embedder, monkeypatch, decode
):
    # Not on the thread that feeds the model (a GPU's): in the decode processes (which read the
    # files for the GPU too, nvJPEG played by Pillow), or threads.
    import threading

    import indexing.build
    from indexing.sources import DatasetSource
    from tests.test_gpu_decoding import pillow_decode

    monkeypatch.setattr(indexing.build, "nvjpeg", lambda device: pillow_decode)

    readable = headers.from_bytes
    read_on: list[str] = []
    monkeypatch.setattr(
        headers, "from_bytes", lambda data: read_on.append(threading.current_thread().name) or readable(data)
    )
    save_as_dataset(photos, tmp_path / "ds")
    out = tmp_path / "index"
    source = DatasetSource(str(tmp_path / "ds"), image_column="img")
    assert build_index(source, out, embedder, progress=False, decode=decode, workers=2).decoding == decode
    if decode == "threads":
        assert len(read_on) == len(PHOTOS) and all(name.startswith("decode") for name in read_on)
    else:
        assert read_on == []
    manifest = json.loads((out / MANIFEST).read_text())
    assert (manifest["places"]["count"], manifest["places"]["countries"]) == (4, {"ES": 3, "US": 1})
    with sqlite3.connect(out / CATALOG) as db:
        places = sorted(place for (place,) in db.execute("SELECT place FROM items WHERE place IS NOT NULL"))
    assert places == ["Alcalá de Henares", "Cadiz", "Madrid", "New York City, NY"]


def _where(lat: float, lon: float) -> tuple:
    """A position in degrees as an EXIF GPS block has it: (lat ref, lat, lon ref, lon)."""

    def dms(x: float) -> tuple[float, float, float]:
        minutes, seconds = divmod(round(abs(x) * 3600, 2), 60)
        return (float(minutes // 60), float(minutes % 60), seconds)

    return ("N" if lat >= 0 else "S", dms(lat), "E" if lon >= 0 else "W", dms(lon))


def test_a_photo_far_from_any_town_is_named_by_its_country_or_not_at_all(tmp_path):
    folder = tmp_path / "photos"
    _save(folder / "half-dome.jpg", ("red",), _where(37.746, -119.533))  # 94 km from Chowchilla
    _save(folder / "mcmurdo.jpg", ("blue",), _where(-77.85, 166.67))  # 3,498 km from Invercargill
    _save(folder / "sol.jpg", ("green",), SOL)
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    places = {hit.key: hit.place for hit in searcher.by_text("red blue green", k=5)}
    assert places == {"half-dome.jpg": "United States", "mcmurdo.jpg": None, "sol.jpg": "Madrid, Spain"}
    manifest = json.loads((tmp_path / "index" / MANIFEST).read_text())
    assert (manifest["places"]["countries"], manifest["places"]["towns"]) == (
        {"ES": 1, "US": 1},
        {"Madrid, ES": 1},
    )
    assert [h.key for h in searcher.by_query("near:USA", k=5)] == ["half-dome.jpg"]  # still in its country
    assert [h.key for h in searcher.by_query("near:Chowchilla~100km", k=5)] == ["half-dome.jpg"]  # and near
    import gradio as gr

    from ui.handlers import Engine, Handlers

    gallery, *_ = Handlers(Engine(searcher)).search_text("red", 1, -1.0, False, "", gr.Request())
    assert gallery[0][1] == "#1 · 1.0000 · half-dome.jpg · United States"  # its caption: the country


def test_a_spanish_page_names_towns_as_spanish_does(searcher):
    import gradio as gr

    from indexing.places import place_label
    from indexing.town_names import SPANISH
    from ui.handlers import Engine, Handlers

    assert place_label("London", "GB", "es") == "Londres, Reino Unido"
    assert place_label("New York City, NY", "US", "es") == "Nueva York, NY, Estados Unidos"
    assert place_label("London", "CA", "es") == "London, Canadá"  # Ontario's keeps its name
    assert place_label("Leganés", "ES", "es") == "Leganés, España" and place_label("London", "GB") == (
        "London, United Kingdom"
    )
    towns = gazetteer()
    assert set(SPANISH) <= set(zip(towns.names, towns.codes, strict=True))  # each a town GeoNames names so
    for (town, code), name in SPANISH.items():  # and cerca: finds it by the name the page shows
        assert (town, code) in [
            (near.town.split(", ")[0], near.country) for near in towns.find(name, 25.0)
        ], name
    assert place_label("Makkah", "SA", "es") == "La Meca, Arabia Saudí"
    spanish = gr.Request(headers={"accept-language": "es-ES,es"})
    hits = Handlers(Engine(searcher)).search_text("azul cerca:Brooklyn", 5, -1.0, False, "", spanish)[1]
    assert hits[0]["place"] == "Nueva York, NY, Estados Unidos"  # the hits too, in the visitor's language


def test_a_misspelt_place_is_answered_with_the_one_it_looks_like():
    from ui import text as ui_text

    towns = gazetteer()
    for written, like, like_es in [
        ("Madird", "Madrid", "Madrid"),
        ("Londrs", "London", "Londres"),
        ("Spian", "Spain", "España"),  # a country before a town as alike (Xi'an's "Sian")
        ("Portlnd, OR", "Portland, OR", "Portland, OR"),
        ("Portlnd, Maine", "Portland, ME", "Portland, ME"),  # in the state written
        ("Londn, Canada", "London, Canada", "London, Canadá"),  # in the country written
    ]:
        with pytest.raises(BuscadorError) as caught:
            towns.find(written)
        assert (caught.value.code, caught.value.params["like"], caught.value.params["like_es"]) == (
            "unknown_place_like",
            like,
            like_es,
        )
    assert (
        ui_text.error("es", caught.value)
        == "Ningún pueblo, ciudad o país se llama «Londn, Canada»: ¿quisiste decir London, Canadá?"
    )
    with pytest.raises(BuscadorError) as caught:
        towns.find("Qwertyville")  # like nothing
    assert caught.value.code == "unknown_place"


def test_a_name_of_a_country_and_of_towns_finds_the_one_with_photos(tmp_path):
    folder = tmp_path / "photos"
    _save(folder / "alhambra.jpg", ("red",), _where(37.1761, -3.5881))
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    searcher = Searcher.open(tmp_path / "index", ColourEmbedder())
    assert [n.name for n in gazetteer().find("Granada")][:2] == [
        "Grenada",
        "Granada, Spain",
    ]  # Grenada in Spanish
    assert [(h.key, h.place) for h in searcher.by_query("red cerca:Granada", k=5)] == [
        ("alhambra.jpg", "Granada, Spain")
    ]
