"""Index store: what an index directory holds, and how it is written and read back.

    manifest.json   model, dimension, count, source, index type with its search settings and
                    measured recall, format version, build time, the dates taken (how many, the
                    span, each year's count), the places (how many, each country's count, the
                    towns with the most) and the SHA-256 of the other files. Written last: it
                    marks a finished build.
    catalog.sqlite  one row per image: id, key (path or dataset row), label, fingerprint,
                    content hash, dataset fields, date taken, position and its town.
                    Committed batch by batch, so it is also the build's checkpoint. Records its
                    format version; older catalogs are migrated in place on open (numbered
                    migrations). The columns of when and where are ones a build adds where they
                    lack (no new format: an index in a read-only Hub cache opens as it is,
                    without them).
    vectors.f16     the embeddings, float16, row = id: the one durable copy (indexing.vectors).
    index.faiss     the FAISS index (ids = catalog ids): kept by a build that changed nothing,
                    grown by one that added and removed a few images, else built again from the
                    vectors (indexing.ann chooses, grows and tunes it).
    thumbs/*.sqlite the thumbnails, in shards fetched on demand (indexing.thumbnails).
    .build.lock     held (flock) by the build writing the folder; not part of the index.

Search needs the first four: one small download. Nothing here is pickled; index.faiss and
manifest.json are replaced atomically (temp + rename).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from indexing import ann, config
from indexing.dates import Period
from indexing.errors import BuscadorError
from indexing.files import file_digest, replace_atomically
from indexing.places import NAMING, Near, country_name
from indexing.thumbnails import Thumbnails
from indexing.vectors import NAME as VECTORS
from indexing.vectors import VectorFile

log = logging.getLogger(__name__)

FORMAT_VERSION = 5
CATALOG = "catalog.sqlite"
INDEX = "index.faiss"
MANIFEST = "manifest.json"
# Held by the build writing the folder (flock); never uploaded.
BUILD_LOCK = ".build.lock"
# What search needs, downloaded together; thumbnails come apart (indexing.thumbnails).
SEARCH_FILES = (MANIFEST, INDEX, CATALOG, VECTORS)
# The towns with the most photos the manifest names (the app lists them).
TOP_TOWNS = 10
# Subsets (a folder's images, a period's) an IndexStore keeps at hand for searches among them.
SUBSETS_KEPT = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    label TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    content TEXT,
    meta TEXT,
    taken TEXT,
    lat REAL,
    lon REAL,
    place TEXT,
    country TEXT
);
"""
# Columns a build adds where they lack (no new format: an index in a read-only Hub cache opens as
# it is, without them): when and where each photo was taken.
_ADDED = {"taken": "TEXT", "lat": "REAL", "lon": "REAL", "place": "TEXT", "country": "TEXT"}
_INDEXES = """
CREATE INDEX IF NOT EXISTS items_content ON items(content);
CREATE INDEX IF NOT EXISTS items_taken ON items(taken);
CREATE INDEX IF NOT EXISTS items_position ON items(lat, lon);
CREATE INDEX IF NOT EXISTS items_country ON items(country);
CREATE INDEX IF NOT EXISTS items_unplaced ON items(id) WHERE lat IS NOT NULL AND place IS NULL;
"""


def _m002_drop_size(db: sqlite3.Connection) -> None:
    """Format 2: the file size column was never read."""
    db.execute("ALTER TABLE items DROP COLUMN size")


def _m003_content(db: sqlite3.Connection) -> None:
    """Format 3: each image's content hash, so a copied or renamed file reuses its vector."""
    db.execute("ALTER TABLE items ADD COLUMN content TEXT")


def _m004_meta(db: sqlite3.Connection) -> None:
    """Format 4: each image's own fields from its dataset (caption, artist, URL...), as JSON."""
    db.execute("ALTER TABLE items ADD COLUMN meta TEXT")


def _m005_files_apart(db: sqlite3.Connection) -> None:
    """Format 5: vectors move to vectors.f16 (float16, row = id) and thumbnails to thumbs/ shards,
    so the catalog keeps only what search needs."""
    folder = Path(db.execute("PRAGMA database_list").fetchone()[2]).parent
    dim = int(db.execute("SELECT value FROM meta WHERE name='embedding_dim'").fetchone()[0])
    vectors, thumbs = VectorFile(folder / VECTORS, dim), Thumbnails(folder)
    cursor = db.execute(
        "SELECT i.id, i.vector, t.jpeg FROM items i LEFT JOIN thumbnails t ON t.id = i.id ORDER BY i.id"
    )
    while chunk := cursor.fetchmany(4096):
        ids = np.array([row[0] for row in chunk], np.int64)
        vectors.write(ids, np.frombuffer(b"".join(row[1] for row in chunk), np.float32).reshape(-1, dim))
        thumbs.write({row[0]: row[2] for row in chunk if row[2]})
    db.execute("ALTER TABLE items DROP COLUMN vector")
    db.execute("DROP TABLE thumbnails")


# Format version → the migration that brings a catalog of the version before it up to it.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _m002_drop_size,
    3: _m003_content,
    4: _m004_meta,
    5: _m005_files_apart,
}


@dataclass(frozen=True)
class Row:
    """One embedded image on its way into the catalog."""

    key: str
    label: str
    fingerprint: str
    vector: np.ndarray
    thumbnail: bytes
    content: str | None = None  # the image's content hash
    meta: dict[str, str] | None = None  # the source's own fields for it
    id: int | None = None  # its id, when the build chooses it (a shard build: the source position)
    taken: str | None = None  # when it was taken (indexing.dates; "": it does not say; None: not read yet)
    lat: float | None = None  # where it was taken (degrees; None: it does not say, or not read yet)
    lon: float | None = None


