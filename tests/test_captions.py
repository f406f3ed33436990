"""Captions: read from XMP (a sidecar's, or inside an exported photo) and Google Takeout, and
searched with caption: by their words, case and accents aside, from a word's start."""

from __future__ import annotations

import io
import json
import sqlite3

import gradio as gr
import pytest
from PIL import Image

import app
from indexing import cli, xmp
from indexing.build import build_index
from indexing.captions import caption_of, split_caption
from indexing.catalog import CATALOG, Catalog
from indexing.cli import main
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.sources import FolderSource
from tests.colour_embedder import ColourEmbedder, colour_image
from ui import text
from ui.handlers import Handlers
from ui.startup import Engine


def _captioned(title: str = "", description: str = "", *, other_language: str = "") -> str:
    """XMP with a title and a description as Lightroom writes them: each a list of translations,
    the default one (`x-default`) after another language's when asked."""

    def alt(name: str, said: str) -> str:
        other = f'<rdf:li xml:lang="de-DE">{other_language}</rdf:li>' if other_language else ""
        default = f'<rdf:li xml:lang="x-default">{said}</rdf:li>'
        return f"<dc:{name}><rdf:Alt>{other}{default}</rdf:Alt></dc:{name}>" if said else ""

    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"{alt('title', title)}{alt('description', description)}</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def _dated(path, colour: str, taken: str) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    colour_image(colour).save(path, exif=exif)


def test_xmp_gives_the_default_title_and_description_once_each():
    told = xmp.read(
        _captioned("Cumpleaños", "¡Cumpleaños de Ana!\n  en la playa", other_language="Geburtstag")
    )
    assert told.caption == "Cumpleaños\n¡Cumpleaños de Ana! en la playa"
    assert xmp.read(_captioned("Same", "Same").encode()).caption == "Same"  # editors often write both
    assert xmp.read(_captioned()).caption == ""
    assert caption_of("", "x" * 5000) == "x" * 2000  # a caption is kept short
    assert caption_of("OLYMPUS DIGITAL CAMERA", "Sony DSC") == ""  # what a camera writes in every photo
    assert caption_of("Untitled", "Ana at the beach") == "Ana at the beach"


