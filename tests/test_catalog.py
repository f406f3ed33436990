"""The catalog: ids kept and given, folders and periods found through SQL, format versions."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from indexing.catalog import CATALOG, FORMAT_VERSION, Catalog, Row
from indexing.errors import BuscadorError


def _row(key: str, content: str, taken: str | None = None) -> Row:
    return Row(key, key, f"fp-{content}", np.zeros(4, np.float32), b"", content=content, taken=taken)


def _write(catalog: Catalog, rows: list[Row]) -> list[int]:
    ids, _ = catalog.assign_ids(rows)
    catalog.write(rows, ids)
    return ids


@pytest.fixture
def catalog(tmp_path):
    opened = Catalog(tmp_path / CATALOG)
    yield opened
    opened.close()


def test_an_image_keeps_its_id_while_its_content_stays_and_gets_a_new_one_when_it_changes(catalog):
    assert _write(catalog, [_row("a.jpg", "A"), _row("b.jpg", "B")]) == [0, 1]
    ids, replaced = catalog.assign_ids([_row("a.jpg", "A"), _row("b.jpg", "B2"), _row("c.jpg", "C")])
    assert (ids, replaced) == ([0, 2, 3], [1])  # b.jpg's new picture is a new image; its old id goes
    catalog.write([_row("a.jpg", "A"), _row("b.jpg", "B2"), _row("c.jpg", "C")], ids)
    assert catalog.fingerprints() == {"a.jpg": "fp-A", "b.jpg": "fp-B2", "c.jpg": "fp-C"}
    assert catalog.delete(["c.jpg", "gone.jpg"]) == [3]
    assert _write(catalog, [_row("d.jpg", "D")]) == [4]  # ids are never given twice
    assert catalog.by_contents(["A", "C", "D"]) == {"A": 0, "D": 4}


def test_folders_are_found_by_their_names_taken_literally(catalog):
    _write(
        catalog, [_row(k, k) for k in ("a_b/1.jpg", "axb/2.jpg", "x/a_b/3.jpg", "a_b2/4.jpg", "50%/5.jpg")]
    )
    assert catalog.folders_named("a_b") == ["a_b", "x/a_b"]  # "_" is no LIKE wildcard here
    assert catalog.folders_named("A_B", most=1) == ["a_b"]
    assert catalog.folders_named("50%") == ["50%"]
    assert catalog.ids_under("a_b/").tolist() == [0]  # not a_b2/
    assert catalog.top_folders(2) == [("50%", 1), ("a_b", 1)]


def test_a_period_is_listed_a_page_at_a_time_in_the_order_the_photos_were_taken(catalog):
    taken = ["2019-07-14T18:00:00", "2019-06-01T09:00:00", "", "2020-01-01T00:00:00", "2019-06-01T09:00:00"]
    _write(catalog, [_row(f"f/{i}.jpg", str(i), when) for i, when in enumerate(taken)])
    assert catalog.taken_page("2019", "2020", "", 2, 0) == [1, 4]  # the same moment: in id order
    assert catalog.taken_page("2019", "2020", "", 2, 2) == [0]
    assert catalog.taken_page("2019", "2021", "g/", 10, 0) == []
    assert catalog.span_taken() == ("2019-06-01T09:00:00", "2020-01-01T00:00:00")
    assert catalog.years_taken() == {"2019": 3, "2020": 1}
    assert catalog.taken_order(np.array([2, 3, 0, 1])).tolist() == [1, 0, 3, 2]  # undated last


def test_a_catalog_of_another_format_is_refused_read_only_and_a_newer_one_for_writing(tmp_path, catalog):
    catalog.close()
    db = sqlite3.connect(tmp_path / CATALOG)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'format_version'", (str(FORMAT_VERSION + 1),))
    db.close()
    with pytest.raises(BuscadorError, match=f"catalog format {FORMAT_VERSION + 1}, not {FORMAT_VERSION}"):
        Catalog(tmp_path / CATALOG, readonly=True)
    with pytest.raises(BuscadorError, match="written by a newer Buscador Visual"):
        Catalog(tmp_path / CATALOG)
    (tmp_path / "other.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(
        BuscadorError, match=r"not a readable index catalog .*; move .* aside and build the index again"
    ):
        Catalog(tmp_path / "other.sqlite")