@dataclass(frozen=True)
class Item:
    """What search results need to know about an indexed image."""

    id: int
    key: str
    label: str
    meta: dict[str, str] | None = None
    taken: str | None = None  # when it was taken, where its file says ("2019-07-14T18:22:05")
    place: str | None = None  # the town nearest to where it was taken, where its file says
    country: str | None = None  # that town's country (ISO code, "ES")


class Catalog:
    """The SQLite table of indexed images. Each `write` is one transaction: a checkpoint.

    Opened for writing, an older catalog is migrated to FORMAT_VERSION first; opened read-only,
    it must already be at FORMAT_VERSION.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._build_lock: IO[str] | None = None  # held while opened for a build
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            if not readonly:
                self._db.executescript(_SCHEMA)
                self._db.execute("PRAGMA synchronous=FULL")
                if self._migrate():
                    self._db.execute("VACUUM")  # give back the space of what moved out
                self._add_columns()
                self._db.executescript(_INDEXES)
            self._db.execute("SELECT count(*) FROM meta").fetchone()
            version = self.format_version()
            # Whether it records dates taken and places: a catalog of an older build, read-only,
            # does not.
            self.dated = "taken" in self._columns()
            self.located = "lat" in self._columns()
        except sqlite3.DatabaseError as exc:
            raise BuscadorError(f"{path} is not a readable index catalog ({exc})") from None
        if version != FORMAT_VERSION:
            self._db.close()
            raise BuscadorError(
                f"{path} has catalog format {version}, not {FORMAT_VERSION}; open its index for "
                "writing (build or search it from a writable folder) to migrate it"
            )

    def format_version(self) -> int:
        return int(self.get_meta("format_version") or 1)

    def _columns(self) -> set[str]:
        return {row[1] for row in self._db.execute("PRAGMA table_info(items)")}

    def _add_columns(self) -> None:
        """Add the columns of _ADDED this catalog lacks. An older catalog's images get their
        headers read again (`unread`) when it lacked the places: it read their dates alone."""
        missing = [name for name in _ADDED if name not in self._columns()]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for name in missing:
                self._db.execute(f"ALTER TABLE items ADD COLUMN {name} {_ADDED[name]}")
            if "lat" in missing and "taken" not in missing:
                self._set_meta_locked({"headers_unread": "1"})

    def _migrate(self) -> bool:
        """Bring the catalog to FORMAT_VERSION, one numbered migration at a time, in one transaction.
        Returns whether it migrated anything."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            # A catalog just created has no version yet: its schema is the current one.
            found = self.get_meta("format_version")
            version = int(found) if found else FORMAT_VERSION
            if version > FORMAT_VERSION:
                raise BuscadorError(
                    f"{self.path} was written by a newer Buscador Visual (catalog format {version}; "
                    f"this version reads up to {FORMAT_VERSION}). Upgrade Buscador Visual."
                )
            for target in range(version + 1, FORMAT_VERSION + 1):
                MIGRATIONS[target](self._db)
                log.info("migrated %s to catalog format %d", self.path, target)
            self._set_meta_locked({"format_version": str(FORMAT_VERSION)})
        return version < FORMAT_VERSION

    @classmethod
    def open_for_build(cls, out_dir: Path, model: str, dim: int) -> Catalog:
        """Open (or create) the catalog of `out_dir`, refusing one made with another model, a
        folder this process cannot write to, or a folder of other files (an index written among
        them: a slip of `--out`)."""
        check_index_folder(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BuscadorError(f"cannot create the index folder {out_dir}: {exc.strerror}") from None
        if not all(os.access(path, os.W_OK) for path in (out_dir, out_dir / CATALOG) if path.exists()):
            raise BuscadorError(
                f"cannot write to {out_dir} (read-only for this user): build into a folder you "
                "can write to (--out), or copy this index there first"
            )
        lock = _hold_build_lock(out_dir)
        try:
            catalog = cls(out_dir / CATALOG)
        except BaseException:
            lock.close()
            raise
        catalog._build_lock = lock
        built_with = catalog.get_meta("model")
        built_dim = catalog.get_meta("embedding_dim")
        if built_with is None:
            catalog.set_meta(model=model, embedding_dim=str(dim))
        elif built_with != model or int(built_dim or 0) != dim:
            catalog.close()
            raise BuscadorError(
                f"{out_dir} holds an index built with model {built_with} ({built_dim}-d), "
                f"not {model} ({dim}-d). Build into another --out directory, or delete {out_dir}."
            )
        return catalog

    def close(self) -> None:
        self._db.close()
        if self._build_lock is not None:
            self._build_lock.close()  # lets the next build in

    def get_meta(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, **values: str) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._set_meta_locked(values)

    def _set_meta_locked(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT INTO meta(name, value) VALUES(?, ?) ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            values.items(),
        )

    def record_precision(self, used: str) -> None:
        """Add `used` ("bf16", "fp32", "bf16+fp32", or "" when the model did not run) to the
        precisions the vectors were made in."""

        def parts(text: str) -> set[str]:
            return set(filter(None, text.split("+")))

        known = parts(self.get_meta("image_precision") or "")
        if parts(used) - known:
            self.set_meta(image_precision="+".join(sorted(known | parts(used))))

    def by_contents(self, contents: list[str]) -> dict[str, int]:
        """content hash → the id of an indexed image with it, for those of `contents` indexed."""
        rows = self._rows_where_in(
            "SELECT content, MIN(id) FROM items WHERE content IN ({}) GROUP BY content", contents
        )
        return dict(rows)

    def fingerprints(self) -> dict[str, str]:
        """key → fingerprint of everything indexed so far."""
        with self._lock:
            return dict(self._db.execute("SELECT key, fingerprint FROM items"))

    def assign_ids(self, rows: list[Row]) -> tuple[list[int], list[int]]:
        """The id each row will have, and the ids that go with the rows they replace. A row has
        its own id when it has one (a shard's), else its key's while the key holds the same
        content (a new caption, a file touched), else the next of the sequence, in order: an
        image whose content changed is a new image under an old name, so its old id goes as a
        deleted image's does, and an HNSW index grows instead of being built again (ann.grow).
        Writes nothing: `write` commits them."""
        with self._lock:
            next_id = int(self.get_meta("next_id") or 0)
            ids, replaced = [], []
            for row in rows:
                found = self._db.execute("SELECT id, content FROM items WHERE key=?", (row.key,)).fetchone()
                if row.id is not None:
                    ids.append(row.id)
                elif found and found[1] == row.content:
                    ids.append(found[0])
                else:
                    ids.append(next_id)
                    next_id += 1
                if found and found[0] != ids[-1]:
                    replaced.append(found[0])
        return ids, sorted(set(replaced) - set(ids))  # (shard rows may trade places)

    def write(self, rows: list[Row], ids: list[int]) -> None:
        """Insert or replace these rows under these ids (from `assign_ids`), in one transaction: a
        key's row under another id replaces it."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            next_id = int(self.get_meta("next_id") or 0)
            for row, item_id in zip(rows, ids, strict=True):
                meta = json.dumps(row.meta, ensure_ascii=False) if row.meta else None
                self._db.execute(
                    "INSERT OR REPLACE INTO items(id, key, label, fingerprint, content, meta, taken, "
                    "lat, lon) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item_id,
                        row.key,
                        row.label,
                        row.fingerprint,
                        row.content,
                        meta,
                        row.taken,
                        row.lat,
                        row.lon,
                    ),
                )
            self._set_meta_locked({"next_id": str(max([next_id, *(i + 1 for i in ids)]))})

    def delete(self, keys: Iterable[str]) -> list[int]:
        """Remove these keys (images gone from the source); returns the ids that went."""
        gone = []
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key in keys:
                row = self._db.execute("DELETE FROM items WHERE key=? RETURNING id", (key,)).fetchone()
                if row:
                    gone.append(row[0])
        return gone

    def ids_under(self, prefix: str) -> np.ndarray:
        """The ids whose key starts with `prefix`, in order (int64)."""
        return self._ids("WHERE key >= ? AND key < ?", (prefix, _after(prefix)))

    def top_folders(self, most: int) -> list[tuple[str, int]]:
        """The `most` top-level folders holding the most images, with how many (keys are paths)."""
        with self._lock:
            return self._db.execute(
                "SELECT substr(key, 1, instr(key, '/') - 1) AS folder, COUNT(*) AS n FROM items "
                "WHERE instr(key, '/') > 0 GROUP BY folder ORDER BY n DESC, folder LIMIT ?",
                (most,),
            ).fetchall()

    def top_towns(self, most: int) -> list[tuple[str, str, int]]:
        """The `most` towns near which the most images were taken: (town, country code, count)."""
        if not self.located:
            return []
        with self._lock:
            return self._db.execute(
                "SELECT place, country, COUNT(*) AS n FROM items WHERE place IS NOT NULL AND place != '' "
                "GROUP BY place, country ORDER BY n DESC, place LIMIT ?",
                (most,),
            ).fetchall()

    def folders_named(self, name: str, most: int = 5) -> list[str]:
        """Up to `most` folders whose path ends with the folders `name` (case aside): where
        "2019" may be, when no key starts with "2019/"."""
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found: dict[str, None] = {}
        with self._lock:
            cursor = self._db.execute(
                "SELECT key FROM items WHERE key LIKE ? ESCAPE '\\' OR key LIKE ? ESCAPE '\\'",
                (escaped + "/%", "%/" + escaped + "/%"),
            )
            folder = re.compile(f"(?:^|/)({re.escape(name)})/", re.IGNORECASE)
            for (key,) in cursor:
                if match := folder.search(key):
                    found[key[: match.end(1)]] = None
                if len(found) == most:
                    break
        return list(found)

    def ids(self) -> np.ndarray:
        """Every id, in order (int64)."""
        return self._ids("", ())

    def items(self, ids: Iterable[int]) -> dict[int, Item]:
        """id → Item for those of these ids that are indexed."""
        return {
            i: Item(i, key, label, json.loads(meta) if meta else None, taken or None, place, country)
            for i, (key, label, _, _, meta, taken, _, _, place, country) in self.records(ids).items()
        }

    def records(self, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
        """id → (key, label, fingerprint, content, meta JSON, date taken, lat, lon, place,
        country) for those of these ids that are indexed (None for what the catalog does not
        record)."""
        wanted = sorted({int(i) for i in ids})
        taken = "taken" if self.dated else "NULL"
        where = "lat, lon, place, country" if self.located else "NULL, NULL, NULL, NULL"
        query = f"SELECT id, key, label, fingerprint, content, meta, {taken}, {where} "
        query += "FROM items WHERE id IN ({})"
        rows = self._rows_where_in(query, wanted)
        return {i: tuple(record) for i, *record in rows}

    def unread(self) -> list[str]:
        """The keys of the images whose header (when and where taken) was not read yet, by id."""
        with self._lock:
            return [
                key for (key,) in self._db.execute("SELECT key FROM items WHERE taken IS NULL ORDER BY id")
            ]

    def forget_headers(self) -> None:
        """Mark every image's header unread (it was read before places were), in one transaction
        with the note that asked for it."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE items SET taken=NULL")
            self._db.execute("DELETE FROM meta WHERE name='headers_unread'")

    def set_facts(self, facts: Iterable[tuple[str, float | None, float | None, str]]) -> None:
        """Record (date taken, lat, lon, key) ("" and None for an image that does not say), in one
        transaction; each image's town is named again (`unplaced`)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE items SET taken=?, lat=?, lon=?, place=NULL, country=NULL WHERE key=?", facts
            )

    def unplaced(self) -> list[tuple[int, float, float]]:
        """(id, lat, lon) of the images with a position whose town is not named yet: read through
        an index of those alone (a scan took 0.2 s at a million photos, each build and each look
        of --watch)."""
        with self._lock:
            return self._db.execute(
                "SELECT id, lat, lon FROM items WHERE lat IS NOT NULL AND place IS NULL ORDER BY id"
            ).fetchall()

    def forget_places(self) -> None:
        """Mark every position's town unnamed (another rule named them)."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE items SET place=NULL, country=NULL WHERE lat IS NOT NULL")

    def set_places(self, places: Iterable[tuple[str, str, int]]) -> None:
        """Record (town, country code, id) for images with a position, in one transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE items SET place=?, country=? WHERE id=?", places)

    def positions(
        self, south: float, north: float, west: float, east: float
    ) -> list[tuple[int, float, float]]:
        """(id, lat, lon) of the images taken inside this box (`west` > `east`: across the 180th
        meridian), in id order; read through the latitude index."""
        across = "(lon >= ? OR lon <= ?)" if west > east else "lon BETWEEN ? AND ?"
        with self._lock:
            return self._db.execute(
                f"SELECT id, lat, lon FROM items WHERE lat BETWEEN ? AND ? AND {across} ORDER BY id",
                (south, north, west, east),
            ).fetchall()

    def ids_in_country(self, code: str) -> np.ndarray:
        """The ids of the images taken in country `code` (as their nearest town's), in order."""
        return self._ids("WHERE country=?", (code,))

    def countries(self) -> dict[str, int]:
        """How many images were taken in each country, for those that have any ("ES": 340; not those
        taken in none, at sea)."""
        if not self.located:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT country, COUNT(*) FROM items WHERE country IS NOT NULL AND country != '' "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            )
            return dict(rows.fetchall())

    def taken_order(self, ids: np.ndarray) -> np.ndarray:
        """These ids in the order their images were taken (those that do not say last, each in
        id order)."""
        rows = (
            self._rows_where_in("SELECT id, taken FROM items WHERE id IN ({})", ids.tolist())
            if self.dated
            else []
        )
        taken = dict(rows)
        return np.array(
            sorted((int(i) for i in ids), key=lambda i: (not taken.get(i), taken.get(i) or "", i)), np.int64
        )

    def ids_taken(self, start: str, end: str) -> np.ndarray:
        """The ids of the images taken from `start` (included) to `end` (left out), in order."""
        return self._ids("WHERE taken >= ? AND taken < ? AND taken != ''", (start, end))

    def taken_page(self, start: str, end: str, prefix: str, most: int, skip: int) -> list[int]:
        """Ids `skip` + 1 to `skip` + `most` of the images taken from `start` to `end` (whose key
        starts with `prefix`, where given), in the order they were taken: a page read through the
        date index, not the whole period (0.1 ms a page at a million photos, where listing a
        year's took 60 ms)."""
        under = " AND key >= ? AND key < ?" if prefix else ""
        values = [start, end, *((prefix, _after(prefix)) if prefix else ()), most, skip]
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM items WHERE taken >= ? AND taken < ? AND taken != ''{under} "
                "ORDER BY taken, id LIMIT ? OFFSET ?",
                values,
            )
            return [row[0] for row in rows]

    def span_taken(self) -> tuple[str, str]:
        """The first date taken and the last ("", "" when no image says): two seeks in the date
        index (a count alongside made it a scan: 0.7 s at a million images)."""
        if not self.dated:
            return "", ""
        with self._lock:
            first, last = (
                self._db.execute(f"SELECT {end}(taken) FROM items WHERE taken > ''").fetchone()[0]
                for end in ("MIN", "MAX")
            )
        return first or "", last or ""

    def years_taken(self) -> dict[str, int]:
        """How many images were taken each year, for the years that have any ("2019": 340)."""
        if not self.dated:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT substr(taken, 1, 4), COUNT(*) FROM items WHERE taken != '' GROUP BY 1 ORDER BY 1"
            )
            return dict(rows.fetchall())

    def _ids(self, where: str, values: tuple[Any, ...]) -> np.ndarray:
        """The ids of the rows `where` (an SQL WHERE clause, or "" for all) picks with `values`,
        in order (int64)."""
        with self._lock:
            cursor = self._db.execute(f"SELECT id FROM items {where} ORDER BY id", values)
            return np.fromiter((row[0] for row in cursor), np.int64)

    def _rows_where_in(self, query: str, values: list[Any]) -> list[tuple[Any, ...]]:
        """The rows of `query`, whose `{}` is filled with a placeholder for each of `values`, asked
        500 values at a time (SQLite allows 999 parameters)."""
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            for start in range(0, len(values), 500):
                part = values[start : start + 500]
                rows.extend(self._db.execute(query.format(",".join("?" * len(part))), part))
        return rows

    def content_digest(self) -> str:
        """Identifies what the index holds (ids, keys, labels, fields, fingerprints), whatever the
        bytes of its files: two builds of the same collection give the same digest."""
        h = hashlib.sha256()
        # One encoder for every row: json.dumps makes a new one a call when given an option (a
        # third of the time at a million rows); the text is the same.
        encode = json.JSONEncoder(ensure_ascii=False).encode
        with self._lock:
            for row in self._db.execute("SELECT id, key, label, fingerprint, meta FROM items ORDER BY id"):
                h.update(encode(row).encode())
        return h.hexdigest()