def test_a_caption_is_searched_by_its_words(tmp_path, capsys, monkeypatch):
    photos = tmp_path / "photos"
    (photos / "2019").mkdir(parents=True)
    _dated(photos / "party.jpg", "red", "2019:07:14 10:00:00")
    (photos / "party.jpg.xmp").write_text(_captioned("¡Cumpleaños de Ana!"), encoding="utf-8")  # a sidecar
    exported = _captioned(description="Ana's boat, the Gaviota").encode()  # an export: inside the file
    colour_image("blue").save(photos / "2019" / "sea.jpg", xmp=exported)
    colour_image("red").save(photos / "fruit.png")
    (photos / "fruit.png.xmp").write_text(_captioned("A banana"), encoding="utf-8")
    colour_image("green").save(photos / "google.jpg")  # from Google Photos: Takeout's description
    said = {"title": "google.jpg", "description": "Picnic with Ana"}
    (photos / "google.jpg.json").write_text(json.dumps(said), encoding="utf-8")
    colour_image("red").save(photos / "plain.png")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)

    listed = searcher.by_query("caption:ana")  # alone: a listing; "banana" is not Ana
    assert sorted((hit.key, hit.caption, hit.score) for hit in listed) == [
        ("2019/sea.jpg", "Ana's boat, the Gaviota", None),
        ("google.jpg", "Picnic with Ana", None),
        ("party.jpg", "¡Cumpleaños de Ana!", None),
    ]
    assert [hit.key for hit in searcher.by_query("red caption:cumple", k=5)] == ["party.jpg"]  # accents aside
    with pytest.raises(BuscadorError, match="no image of this index has “anas boat”"):
        searcher.by_query('leyenda:"ANAS BOAT"')  # (the apostrophe is the caption's)
    assert [hit.key for hit in searcher.by_query('leyenda:"ana\'s boat"')] == ["2019/sea.jpg"]
    assert [hit.key for hit in searcher.by_query("descripción:gaviota red", k=5)] == ["2019/sea.jpg"]
    assert [hit.key for hit in searcher.by_query("caption:picnic_with")] == ["google.jpg"]
    with pytest.raises(BuscadorError, match="none of the images searched has “picnic” in its caption"):
        searcher.by_query("red caption:picnic", within="2019")
    with pytest.raises(BuscadorError, match="no image of this index has “wedding” in its caption") as caught:
        searcher.by_query("caption:wedding")
    assert text.error("es", caught.value) == "Ninguna imagen de este índice tiene «wedding» en su leyenda."
    with pytest.raises(BuscadorError, match="more than one caption"):
        searcher.by_query("caption:ana caption:boat")
    # A minus leaves out the photos whose caption has the words ("banana" has no "ana").
    assert sorted(hit.key for hit in searcher.by_query("red -caption:ana", k=5)) == ["fruit.png", "plain.png"]
    assert [hit.key for hit in searcher.by_query('-leyenda:"ana boat" caption:ana')] == [
        "party.jpg",
        "google.jpg",
    ]
    with pytest.raises(
        BuscadorError, match="every image searched has words left out in its caption"
    ) as caught:
        searcher.by_query("caption:ana -caption:ana")
    assert text.error("es", caught.value) == (
        "Todas las imágenes buscadas tienen en su leyenda palabras excluidas (ana)."
    )
    assert split_caption("beach caption:") == ("beach caption:", None, ())  # nothing after it: words
    with pytest.raises(BuscadorError, match="names no words"):
        split_caption('a Caption:"  " x')

    assert searcher.store.manifest["captions"] == 4
    assert " · 💬 4: `caption:…`" in app.index_status(Engine(searcher))
    assert " · 💬 4: `leyenda:…`" in app.index_status(Engine(searcher), "es")
    handlers = Handlers(Engine(searcher))
    gallery = handlers.search_text("caption:cumpleaños", 5, -1.0, False, "", gr.Request())[0]
    assert [caption for _, caption in gallery] == ["#1 · party.jpg · 2019-07-14 · “¡Cumpleaños de Ana!”"]
    hits = handlers.hits_text("red caption:ana", 5, -1.0, gr.Request())
    assert [hit["key"] for hit in hits] == ["party.jpg", "google.jpg", "2019/sea.jpg"]  # Ana's: red first
    assert hits[0]["caption"] == "¡Cumpleaños de Ana!"
    assert handlers.info(gr.Request())["captions"] == 4
    # A description whose words captions have says so, with a link that narrows to them.
    kept = dict(searcher.store._subsets)
    status = handlers.search_text("Ana on a boat", 5, -1.0, True, "", gr.Request())[2]
    assert searcher.store._subsets == kept  # a count it mentions is not kept as the subsets searched
    assert status == (
        "3 results for “Ana on a boat”. 1 photo has “ana boat” in its caption: "
        "[see it](?q=Ana+on+a+boat+caption%3A%22ana+boat%22&k=5)."
    )
    status = handlers.search_text("Ana", 5, -1.0, True, "2019", gr.Request())[2]  # within a folder
    assert status.endswith(
        "1 photo has “ana” in its caption: [see it](?q=Ana+caption%3A%22ana%22&k=5&in=2019)."
    )
    assert (
        "3 photos have “ana” in their caption: [search among them]"
        in (handlers.search_text("ana", 5, -1.0, True, "", gr.Request())[2])
    )
    for nothing in ("a picnic with the family", "caption:ana red", "the"):  # none has both; asked; none
        assert (
            "caption"
            not in handlers.search_text(nothing, 5, -1.0, True, "", gr.Request())[2].split(".", 1)[1]
        )
    es = gr.Request(headers={"accept-language": "es"})
    gallery = handlers.search_text("leyenda:cumpleaños", 5, -1.0, False, "", es)[0]
    assert [caption for _, caption in gallery] == ["#1 · party.jpg · 2019-07-14 · «¡Cumpleaños de Ana!»"]
    assert handlers.search_text("Ana boat", 5, -1.0, True, "", es)[2].endswith(
        "1 foto tiene «ana boat» en su leyenda: [verla](?q=Ana+boat+leyenda%3A%22ana+boat%22&k=5)."
    )
    assert [hit.key for hit in searcher.by_query('caption:"ana cumpleaños"')] == ["party.jpg"]  # any order

    index = str(tmp_path / "index")
    assert main(["search", index, "--text", "caption:gaviota"]) == 0  # a listing: no model
    assert capsys.readouterr().out.rstrip().endswith(", “Ana's boat, the Gaviota”)")
    assert main(["search", index, "--caption", "Picnic", "--paths"]) == 0  # the same by a flag
    assert capsys.readouterr().out.split() == [str(photos / "google.jpg")]
    monkeypatch.setattr(cli, "_embedder", lambda args, fast_decode=True: embedder)  # (no CLIP here)
    assert main(["search", index, "--text", "a boat of Ana", "-k", "1"]) == 0
    assert 'note: 1 photo has “boat ana” in its caption: add caption:"boat ana" to search among it' in (
        capsys.readouterr().err
    )
    assert main(["info", index]) == 0
    assert "captions:    4 images have one (search their words with caption:WORDS" in capsys.readouterr().out
    # Past CAPTIONS_HINTED captions, a description's count comes from the captions' word index; an
    # index without one (made before it, read where it cannot be updated) would scan: no count.
    monkeypatch.setattr("indexing.config.CAPTIONS_HINTED", 1)
    assert "in their caption" in handlers.search_text("ana", 5, -1.0, True, "", gr.Request())[2]
    monkeypatch.setattr(searcher.store.catalog, "caption_words", False)
    assert "caption" not in handlers.search_text("ana", 5, -1.0, True, "", gr.Request())[2]


