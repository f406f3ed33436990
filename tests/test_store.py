"""The index format: older indexes are migrated in place on open, newer ones refused clearly."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from indexing.catalog import CATALOG, FORMAT_VERSION, Catalog
from indexing.errors import BuscadorError
from indexing.files import file_digest
from indexing.hub import verify
from indexing.search import Searcher
from indexing.store import INDEX, MANIFEST, VECTORS, IndexStore, open_for_build, read_manifest


def _as_format_1(index_dir: Path) -> None:
    """Turn a current index into what format 1 wrote: vectors (float32) and thumbnails inside the
    catalog, a `size` column and no `content`, `meta` or `taken` column, version 1 everywhere."""
    store = IndexStore(index_dir)
    ids = store.catalog.ids().tolist()
    vectors, thumbs = store.vectors.read(ids), store.thumbnails.get_many(ids)
    store.catalog.close()
    db = sqlite3.connect(index_dir / CATALOG)
    with db:
        db.execute("DROP INDEX items_content")
        db.execute("DROP INDEX items_taken")
        db.execute("ALTER TABLE items DROP COLUMN taken")
        db.execute("ALTER TABLE items DROP COLUMN content")
        db.execute("ALTER TABLE items DROP COLUMN meta")
        db.execute("ALTER TABLE items ADD COLUMN size INTEGER")
        db.execute("ALTER TABLE items ADD COLUMN vector BLOB")
        db.execute("CREATE TABLE thumbnails (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL)")
        for i, vector in zip(ids, vectors, strict=True):
            db.execute("UPDATE items SET size = 1234, vector = ? WHERE id = ?", (vector.tobytes(), i))
            db.execute("INSERT INTO thumbnails VALUES (?, ?)", (i, thumbs[i]))
        db.execute("UPDATE meta SET value = '1' WHERE name = 'format_version'")
    db.close()
    (index_dir / VECTORS).unlink()
    shutil.rmtree(index_dir / "thumbs")
    manifest = json.loads((index_dir / MANIFEST).read_text())
    manifest["format_version"] = 1
    manifest["files"] = {name: file_digest(index_dir / name) for name in (INDEX, CATALOG)}
    del manifest["thumbnails"], manifest["vectors"]
    (index_dir / MANIFEST).write_text(json.dumps(manifest))


def _columns(index_dir: Path) -> list[str]:
    db = sqlite3.connect(index_dir / CATALOG)
    names = [row[1] for row in db.execute("PRAGMA table_info(items)")]
    db.close()
    return names


def test_a_format_1_index_is_migrated_in_place_when_opened(tmp_path, built_index, embedder, collection):
    old = tmp_path / "old"
    shutil.copytree(built_index, old)
    _as_format_1(old)
    with pytest.raises(BuscadorError, match="catalog format 1, not 5"):
        Catalog(old / CATALOG, readonly=True)

    searcher = Searcher.open(old, embedder)
    hit = searcher.by_image(collection / "img_008.png", k=1)[0]
    assert hit.key == "img_008.png" and hit.score > 0.999
    assert searcher.thumbnail(hit.id) == IndexStore(built_index).thumbnail(hit.id)  # moved to a shard
    assert np.allclose(searcher.store.vector(hit.id), IndexStore(built_index).vector(hit.id))
    assert set(_columns(old)) == {
        *("id", "key", "label", "fingerprint", "content", "meta"),
        *("taken", "lat", "lon", "place", "country", "seconds", "tags", "rating"),  # added, no new format
        *("caption", "caption_key", "tags_key"),
    }
    manifest = verify(old, thumbnails=True)  # the rewritten manifest matches the migrated files
    assert manifest["format_version"] == FORMAT_VERSION == 5
    assert Catalog(old / CATALOG, readonly=True).format_version() == 5
    assert IndexStore(old).count == 12  # opening again changes nothing


def test_a_build_on_a_format_1_index_migrates_it_first(tmp_path, built_index, embedder, collection):
    from indexing.build import build_index
    from indexing.sources import FolderSource

    old = tmp_path / "old"
    shutil.copytree(built_index, old)
    _as_format_1(old)
    summary = build_index(FolderSource(collection), old, embedder, progress=False)
    assert (summary.unchanged, summary.added) == (12, 0)
    assert read_manifest(old)["format_version"] == 5 and "size" not in _columns(old)


def test_a_newer_index_is_refused_with_advice(tmp_path, built_index):
    newer = tmp_path / "newer"
    shutil.copytree(built_index, newer)
    manifest = json.loads((newer / MANIFEST).read_text())
    (newer / MANIFEST).write_text(json.dumps(manifest | {"format_version": 99}))
    with pytest.raises(BuscadorError, match=r"index format 99.*Upgrade Buscador Visual"):
        IndexStore(newer)
    db = sqlite3.connect(newer / CATALOG)
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'format_version'")
    db.close()
    with pytest.raises(BuscadorError, match="newer Buscador Visual"):
        open_for_build(newer, "m", 512)


def test_an_old_index_in_a_read_only_place_is_not_touched(tmp_path, built_index):
    old = tmp_path / "old"
    shutil.copytree(built_index, old)
    _as_format_1(old)
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in (MANIFEST, INDEX, CATALOG):  # the Hub cache links its files
        (cache / name).symlink_to(old / name)
    with pytest.raises(BuscadorError, match="cannot be migrated where it is: pull it into a folder"):
        IndexStore(cache)
    assert "size" in _columns(old)


def test_an_ivfpq_index_grows_by_new_and_removed_rows_while_its_vectors_are_the_ones_it_was_built_from(
    tmp_path, monkeypatch
):
    from indexing import ann
    from indexing.catalog import Row
    from indexing.store import Writer, write_index
    from indexing.vectors import VectorFile
    from tests.test_ann import low_rank

    builds = []
    build = ann.build
    monkeypatch.setattr(ann, "build", lambda *a, **k: builds.append(a[0]) or build(*a, **k))
    vectors = low_rank(3000, seed=9)

    def write(numbers: range, *, delete: range = range(0)) -> dict:
        catalog = open_for_build(tmp_path, "test/low-rank", 64)
        writer = Writer(tmp_path, catalog, 64)
        writer.delete(f"{i}.jpg" for i in delete)
        rows = [Row(f"{i}.jpg", f"{i}.jpg", "f", vectors[i], b"", f"c{i}") for i in numbers]
        if rows:
            writer.write(rows)
        manifest = write_index(tmp_path, catalog, index_type="ivfpq", source={}, changes={})
        catalog.close()
        return manifest

    write(range(2400))
    manifest = write(range(2400, 2700), delete=range(50))  # grown: 300 new, 50 ghosts
    assert builds == ["ivfpq"] and manifest["ghosts"] == list(range(50)) and manifest["count"] == 2650
    store = IndexStore(tmp_path)
    assert store.count == 2650
    hits = store.search(vectors[:60], 10)
    assert all(i >= 50 for row in hits for i, _ in row)  # the removed rows are left out
    assert [row[0][0] for row in store.search(vectors[2690:2700], 1)] == list(range(2690, 2700))
    store.catalog.close()
    VectorFile(tmp_path / VECTORS, 64).write(np.array([60]), vectors[61:62])  # a vector it holds, changed
    write(range(2700, 2710))
    assert builds == ["ivfpq", "ivfpq"]  # so built again