def _after(prefix: str) -> str:
    """The first text after every text that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def check_index_folder(out_dir: Path) -> None:
    """Refuse to start an index in a folder that holds files of other kinds and no index (hidden
    ones aside: a desktop's .DS_Store)."""
    if not out_dir.is_dir() or (out_dir / CATALOG).exists() or (out_dir / MANIFEST).exists():
        return
    others = sorted(entry.name for entry in out_dir.iterdir() if not entry.name.startswith("."))
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise BuscadorError(
            f"{out_dir} holds other files ({shown}) and no index: give the index a folder of its own, "
            f"a new one (such as {out_dir / 'index'}) or an empty one",
            "not_an_index_folder",
        )


def _hold_build_lock(out_dir: Path) -> IO[str]:
    """The folder's build lock, taken (flock; closing the file lets go of it). Two builds writing
    one folder would give two images the same id: the second is refused."""
    lock = (out_dir / BUILD_LOCK).open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise BuscadorError(
            f"another build is writing to {out_dir}: wait for it to finish, or build into another "
            "--out folder"
        ) from None
    return lock


def build_running(out_dir: Path) -> bool:
    """Whether a build (or merge) is writing `out_dir` now: its lock is held."""
    try:
        lock = (out_dir / BUILD_LOCK).open("r")
    except OSError:  # never built here, or not ours to read: no build of ours is running
        return False
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # closing the file lets go of the shared lock


class Writer:
    """Writes embedded rows into an index folder: vectors and thumbnails first, then the catalog
    rows in one transaction, the checkpoint. A crash before that commit leaves rows the resumed
    build writes again under the same ids."""

    def __init__(self, out_dir: Path, catalog: Catalog, dim: int) -> None:
        self.catalog = catalog
        self.vectors = VectorFile(out_dir / VECTORS, dim)
        self.thumbnails = Thumbnails(out_dir)

    def write(self, rows: list[Row]) -> None:
        ids, replaced = self.catalog.assign_ids(rows)
        self.vectors.write(np.array(ids, np.int64), np.stack([r.vector for r in rows]))
        self.thumbnails.write({i: r.thumbnail for i, r in zip(ids, rows, strict=True)})
        self.catalog.write(rows, ids)
        self.thumbnails.delete(replaced)

    def delete(self, keys: Iterable[str]) -> int:
        gone = self.catalog.delete(keys)
        self.thumbnails.delete(gone)
        return len(gone)

    def stored(self, item_id: int) -> tuple[np.ndarray, bytes]:
        """The vector and thumbnail of an indexed image."""
        return self.vectors.read([item_id])[0], self.thumbnails.get(item_id) or b""


def write_index(
    out_dir: Path,
    catalog: Catalog,
    *,
    index_type: str,
    source: dict[str, Any],
    changes: dict[str, int],
    memory_budget_mb: int = config.MEMORY_BUDGET_MB,
    progress: bool = False,
) -> dict[str, Any]:
    """Build index.faiss from the vectors of the catalog's ids, then write manifest.json; both
    atomically. Returns the manifest. `progress`: a progress bar while an approximate index is
    built and tuned.

    An index.faiss the last manifest describes is kept as it is when nothing it was built from has
    changed (the same images, vectors and choice of index): building and tuning it again costs
    minutes at a million images, for the same index.
    """
    model = catalog.get_meta("model") or ""
    dim = int(catalog.get_meta("embedding_dim") or 0)
    ids = catalog.ids()
    digest = catalog.content_digest()
    kind = ann.choose(index_type, len(ids), dim, memory_budget_mb)
    # The choice of index; an index built for it is kept when it also holds the same images.
    choice = {"model": model, "embedding_dim": dim, "index_type": kind, "memory_budget_mb": memory_budget_mb}
    previous = _kept_index(out_dir, choice | {"count": len(ids), "content_digest": digest})
    vectors = VectorFile(out_dir / VECTORS, dim)
    verified: dict[str, dict[str, Any]] = {}  # digests _kept_index has just checked
    if previous is None:
        stored = np.empty((len(ids), dim), np.float32)
        for start in range(0, len(ids), 65536):
            stored[start : start + 65536] = vectors.read(ids[start : start + 65536])
        built = _grown_index(out_dir, choice, ids, stored, progress=progress) or ann.build(
            kind, ids, stored, budget_mb=memory_budget_mb, progress=progress
        )
        del stored
        if built.warning:
            log.warning("%s", built.warning)
        replace_atomically(out_dir / INDEX, lambda tmp: faiss.write_index(built.index, str(tmp)))
        search = {"recall_at_10": built.recall, "search": built.params}
        if built.warning:
            search["warning"] = built.warning
        if len(built.ghosts):
            search["ghosts"] = built.ghosts.tolist()
    else:
        log.info("the index has not changed since the last build: %s kept", INDEX)
        kept = ("recall_at_10", "search", "warning", "ghosts")
        search = {name: previous[name] for name in kept if name in previous}
        verified = {name: previous["files"][name] for name in (INDEX, VECTORS)}
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "embedding_dim": dim,
        "count": len(ids),
        "index_type": kind,
        "metric": "inner_product",
        "recall_at_10": search["recall_at_10"],
        "search": search["search"],
        "memory_budget_mb": memory_budget_mb,
        "vectors": {"file": VECTORS, "dtype": "float16", "rows": vectors.rows()},
        # Indexes made before this was recorded were all made in fp32.
        "precision": {"image": catalog.get_meta("image_precision") or "fp32"},
        "source": source,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "last_build": changes,
        "content_digest": digest,
    }
    for name in ("warning", "ghosts"):  # ghosts: removed images a grown graph still holds
        if name in search:
            manifest[name] = search[name]
    if years := catalog.years_taken():
        first, last = catalog.span_taken()
        manifest["dates_taken"] = {"count": sum(years.values()), "first": first, "last": last, "years": years}
    if countries := catalog.countries():
        manifest["places"] = {
            "count": sum(countries.values()),
            "countries": countries,
            "towns": {f"{town}, {code}": n for town, code, n in catalog.top_towns(TOP_TOWNS)},
            "naming": NAMING,  # a push of the same photos with their towns named again is a change
        }
    return _write_manifest(out_dir, manifest, verified)