def test_an_edited_caption_is_read_again_and_an_older_index_reads_them_once(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    colour_image("red").save(photos / "party.png")
    sidecar = photos / "party.png.xmp"
    sidecar.write_text(_captioned("Birthday"), encoding="utf-8")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    sidecar.write_text(_captioned("Wedding"), encoding="utf-8")  # edited: read again, nothing embedded
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.added, summary.updated, summary.retold) == (0, 0, 1)
    assert [
        hit.caption for hit in Searcher.open(tmp_path / "index", embedder).by_query("caption:wedding")
    ] == ["Wedding"]
    catalog = Catalog(tmp_path / "index" / CATALOG)  # as a version before captions left it
    catalog.set_facts([("", None, None, None, (), None, "", "party.png")])
    catalog.set_meta(headers_reader="8")
    catalog.close()
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert "1 headers read again, once" in summary.report()
    assert Searcher.open(tmp_path / "index", embedder).by_query("caption:wedding")[0].key == "party.png"


def test_an_index_without_captions_says_so_or_to_build_it_again(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    colour_image("red").save(photos / "a.png")
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    with pytest.raises(BuscadorError, match="no image of this index has a caption") as caught:
        searcher.by_query("red caption:ana")
    assert caught.value.code == "no_captions"
    with sqlite3.connect(tmp_path / "index" / CATALOG) as db:  # as a version before captions left it
        _without_word_index(db)
        db.execute("ALTER TABLE items DROP COLUMN caption_key")
        db.execute("ALTER TABLE items DROP COLUMN caption")
    old = Searcher.open(tmp_path / "index", embedder)
    assert old.by_text("red", k=1)[0].key == "a.png"  # it searches as before
    with pytest.raises(BuscadorError, match="build it again") as caught:
        old.by_query("caption:ana")
    assert caught.value.code == "captions_not_read"
    assert "leyendas" in text.error("es", caught.value)


def test_a_dataset_s_caption_column_is_searched_with_caption(tmp_path, capsys, tiny_model, monkeypatch):
    import datasets

    from indexing.sources import DatasetSource

    images = []
    for colour in ("red", "blue", "green"):
        buffer = io.BytesIO()
        colour_image(colour).save(buffer, "PNG")
        images.append(buffer.getvalue())
    rows = {"img": images, "text": ["The Eiffel Tower at night", "Tour Eiffel, Paris", None]}
    datasets.Dataset.from_dict(rows).save_to_disk(tmp_path / "ds")
    embedder = ColourEmbedder()
    source = DatasetSource(str(tmp_path / "ds"), image_column="img", caption_column="text")
    build_index(source, tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert [(hit.key, hit.caption) for hit in searcher.by_query("blue caption:eiffel", k=5)] == [
        ("train/1", "Tour Eiffel, Paris"),
        ("train/0", "The Eiffel Tower at night"),
    ]
    assert searcher.store.manifest["source"]["caption_column"] == "text"
    # A changed caption updates its row, embedding nothing again.
    datasets.Dataset.from_dict(
        rows | {"text": ["The Eiffel Tower at night", "Arc de Triomphe", "Louvre"]}
    ).save_to_disk(tmp_path / "ds2")
    again = DatasetSource(str(tmp_path / "ds2"), image_column="img", caption_column="text")
    summary = build_index(again, tmp_path / "index", embedder, progress=False, replace=True)
    assert (summary.updated, summary.reused) == (2, 2)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert [hit.key for hit in searcher.by_query("caption:louvre")] == ["train/2"]
    assert [hit.key for hit in searcher.by_query("caption:eiffel")] == ["train/0"]
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    dataset = ["--dataset", str(tmp_path / "ds"), "--image-column", "img", "--out", str(tmp_path / "i2")]
    assert main(["build", *dataset, "--caption-column", "words"]) == 2
    assert "has no column 'words'" in capsys.readouterr().err
    assert main(["build", str(tmp_path), "--caption-column", "text"]) == 2  # a folder's are its XMP's
    assert "are for datasets" in capsys.readouterr().err


_WORDED = {
    "a.jpg": "¡Cumpleaños de Ana!\nen la playa",
    "b.jpg": "Banana split",
    "c.jpg": "Ana's boat, 2024",
    "d.jpg": "東京タワー at night",
    "e.jpg": "cumple_años raro",
    "f.jpg": None,
}
_ASKED = [
    *("ana", "cumple", "cumpleaños ana", "ana's", "ana's boat", "boat 2024", "202", "banana", "nana"),
    *("東京", "タワー", "años", "¡", "de la", "playa ana", "split banana", "x", "new", "again"),
    *("cumple_años", "años raro", "2024", "ana 2"),
]


def _row(key: str, caption: str | None):
    import numpy as np

    from indexing.catalog import Row

    return Row(key, key, "f", np.zeros(4, np.float32), b"", caption=caption)


def _without_word_index(db: sqlite3.Connection) -> None:
    """Take a catalog's captions' word index out, with the triggers that keep it."""
    for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DROP TABLE caption_words")


class _NoScan:
    """A catalog's connection that fails a scan of every caption."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *values):
        assert "instr(caption_key" not in sql, "the captions were scanned"
        return self.db.execute(sql, *values)


def _found(catalog: Catalog) -> dict[str, list[int]]:
    """What each of _ASKED finds through the captions' word index, checked against what a scan of
    every caption finds, and the word index against the captions it holds."""
    from indexing.tags import folded

    assert catalog.caption_words
    looked_up = {words: catalog.ids_captioned(folded(words)).tolist() for words in _ASKED}
    db = catalog._db
    catalog._db = _NoScan(db)
    try:  # what the word index finds, or not, is not looked for again by a scan
        lettered = [words for words in _ASKED if words != "¡"]
        assert {words: catalog.ids_captioned(folded(words)).tolist() for words in lettered} == {
            words: looked_up[words] for words in lettered
        }
    finally:
        catalog._db = db
    catalog.caption_words = False
    try:
        assert {words: catalog.ids_captioned(folded(words)).tolist() for words in _ASKED} == looked_up
    finally:
        catalog.caption_words = True
    db = catalog._db
    db.execute("INSERT INTO caption_words(caption_words) VALUES('integrity-check')")  # raises if not
    held = db.execute("SELECT rowid, caption_key FROM caption_words ORDER BY rowid").fetchall()
    assert (
        held
        == db.execute(
            "SELECT id, caption_key FROM items WHERE caption_key IS NOT NULL ORDER BY id"
        ).fetchall()
    )
    return looked_up


def test_the_captions_word_index_finds_what_a_scan_does_through_every_write(tmp_path):
    catalog = Catalog(tmp_path / CATALOG)
    rows = [_row(key, caption) for key, caption in _WORDED.items()]
    ids, _ = catalog.assign_ids(rows)
    catalog.write(rows, ids)
    a, b, c, d, e, _ = ids
    found = _found(catalog)
    assert found["ana"] == [a, c] and found["cumple"] == [a, e] and found["nana"] == []  # not banana
    assert found["ana's boat"] == [c] and found["202"] == [c] and found["東京"] == [d]
    assert found["¡"] == [a]  # no letters to look up: the captions are scanned
    assert found["cumple_años"] == [e] and found["años raro"] == []  # "_" is part of a word
    catalog.set_facts([(None, None, None, None, (), None, "new words", "b.jpg")])  # an edited caption
    catalog.write([_row("a.jpg", None)], [a])  # its caption taken out, under its own id
    catalog.write([_row("c.jpg", "Ana again")], [max(ids) + 1])  # a key written under another id
    catalog.delete(["d.jpg"])
    found = _found(catalog)
    assert found["ana"] == [max(ids) + 1] and found["new"] == [b] and found["banana"] == []
    assert found["東京"] == [] and found["cumple"] == [e]
    catalog.close()


def test_an_older_catalog_gets_its_captions_word_index_when_opened_for_a_build(tmp_path, monkeypatch):
    catalog = Catalog(tmp_path / CATALOG)
    rows = [_row(key, caption) for key, caption in _WORDED.items()]
    catalog.write(rows, catalog.assign_ids(rows)[0])
    _without_word_index(catalog._db)  # as a version before it left it
    catalog.close()
    old = Catalog(tmp_path / CATALOG, readonly=True)  # a Hub cache's: searched by a scan, as before
    assert not old.caption_words and len(old.ids_captioned("ana")) == 2
    old.close()
    catalog = Catalog(tmp_path / CATALOG)  # a build's
    assert len(_found(catalog)["ana"]) == 2
    catalog.close()
    # Where SQLite has no FTS5, a catalog has no word index, and captions are scanned.
    monkeypatch.setattr(
        "indexing.catalog._CAPTION_WORDS", ("CREATE VIRTUAL TABLE caption_words USING no_such_module(x)",)
    )
    bare = Catalog(tmp_path / "bare.sqlite")
    bare.write(rows, bare.assign_ids(rows)[0])
    assert not bare.caption_words and len(bare.ids_captioned("ana")) == 2
    bare.close()
