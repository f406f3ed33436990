"""The catalog: the SQLite table of an index's images (catalog.sqlite), one row per image with its
key, label, fingerprint, content hash, fields, and when and where it was taken; its format and
the numbered migrations that bring an older one up to it.

Each `write` is one transaction: the build's checkpoint. The columns of when and where are ones a
build adds where they lack (no new format: an index in a read-only Hub cache opens as it is,
without them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from indexing import picture_hash, video
from indexing.captions import longest, stored, with_words, words_query
from indexing.errors import BuscadorError
from indexing.tags import fold
from indexing.thumbnails import Thumbnails
from indexing.vectors import NAME as VECTORS
from indexing.vectors import VectorFile

log = logging.getLogger(__name__)

CATALOG = "catalog.sqlite"
FORMAT_VERSION = 5

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
    country TEXT,
    seconds REAL,
    tags TEXT,
    rating INTEGER,
    caption TEXT,
    caption_key TEXT
);
"""
# Columns a build adds where they lack (no new format: an index in a read-only Hub cache opens as
# it is, without them): when and where each photo was taken, how long each video lasts, its
# keywords (one a line), its rating (stars) and its caption (title and description a line apart), with
# the same as words are compared (indexing.captions.stored).
_ADDED = {
    "taken": "TEXT",
    "lat": "REAL",
    "lon": "REAL",
    "place": "TEXT",
    "country": "TEXT",
    "seconds": "REAL",
    "tags": "TEXT",
    "rating": "INTEGER",
    "caption": "TEXT",
    "caption_key": "TEXT",
    "tags_key": "TEXT",
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS items_content ON items(content);
CREATE INDEX IF NOT EXISTS items_taken ON items(taken);
CREATE INDEX IF NOT EXISTS items_position ON items(lat, lon);
CREATE INDEX IF NOT EXISTS items_country ON items(country);
CREATE INDEX IF NOT EXISTS items_unplaced ON items(id) WHERE lat IS NOT NULL AND place IS NULL;
CREATE INDEX IF NOT EXISTS items_rated ON items(rating) WHERE rating IS NOT NULL;
"""
# Each image's keywords as they are compared (`_tags_key`: folded, a line each, between line
# breaks), so that a `tag:` search is one scan in SQLite, not every keyword set folded in Python
# (5.3 s at a million photos each with keywords of its own). Written with the keywords
# (`set_facts`); SQL cannot fold, so where the keywords change without it (a version before it
# writing the catalog) this trigger takes it out, those images are checked in Python
# (`ids_tagged`), and the next build writes it again (`_key_tags`).
_TAGS_KEY_STALE = """
CREATE TRIGGER IF NOT EXISTS tags_key_stale AFTER UPDATE OF tags ON items
WHEN new.tags IS NOT old.tags AND new.tags_key IS old.tags_key AND new.tags_key IS NOT NULL
BEGIN
    UPDATE items SET tags_key = NULL WHERE id = new.id;
END
"""
# The words of the captions (`caption_key`), in SQLite's full-text index (FTS5), so that a caption
# search looks them up instead of reading every caption (0.1–0.3 s at a million: bench_captions).
# Its own copy of each caption under the image's id, kept by triggers on every write (a replaced
# or deleted row's goes by its id, whatever it said); words are runs of letters, digits and "_",
# as Python's regular expressions say (indexing.captions.words_query). A build adds it where it
# lacks, filled from the captions there: an index in a read-only Hub cache, or where SQLite has
# no FTS5, is searched as before.
_CAPTION_WORDS = (
    "CREATE VIRTUAL TABLE caption_words USING fts5(caption_key, detail=none, "
    "tokenize=\"unicode61 remove_diacritics 0 tokenchars '_'\")",
    # Before a row goes in, the words of the row it replaces (INSERT OR REPLACE, `write`: the same
    # id, or the same key under another id), which no delete trigger sees unless SQLite's
    # recursive_triggers is on (a connection's setting: an older version's would not set it).
    """CREATE TRIGGER caption_words_replaced BEFORE INSERT ON items BEGIN
        DELETE FROM caption_words WHERE rowid = new.id;
        DELETE FROM caption_words WHERE rowid = (SELECT id FROM items WHERE key = new.key);
    END""",
    """CREATE TRIGGER caption_words_added AFTER INSERT ON items WHEN new.caption_key IS NOT NULL BEGIN
        INSERT INTO caption_words(rowid, caption_key) VALUES (new.id, new.caption_key);
    END""",
    """CREATE TRIGGER caption_words_changed AFTER UPDATE OF caption_key ON items BEGIN
        DELETE FROM caption_words WHERE rowid = old.id;
        INSERT INTO caption_words(rowid, caption_key)
            SELECT new.id, new.caption_key WHERE new.caption_key IS NOT NULL;
    END""",
    """CREATE TRIGGER caption_words_removed AFTER DELETE ON items BEGIN
        DELETE FROM caption_words WHERE rowid = old.id;
    END""",
    "INSERT INTO caption_words(rowid, caption_key) "
    "SELECT id, caption_key FROM items WHERE caption_key IS NOT NULL",
)


def _tags_key(tags: str | None) -> str | None:
    """An image's keywords (a line each) as `tags_key` keeps them: folded (indexing.tags.fold),
    each once, a line each, a line break before the first and after the last; None for none."""
    keys = dict.fromkeys(fold(tag) for tag in tags.split("\n")) if tags else {}
    return "\n" + "\n".join(keys) + "\n" if keys else None


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


# What an image's header said, to record (Catalog.set_facts): when it was taken, lat, lon, a
# video's seconds, keywords, rating, caption ("" for none), and the image's key.
Said = tuple[str, float | None, float | None, float | None, Sequence[str], int | None, str, str]


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
    caption: str | None = None  # its caption, where the source gives it (a dataset's column)


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
    seconds: float | None = None  # how long a video lasts
    tags: tuple[str, ...] = ()  # its keywords (XMP's)
    rating: int | None = None  # its stars (1 to 5, -1 rejected; None: unrated)
    caption: str | None = None  # its title and description (indexing.captions)


class Catalog:
    """The SQLite table of indexed images. Each `write` is one transaction: a checkpoint.

    Opened for writing, an older catalog is migrated to FORMAT_VERSION first; opened read-only,
    it must already be at FORMAT_VERSION.
    """

    def __init__(self, path: Path, *, readonly: bool = False, build_lock: IO[str] | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._build_lock = build_lock  # the folder's, held while opened for a build (store.open_for_build)
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
                self._db.executescript(_TAGS_KEY_STALE)
                self._key_tags()
                self._add_caption_words()
            self._db.execute("SELECT count(*) FROM meta").fetchone()
            version = self.format_version()
            # Whether it records dates taken and places: a catalog of an older build, read-only,
            # does not.
            self.dated = "taken" in self._columns()
            self.located = "lat" in self._columns()
            self.timed = "seconds" in self._columns()
            self.tagged = "tags" in self._columns()
            self.rated = "rating" in self._columns()
            self.captioned = "caption" in self._columns()
            # Whether its keywords are kept as compared too (`tags_key`), else folded at a search.
            self.tags_keyed = "tags_key" in self._columns()
            # Whether its captions' words are indexed (_CAPTION_WORDS), else scanned.
            self.caption_words = self._has_table("caption_words")
            # Whether a photo file's content hash is its picture's (indexing.picture_hash): an index
            # made before keeps hashing whole files, or its copies and moves would not be known.
            self.picture_hashes = self.get_meta("content_hash") == picture_hash.KIND
        except sqlite3.DatabaseError as exc:
            raise BuscadorError(
                f"{path} is not a readable index catalog ({exc}): the index cannot be mended; move "
                f"{path.parent} aside and build the index again (its photos are embedded anew)"
            ) from None
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

    def _has_table(self, name: str) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None

    def _key_tags(self) -> None:
        """Write `tags_key` where an image has keywords and not it: an older catalog's, or those
        whose keywords a version before it changed (_TAGS_KEY_STALE)."""
        self._db.create_function("tags_key", 1, _tags_key, deterministic=True)
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE items SET tags_key = tags_key(tags) WHERE tags IS NOT NULL AND tags_key IS NULL"
            )

    def _add_caption_words(self) -> None:
        """Add the captions' word index (_CAPTION_WORDS) where the catalog lacks it, in one
        transaction; none where this SQLite has no FTS5."""
        if self._has_table("caption_words"):
            return
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for statement in _CAPTION_WORDS:
                    self._db.execute(statement)
        except sqlite3.OperationalError as exc:  # "no such module: fts5"
            log.info("captions are searched without a word index: %s", exc)

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

    def close(self) -> None:
        self._db.close()
        if self._build_lock is not None:
            self._build_lock.close()  # lets the next build in

    def get_meta(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def hash_files_as(self, *, pictures: bool) -> None:
        """Record how this index knows its files' content: by their pictures (indexing.picture_hash)
        or whole (`picture_hashes`)."""
        self.set_meta(content_hash=picture_hash.KIND if pictures else "file")
        self.picture_hashes = pictures

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

    def assign_ids(self, rows: list[Row], gone: set[str] | None = None) -> tuple[list[int], list[int]]:
        """The id each row will have, and the ids that go with the rows they replace. A row has
        its own id when it has one (a shard's), else its key's while the key holds the same
        content (a new caption, a file touched), else the id of an image of the same content
        whose key is among those the build found `gone` (a photo moved or renamed: that key is
        taken out of `gone`, and its row is replaced by this one), else the next of the
        sequence, in order: an image whose content changed is a new image under an old name, so
        its old id goes as a deleted image's does, and an HNSW index grows instead of being built
        again (ann.grow). Writes nothing: `write` commits them."""
        with self._lock:
            next_id = int(self.get_meta("next_id") or 0)
            ids, replaced = [], []
            for row in rows:
                found = self._db.execute("SELECT id, content FROM items WHERE key=?", (row.key,)).fetchone()
                if row.id is not None:
                    ids.append(row.id)
                elif found and found[1] == row.content:
                    ids.append(found[0])
                elif (moved := self._moved_from(row, gone) if not found else None) is not None:
                    ids.append(moved)
                else:
                    ids.append(next_id)
                    next_id += 1
                if found and found[0] != ids[-1]:
                    replaced.append(found[0])
        return ids, sorted(set(replaced) - set(ids))  # (shard rows may trade places)

    def _moved_from(self, row: Row, gone: set[str] | None) -> int | None:
        """The id of an image with `row`'s content whose key is `gone`, that key taken out of it."""
        if not gone or not row.content:
            return None
        for item_id, key in self._db.execute(
            "SELECT id, key FROM items WHERE content=? ORDER BY id", (row.content,)
        ):
            if key in gone:
                gone.discard(key)
                return int(item_id)
        return None

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
                    "lat, lon, caption, caption_key) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        *stored(row.caption),
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

    def keys_from(self, first: int, end: int | None = None) -> list[str]:
        """The keys of the rows whose id is `first` or more (and under `end`)."""
        if end is None:
            return self._keys("WHERE id >= ?", (first,))
        return self._keys("WHERE id >= ? AND id < ?", (first, end))

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

    def top_tags(self, most: int) -> tuple[int, list[tuple[str, int]]]:
        """How many images have keywords, and the `most` keywords the most images have: (keyword
        as its first image wrote it, count), keywords compared as `fold` writes them, ties in its
        order. Counted from the keywords as compared (`tags_key`), each set of them once, where the
        catalog keeps them: no keyword folded but a row's without its key, keyed here as a build
        keys it (`_tags_key`). A million photos, each with keywords of its own: 1.7–1.9 s, where
        folding every set took 4.0–4.2."""
        counts: Counter[str] = Counter()
        first: dict[str, int] = {}  # keyword as compared → the lowest id of an image with it
        tagged = 0
        for keyed, tags, n, low in self._tag_sets():
            tagged += n
            for key in (tags if keyed else _tags_key(tags) or "")[1:-1].split("\n"):
                counts[key] += n
                if low < first.get(key, low + 1):
                    first[key] = low
        ranked = sorted(counts.items(), key=lambda counted: (-counted[1], counted[0]))[:most]
        with self._lock:
            shown = [(self._written(key, first[key]), n) for key, n in ranked]
        return tagged, shown

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
            i: Item(
                i,
                key,
                label,
                json.loads(meta) if meta else None,
                taken or None,
                place,
                country,
                seconds,
                tuple(tags.split("\n")) if tags else (),
                rating,
                caption,
            )
            for i, (key, label, _, _, meta, taken, _, _, place, country, seconds, tags, rating, caption) in (
                self.records(ids).items()
            )
        }

    def records(self, ids: Iterable[int]) -> dict[int, tuple[Any, ...]]:
        """id → (key, label, fingerprint, content, meta JSON, date taken, lat, lon, place,
        country, seconds, tags, rating, caption) for those of these ids that are indexed (None for
        what the catalog does not record)."""
        wanted = sorted({int(i) for i in ids})
        taken = "taken" if self.dated else "NULL"
        where = "lat, lon, place, country" if self.located else "NULL, NULL, NULL, NULL"
        seconds = "seconds" if self.timed else "NULL"
        tags = "tags" if self.tagged else "NULL"
        rating = "rating" if self.rated else "NULL"
        caption = "caption" if self.captioned else "NULL"
        query = f"SELECT id, key, label, fingerprint, content, meta, {taken}, {where}, {seconds}, {tags}, "
        query += f"{rating}, {caption} FROM items WHERE id IN ({{}})"
        rows = self._rows_where_in(query, wanted)
        return {i: tuple(record) for i, *record in rows}

    def unread(self) -> list[str]:
        """The keys of the images whose header (when and where taken) was not read yet, by id."""
        return self._keys("WHERE taken IS NULL")

    def forget_headers(self) -> None:
        """Mark every image's header unread (it was read before places were), in one transaction
        with the note that asked for it."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("UPDATE items SET taken=NULL")
            self._db.execute("DELETE FROM meta WHERE name='headers_unread'")

    def retell(self, fingerprints: dict[str, str]) -> None:
        """Record these images' fingerprints (key → fingerprint: an XMP sidecar changed, the image
        did not) and mark their headers unread, to be read again, in one transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE items SET fingerprint=?, taken=NULL WHERE key=?",
                [(fingerprint, key) for key, fingerprint in fingerprints.items()],
            )

    def set_facts(self, facts: Iterable[Said]) -> None:
        """Record what images' headers said (`Said`: "", None and none for what one does not
        say), in one transaction; each image's town is named again (`unplaced`)."""
        rows = [
            (*said, "\n".join(tags) or None, _tags_key("\n".join(tags)), rating, *stored(caption), key)
            for *said, tags, rating, caption, key in facts
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "UPDATE items SET taken=?, lat=?, lon=?, seconds=?, tags=?, tags_key=?, rating=?, "
                "caption=?, caption_key=?, place=NULL, country=NULL WHERE key=?",
                rows,
            )

    def unplaced(self) -> list[tuple[int, float, float, str | None]]:
        """(id, lat, lon, date taken) of the images with a position whose town is not named yet:
        read through an index of those alone (a scan took 0.2 s at a million photos, each build
        and each look of --watch)."""
        with self._lock:
            return self._db.execute(
                "SELECT id, lat, lon, taken FROM items WHERE lat IS NOT NULL AND place IS NULL ORDER BY id"
            ).fetchall()

    def set_taken(self, dates: Iterable[tuple[str, int]]) -> None:
        """Record (date taken, id): a UTC time made local, in one transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE items SET taken=? WHERE id=?", dates)

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

    def ids_by_keyword(self, folded: Callable[[str], str]) -> dict[str, np.ndarray]:
        """Each keyword (as `folded` writes it: case and accents aside) → the ids of the images
        with it, in order (IndexStore keeps what it finds)."""
        found: dict[str, list[str]] = {}
        for tags, ids in self._keyword_groups():
            for tag in {folded(t) for t in tags}:
                found.setdefault(tag, []).append(ids)
        return {tag: np.sort(np.array(",".join(parts).split(","), np.int64)) for tag, parts in found.items()}

    def ids_tagged(self, tag: str) -> np.ndarray | None:
        """The ids of the images with keyword `tag` (as indexing.tags.fold writes it), in order:
        one scan of the keywords as compared (`tags_key`), those without it keyed here as a build
        would key them (`_tags_key`). None where the catalog does not keep them so (an index made
        before, read-only: the caller reads every keyword's ids, `ids_by_keyword`)."""
        if not self.tags_keyed:
            return None
        key = f"\n{tag}\n"
        with self._lock:
            rows = self._db.execute(
                "SELECT id, CASE WHEN tags_key IS NULL THEN tags END FROM items WHERE "
                "instr(tags_key, ?) > 0 OR (tags_key IS NULL AND tags IS NOT NULL) ORDER BY id",
                (key,),
            ).fetchall()
        return np.array([i for i, tags in rows if tags is None or key in (_tags_key(tags) or "")], np.int64)

    def ids_rated(self, least: int) -> np.ndarray:
        """The ids of the images rated `least` stars or more, in order (none where the catalog has
        no ratings)."""
        return self._ids("WHERE rating >= ?", (least,)) if self.rated else np.empty(0, np.int64)

    def ids_captioned(self, words: str) -> np.ndarray:
        """The ids of the images whose caption has `words` (as indexing.tags.folded writes them;
        indexing.captions.with_words), in order: those the captions' word index finds (else those
        whose caption holds the longest of them anywhere: SQLite's scan), kept where each of the
        words starts a word of the caption itself. None where the catalog has no captions."""
        if not self.captioned:
            return np.empty(0, np.int64)
        query, exact = words_query(words)
        with self._lock:
            found = self._looked_up(query, exact) if self.caption_words and query else None
            if found is not None and exact:  # (what the word index finds is the answer)
                return np.fromiter((i for i, *_ in found), np.int64, len(found))
            if found is None:
                found = self._db.execute(
                    "SELECT id, caption_key FROM items WHERE instr(caption_key, ?) > 0 ORDER BY id",
                    (longest(words),),
                ).fetchall()
        has_them = with_words(words)
        return np.array([i for i, key in found if key is not None and has_them(key)], np.int64)

    def _looked_up(self, query: str, exact: bool) -> list[tuple[Any, ...]] | None:
        """The ids of the images the captions' word index finds for FTS5 `query`, in order, each
        with its caption_key unless `exact`; None where it cannot say (an index written where
        SQLite had FTS5, read where it has not)."""
        try:
            if exact:
                return self._db.execute(
                    "SELECT rowid FROM caption_words WHERE caption_words MATCH ? ORDER BY rowid", (query,)
                ).fetchall()
            return self._db.execute(
                "SELECT items.id, items.caption_key FROM caption_words JOIN items "
                "ON items.id = caption_words.rowid WHERE caption_words MATCH ? ORDER BY items.id",
                (query,),
            ).fetchall()
        except sqlite3.OperationalError:
            return None

    def captions(self) -> int:
        """How many images have a caption."""
        if not self.captioned:
            return 0
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM items WHERE caption IS NOT NULL").fetchone()[0]

    def ratings(self) -> dict[int, int]:
        """How many images have each rating, for the ratings that some have (5: 40, 4: 120; -1:
        rejected)."""
        if not self.rated:
            return {}
        with self._lock:
            rows = self._db.execute(
                "SELECT rating, COUNT(*) FROM items WHERE rating IS NOT NULL GROUP BY 1 ORDER BY 1 DESC"
            )
            return dict(rows.fetchall())

    def ids_of_videos(self) -> np.ndarray:
        """The ids of the videos (indexing.video.EXTENSIONS), in order: keys named so (SQLite's
        LIKE ignores ASCII case). A scan of the keys: 0.2 s at a million (the app keeps what it
        finds with each search's subset)."""
        where, values = _videos()
        return self._ids(f"WHERE {where}", values)

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

    def _keys(self, where: str, values: tuple[Any, ...] = ()) -> list[str]:
        """The keys of the rows `where` (an SQL WHERE clause) picks with `values`, by id."""
        with self._lock:
            return [key for (key,) in self._db.execute(f"SELECT key FROM items {where} ORDER BY id", values)]

    def _tag_sets(self) -> list[tuple[int, str, int, int]]:
        """(1 if as compared else 0, keywords, how many images have just them, the lowest id of
        one) for each set of keywords images have: as compared (`tags_key`, "\\nana\\nplaya\\n")
        where a row keeps them so, else as written, a line each. (Grouped by the key alone, then
        the rows without it, if any, by their keywords: one grouping of both took 1.7× as long.)"""
        if not self.tagged:
            return []
        written = "SELECT 0, tags, COUNT(*), MIN(id) FROM items WHERE tags IS NOT NULL {} GROUP BY tags"
        with self._lock:
            if not self.tags_keyed:
                return self._db.execute(written.format("")).fetchall()
            sets = self._db.execute(
                "SELECT 1, tags_key, COUNT(*), MIN(id) FROM items WHERE tags IS NOT NULL "
                "GROUP BY tags_key ORDER BY tags_key"
            ).fetchall()
            if sets and sets[0][1] is None:  # (NULL sorts first) rows whose keywords changed without it
                sets[:1] = self._db.execute(written.format("AND tags_key IS NULL")).fetchall()
            return sets

    def _written(self, key: str, i: int) -> str:
        """Keyword `key` (as compared) as image `i` wrote it (the caller holds the lock)."""
        (tags,) = self._db.execute("SELECT tags FROM items WHERE id=?", (i,)).fetchone()
        return {fold(t): t for t in tags.split("\n")}.get(key, key)  # (a key from another fold: itself)

    def _keyword_groups(self) -> list[tuple[list[str], str]]:
        """(keywords, the ids of the images with just those, "4,7,9") for each set of keywords
        images have, the first image's first (none where the catalog has no keywords): grouped by
        SQLite, a million photos' in 0.3 s, where a row at a time took 1.5 s."""
        if not self.tagged:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT tags, group_concat(id) FROM items WHERE tags IS NOT NULL "
                "GROUP BY tags ORDER BY MIN(id)"
            ).fetchall()
        return [(tags.split("\n"), ids) for tags, ids in rows]

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


def _videos() -> tuple[str, tuple[str, ...]]:
    """An SQL condition that picks the videos' rows by their keys, and its values."""
    suffixes = sorted(video.EXTENSIONS)
    return " OR ".join("key LIKE ?" for _ in suffixes), tuple(f"%{suffix}" for suffix in suffixes)


def _after(prefix: str) -> str:
    """The first text after every text that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)