def _kept_index(out_dir: Path, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The last manifest of `out_dir` when its index.faiss can be kept: it says the index was built
    with the `wanted` fields (the same model, ids, keys, fingerprints, index type and budget) from
    the vector file that is there now, and the index file is the one it recorded; else None
    (build it)."""
    try:
        previous = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        same = (
            previous.get("format_version") == FORMAT_VERSION
            and all(previous.get(name) == value for name, value in wanted.items())
            and all(previous["files"].get(name) == file_digest(out_dir / name) for name in (INDEX, VECTORS))
            and {"recall_at_10", "search"} <= previous.keys()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return previous if same else None


def _grown_index(
    out_dir: Path, wanted: dict[str, Any], ids: np.ndarray, stored: np.ndarray, *, progress: bool
) -> ann.Built | None:
    """The last build's approximate index grown by the images added and removed since
    (`ann.grow`), when its manifest says it was built with the `wanted` fields, its index file is
    the one it recorded, and the vectors it was built from are still the start of the vector file
    (new images only add rows to it); else None (build it). An HNSW build at 300,000 images takes
    minutes, an IVF-PQ one at a million more than a minute; adding a few photos to them, seconds."""
    try:
        previous = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        usable = (
            wanted["index_type"] in ("hnsw", "ivfpq")
            and previous.get("format_version") == FORMAT_VERSION
            and all(previous.get(name) == value for name, value in wanted.items())
            and previous["files"].get(INDEX) == file_digest(out_dir / INDEX)
            and file_digest(out_dir / VECTORS, previous["files"][VECTORS]["size"])
            == previous["files"][VECTORS]
        )
        if not usable:
            return None
        last = ann.Built(
            faiss.read_index(str(out_dir / INDEX)),
            wanted["index_type"],
            previous["search"],
            previous["recall_at_10"],
            previous.get("warning", ""),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError):
        return None
    return ann.grow(last.index, last, ids, stored, budget_mb=wanted["memory_budget_mb"], progress=progress)


def _write_manifest(
    out_dir: Path, manifest: dict[str, Any], verified: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Record the digests of the index files in `manifest` and write it, atomically. Returns it.

    `verified` holds digests of search files just computed (not hashed again: the vectors of a
    million images are a gigabyte). A thumbnail shard untouched since the last manifest keeps its
    recorded digest (hashing a million images' thumbnails again on every small update would cost
    minutes).
    """
    verified = verified or {}
    previous: dict[str, Any] = {}
    stamp = 0
    if (out_dir / MANIFEST).exists():
        try:
            previous = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")).get("thumbnails", {})
            stamp = (out_dir / MANIFEST).stat().st_mtime_ns
        except (OSError, ValueError):
            previous = {}
    thumbs = {}
    for name in Thumbnails(out_dir).names():
        path = out_dir / name
        known = previous.get(name)
        fresh = known and path.stat().st_mtime_ns < stamp and known.get("size") == path.stat().st_size
        thumbs[name] = known if fresh else file_digest(path)
    manifest = manifest | {
        "files": {name: verified.get(name) or file_digest(out_dir / name) for name in _present(out_dir)},
        "thumbnails": thumbs,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    replace_atomically(out_dir / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return manifest


def _present(out_dir: Path) -> list[str]:
    """The search files besides the manifest that `out_dir` holds (an empty index has no vectors)."""
    return [name for name in SEARCH_FILES[1:] if (out_dir / name).exists()]


def _no_index_hint(index_dir: Path) -> str:
    """What to do where an index was expected and there is none."""
    from indexing.sources import holds_images

    if (index_dir / CATALOG).exists():
        return "a build was interrupted; run the same build again to finish it"
    shown = shlex.quote(str(index_dir))
    if index_dir.is_dir() and holds_images(index_dir):
        return (
            f"it is a folder of images: index it first, python -m indexing build {shown} --out index, "
            "and use the index folder instead"
        )
    return f"build one first: python -m indexing build FOLDER --out {shown}"


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of a finished index, or a BuscadorError saying how to make one."""
    path = index_dir / MANIFEST
    if not path.is_file():
        raise BuscadorError(f"no index at {index_dir} ({_no_index_hint(index_dir)})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuscadorError(f"{path} is unreadable ({exc}); rebuild the index") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise BuscadorError(
            f"{index_dir} uses index format {version!r}; this version of Buscador Visual reads "
            f"formats 1 to {FORMAT_VERSION}. Upgrade Buscador Visual, or rebuild the index."
        )
    return manifest


def open_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of a finished index, after migrating the index in place if it is older.

    A migration rewrites the catalog (one transaction) and then the manifest, so an interrupted
    one is finished by the next open.
    """
    manifest = read_manifest(index_dir)
    if manifest["format_version"] == FORMAT_VERSION:
        return manifest
    if any((index_dir / name).is_symlink() for name in (MANIFEST, INDEX, CATALOG)):  # the Hub's cache
        raise BuscadorError(
            f"{index_dir} uses index format {manifest['format_version']} and cannot be migrated where "
            "it is: pull it into a folder of its own (python -m indexing pull REPO --out DIR), or "
            "rebuild and push it again"
        )
    Catalog(index_dir / CATALOG).close()  # opening it for writing migrates it
    log.info("migrated %s to index format %d", index_dir, FORMAT_VERSION)
    rows = VectorFile(index_dir / VECTORS, int(manifest["embedding_dim"])).rows()
    manifest = manifest | {
        "format_version": FORMAT_VERSION,
        "vectors": {"file": VECTORS, "dtype": "float16", "rows": rows},
    }
    return _write_manifest(index_dir, manifest)


def folder_name(within: str) -> str:
    """A folder of the collection as its images' keys start: "holidays/2019" from " /holidays/2019/"
    or "holidays\\2019" ("" for the whole collection)."""
    return within.replace("\\", "/").strip().strip("/").strip()


@dataclass(frozen=True)
class Subset:
    """Some images to search among (a folder's, those taken in a period): their ids, a selector
    for the index, and, where the index would miss too many of them (an approximate index, a
    small subset: config.FOLDER_SHARE), their vectors, for an exact search."""

    selection: ann.Selection
    vectors: np.ndarray | None
    # Its ids in the order they were taken, once asked for (IndexStore.in_date_order).
    order: list[np.ndarray] = field(default_factory=list, compare=False)

    @property
    def ids(self) -> np.ndarray:
        return self.selection.ids

    @property
    def bytes(self) -> int:
        held = [self.ids, *self.order, *([self.vectors] if self.vectors is not None else [])]
        return sum(array.nbytes for array in held)


class IndexStore:
    """A finished index, opened for searching: the FAISS index in memory, vectors read from their
    file as needed, ids resolved through the catalog. No per-image object is made at start-up.

    `fetch` gets a thumbnail shard that is not in the folder (see indexing.thumbnails).
    """

    def __init__(
        self,
        index_dir: Path,
        *,
        model: str | None = None,
        dim: int | None = None,
        fetch: Callable[[str], Path | None] | None = None,
    ) -> None:
        self.dir = index_dir
        self.manifest = open_manifest(index_dir)
        self.model = str(self.manifest["model"])
        self.dim = int(self.manifest["embedding_dim"])
        if model is not None and dim is not None:
            self.require_model(model, dim)
        try:
            self.index = faiss.read_index(str(index_dir / INDEX))
            ids = ann.index_ids(self.index)
        except RuntimeError as exc:
            raise BuscadorError(f"cannot read {index_dir / INDEX} ({exc}); rebuild the index") from None
        self.params: dict[str, Any] = self.manifest.get("search") or {}
        ann.apply(self.index, self.params)
        ghosts = np.array(self.manifest.get("ghosts", []), np.int64)  # removed, still in a grown graph
        self._ghosts = ann.Selection(ghosts, leave_out=True) if len(ghosts) else None
        # The last subsets searched, by (folder, first and last date taken, place).
        self._subsets: OrderedDict[tuple[str, str, str, str], Subset] = OrderedDict()
        self._subsets_lock = threading.Lock()
        self.catalog = Catalog(index_dir / CATALOG, readonly=True)
        self.vectors = VectorFile(index_dir / VECTORS, self.dim)
        self.thumbnails = Thumbnails(index_dir, fetch=fetch)
        known = self.catalog.ids()
        if (
            self.index.d != self.dim
            or self.index.ntotal != self.manifest["count"] + len(ghosts)
            or not np.array_equal(np.sort(ids), np.sort(np.concatenate([known, ghosts])))
            or (len(known) and known[-1] >= self.vectors.rows())
        ):
            raise BuscadorError(
                f"{index_dir} is inconsistent (a build was interrupted or files were mixed); "
                "run the build again to repair it"
            )

    def require_model(self, model: str, dim: int) -> None:
        """Refuse to answer queries embedded by another model: the scores would be meaningless."""
        if model != self.model or dim != self.dim:
            raise BuscadorError(
                f"the index at {self.dir} was built with model {self.model} ({self.dim}-d), but "
                f"the loaded model is {model} ({dim}-d); their vectors are not comparable. "
                f"Set CLIP_MODEL={self.model}, or rebuild the index with the current model."
            )

    @property
    def count(self) -> int:
        return int(self.index.ntotal) - (len(self._ghosts.ids) if self._ghosts else 0)

    def count_in(self, folder: str) -> int:
        """How many images are under `folder` (as `among` takes it), or in all ("")."""
        return len(self.among(folder).ids) if folder else self.count

    def among(self, folder: str, period: Period | None = None, near: Sequence[Near] = ()) -> Subset:
        """The images under `folder` (a prefix of their keys, "a/b" for "a/b/…"; "" for all)
        taken in `period` (None: whenever) near the first place of `near` that has any (none:
        anywhere), to search among (`search`'s `only`); a BuscadorError when there are none.
        The last ones asked for are kept (a visitor searching one folder asks again), up to
        SUBSETS_KEPT and config.FOLDER_CACHE_MB of vectors."""
        place = near[0].key if near else ""
        wanted = (folder, period.start, period.end, place) if period else (folder, "", "", place)
        with self._subsets_lock:
            if (found := self._subsets.get(wanted)) is not None:
                self._subsets.move_to_end(wanted)
                return found
        ids = self._in_folder(folder) if folder else None
        if period is not None:
            taken = self._taken_in(period, folder)
            ids = taken if ids is None else np.intersect1d(ids, taken, assume_unique=True)
            if not len(ids):
                raise BuscadorError(
                    f"no image of this index in folder {folder!r} was taken in {period.text}",
                    "no_taken_in_folder",
                    folder=folder,
                    period=period.text,
                )
        if near:
            there, place = self._near(near)
            if ids is not None:
                there = np.intersect1d(ids, there, assume_unique=True)
            if not len(there):
                among = f"in folder {folder!r}" if folder else f"taken in {period.text}" if period else ""
                raise BuscadorError(
                    f"no image of this index {among} was taken {place.where()}",
                    "no_near_in_folder" if folder else "no_near_taken",
                    folder=folder,
                    period=period.text if period else "",
                    where=place.where(),
                    where_es=place.where("es"),
                )
            ids = there
        if ids is None:
            ids = self.catalog.ids()
        share = config.FOLDER_SHARE.get(self.manifest["index_type"], 0.0)
        found = Subset(ann.Selection(ids), self.vectors.read(ids) if len(ids) < share * self.count else None)
        with self._subsets_lock:
            self._subsets[wanted] = found
            while len(self._subsets) > SUBSETS_KEPT or (
                len(self._subsets) > 1
                and sum(f.bytes for f in self._subsets.values()) > config.FOLDER_CACHE_MB * 1e6
            ):
                self._subsets.popitem(last=False)
        return found

    def in_date_order(self, subset: Subset) -> np.ndarray:
        """`subset`'s ids in the order they were taken (see Catalog.taken_order), worked out the
        first time and kept with it, so that each further page is a slice (a country holding
        half of a million photos: 0.76 s the first time)."""
        if not subset.order:
            subset.order.append(self.catalog.taken_order(subset.ids))
        return subset.order[0]

    def _in_folder(self, name: str) -> np.ndarray:
        """The ids under folder `name`; a BuscadorError naming folders of that name elsewhere
        when there are none."""
        ids = self.catalog.ids_under(name + "/")
        if not len(ids):
            shown = name if len(name) <= 200 else name[:200] + "…"
            if like := self.catalog.folders_named(name):
                raise BuscadorError(
                    f"no image of this index is in a folder {shown!r}; folders of that name: "
                    + ", ".join(like),
                    "empty_folder_like",
                    folder=shown,
                    folders=", ".join(like),
                )
            raise BuscadorError(
                f"no image of this index is in a folder {shown!r}", "empty_folder", folder=shown
            )
        return ids

    def _taken_in(self, period: Period, folder: str) -> np.ndarray:
        """The ids of the images taken in `period`; a BuscadorError saying why when there are
        none: an index built before dates were read, no image that says, none then."""
        if not self.catalog.dated:
            raise BuscadorError(
                "this index does not record when its photos were taken: build it again with this "
                "version of Buscador Visual, which reads the dates from the photos' EXIF",
                "dates_not_read",
            )
        ids = self.catalog.ids_taken(period.start, period.end)
        if len(ids):
            return ids
        first, last = self.catalog.span_taken()  # only to say why
        if not first:
            raise BuscadorError(
                "no image of this index says when it was taken (no EXIF date), so taken: finds none",
                "no_dates",
            )
        if not folder:
            raise BuscadorError(
                f"no image of this index was taken in {period.text}; its dates run from "
                f"{first[:10]} to {last[:10]}",
                "no_taken",
                period=period.text,
                first=first[:10],
                last=last[:10],
            )
        return ids

    def _near(self, near: Sequence[Near]) -> tuple[np.ndarray, Near]:
        """The ids of the images taken near the first of these places that has any, and that
        place; a BuscadorError saying why when none has: an index built before places were read,
        no image that says, none there (its message's places in English, and in Spanish in its
        `_es` parameters)."""
        if not self.catalog.located:
            raise BuscadorError(
                "this index does not record where its photos were taken: build it again with this "
                "version of Buscador Visual, which reads the places from the photos' EXIF",
                "places_not_read",
            )
        for place in near:
            if place.lat is None:
                ids = self.catalog.ids_in_country(place.country)
            else:
                rows = np.array(self.catalog.positions(*place.box()), np.float64).reshape(-1, 3)
                ids = rows[place.within(rows[:, 1], rows[:, 2]), 0].astype(np.int64)
            if len(ids):
                return ids, place
        countries = self.catalog.countries()  # only to say why
        if not countries:
            raise BuscadorError(
                "no image of this index says where it was taken (no GPS position in its EXIF), "
                "so near: finds none",
                "no_places",
            )
        top = list(countries.items())[:5]
        shown = {
            lang: ", ".join(f"{country_name(code, lang)} ({n})" for code, n in top) for lang in ("en", "es")
        }
        raise BuscadorError(
            f"no image of this index was taken {near[0].where()}{near[0].farther()}; its photos were "
            f"taken in {shown['en']}",
            "no_near",
            where=near[0].where() + near[0].farther(),
            countries=shown["en"],
            where_es=near[0].where("es") + near[0].farther("es"),
            countries_es=shown["es"],
        )

    def search(
        self, queries: np.ndarray, k: int, *, only: Subset | None = None
    ) -> list[list[tuple[int, float]]]:
        """For each query vector, up to k (id, score) pairs, best first; with `only`, among those
        images alone."""
        if self.count == 0:
            return [[] for _ in range(len(queries))]
        queries = np.ascontiguousarray(queries, np.float32)
        if only is not None and only.vectors is not None:
            scores, ids = _exact(queries, only.ids, only.vectors, k)
        else:
            selection = only.selection if only is not None else self._ghosts  # a subset holds no ghost
            count = len(only.ids) if only is not None else self.count
            scores, ids = ann.search(
                self.index, self.params, queries, min(k, count), self.vectors.read, selection=selection
            )
        return [
            [(int(i), float(s)) for i, s in zip(id_row, score_row, strict=True) if i >= 0]
            for id_row, score_row in zip(ids, scores, strict=True)
        ]

    def vector(self, item_id: int) -> np.ndarray:
        if item_id not in self.catalog.items([item_id]):
            raise BuscadorError(f"no image with id {item_id} in this index", "unknown_id", id=item_id)
        return self.vectors.read([item_id])[0]

    def items(self, ids: Iterable[int]) -> dict[int, Item]:
        return self.catalog.items(ids)

    def thumbnail(self, item_id: int) -> bytes | None:
        return self.thumbnails.get(item_id)


def _exact(
    queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k best of these vectors for each query, best first."""
    scores, rows = ann.exact_top(queries, vectors, k)
    return scores, ids[rows]
