"""Index store: what an index directory holds, and how it is written and read back.

    catalog.sqlite  one row per image: id, key (path or dataset row), fingerprint, vector,
                    thumbnail. Committed batch by batch, so it is also the build's checkpoint.
                    Records its format version; older catalogs are migrated in place on open
                    (numbered migrations, each one transaction).
    index.faiss     the FAISS index (ids = catalog ids), rebuilt from the catalog after each build.
    manifest.json   model, dimension, count, source, index type, format version, build time and
                    the SHA-256 of the other files. Written last: it marks a finished build.

Nothing here is pickled; index.faiss and manifest.json are replaced atomically (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexing import config
from indexing.errors import BuscadorError
from indexing.files import file_digest, replace_atomically

log = logging.getLogger(__name__)

FORMAT_VERSION = 4
CATALOG = "catalog.sqlite"
INDEX = "index.faiss"
MANIFEST = "manifest.json"
INDEX_FILES = (MANIFEST, INDEX, CATALOG)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE NOT NULL,
    label TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    vector BLOB NOT NULL,
    content TEXT,
    meta TEXT
);
CREATE TABLE IF NOT EXISTS thumbnails (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL);
"""
# After the migrations: an older catalog gets the columns these need from them.
_INDEXES = "CREATE INDEX IF NOT EXISTS items_content ON items(content);"


def _m002_drop_size(db: sqlite3.Connection) -> None:
    """Format 2: the file size column was never read."""
    db.execute("ALTER TABLE items DROP COLUMN size")


def _m003_content(db: sqlite3.Connection) -> None:
    """Format 3: each image's content hash, so a copied or renamed file reuses its vector."""
    db.execute("ALTER TABLE items ADD COLUMN content TEXT")


def _m004_meta(db: sqlite3.Connection) -> None:
    """Format 4: each image's own fields from its dataset (caption, artist, URL...), as JSON."""
    db.execute("ALTER TABLE items ADD COLUMN meta TEXT")


# Format version → the migration that brings a catalog of the version before it up to it.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    2: _m002_drop_size,
    3: _m003_content,
    4: _m004_meta,
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


@dataclass(frozen=True)
class Item:
    """What search results need to know about an indexed image."""

    id: int
    key: str
    label: str
    meta: dict[str, str] | None = None


class Catalog:
    """The SQLite table of indexed images. Each `write` is one transaction: a checkpoint.

    Opened for writing, an older catalog is migrated to FORMAT_VERSION first; opened read-only,
    it must already be at FORMAT_VERSION.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            if not readonly:
                self._db.executescript(_SCHEMA)
                self._db.execute("PRAGMA synchronous=FULL")
                self._migrate()
                self._db.executescript(_INDEXES)
            self._db.execute("SELECT count(*) FROM items").fetchone()
            version = self.format_version()
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

    def _migrate(self) -> None:
        """Bring the catalog to FORMAT_VERSION, one numbered migration at a time, in one transaction."""
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

    @classmethod
    def open_for_build(cls, out_dir: Path, model: str, dim: int) -> Catalog:
        """Open (or create) the catalog of `out_dir`, refusing one made with another model."""
        out_dir.mkdir(parents=True, exist_ok=True)
        catalog = cls(out_dir / CATALOG)
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

    def by_content(self, content: str) -> tuple[np.ndarray, bytes] | None:
        """The vector and thumbnail of an image with this content hash, if one is indexed."""
        with self._lock:
            row = self._db.execute(
                "SELECT i.vector, t.jpeg FROM items i JOIN thumbnails t ON t.id = i.id "
                "WHERE i.content=? LIMIT 1",
                (content,),
            ).fetchone()
        return (np.frombuffer(row[0], np.float32), row[1]) if row else None

    def fingerprints(self) -> dict[str, str]:
        """key → fingerprint of everything indexed so far."""
        with self._lock:
            return dict(self._db.execute("SELECT key, fingerprint FROM items"))

    def write(self, rows: Iterable[Row]) -> None:
        """Insert new keys (ids in order, continuing the sequence) and update changed ones in place."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            next_id = int(self.get_meta("next_id") or 0)
            for row in rows:
                found = self._db.execute("SELECT id FROM items WHERE key=?", (row.key,)).fetchone()
                if found:
                    item_id = found[0]
                else:
                    item_id, next_id = next_id, next_id + 1
                vector = np.asarray(row.vector, np.float32).tobytes()
                meta = json.dumps(row.meta, ensure_ascii=False) if row.meta else None
                self._db.execute(
                    "INSERT OR REPLACE INTO items(id, key, label, fingerprint, vector, content, meta) "
                    "VALUES(?, ?, ?, ?, ?, ?, ?)",
                    (item_id, row.key, row.label, row.fingerprint, vector, row.content, meta),
                )
                self._db.execute("INSERT OR REPLACE INTO thumbnails VALUES(?, ?)", (item_id, row.thumbnail))
            self._set_meta_locked({"next_id": str(next_id)})

    def delete(self, keys: Iterable[str]) -> int:
        """Remove these keys (images gone from the source); returns how many rows went."""
        keys = list(keys)
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key in keys:
                self._db.execute("DELETE FROM thumbnails WHERE id=(SELECT id FROM items WHERE key=?)", (key,))
                self._db.execute("DELETE FROM items WHERE key=?", (key,))
        return len(keys)

    def vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """All (ids int64, vectors float32 (n, dim)), in id order."""
        with self._lock:
            rows = self._db.execute("SELECT id, vector FROM items ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim)
        return ids, vecs

    def items(self) -> Iterator[Item]:
        with self._lock:
            rows = self._db.execute("SELECT id, key, label, meta FROM items").fetchall()
        return (Item(i, key, label, json.loads(meta) if meta else None) for i, key, label, meta in rows)

    def content_digest(self) -> str:
        """Identifies what the index holds (ids, keys, labels, fields, fingerprints), whatever the
        bytes of its files: two builds of the same collection give the same digest."""
        h = hashlib.sha256()
        with self._lock:
            for row in self._db.execute("SELECT id, key, label, fingerprint, meta FROM items ORDER BY id"):
                h.update(json.dumps(row, ensure_ascii=False).encode())
        return h.hexdigest()

    def thumbnail(self, item_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT jpeg FROM thumbnails WHERE id=?", (item_id,)).fetchone()
        return row[0] if row else None


def choose_index_type(requested: str, count: int) -> str:
    """`auto` means exact search up to config.FLAT_LIMIT vectors, HNSW above it."""
    if requested not in ("auto", "flat", "hnsw"):
        raise BuscadorError(f"unknown index type {requested!r}: use auto, flat or hnsw")
    if requested == "auto":
        return "flat" if count <= config.FLAT_LIMIT else "hnsw"
    return requested


def make_faiss_index(ids: np.ndarray, vectors: np.ndarray, index_type: str) -> faiss.Index:
    """An id-mapped inner-product index over `vectors` (exact, or HNSW)."""
    dim = vectors.shape[1]
    if index_type == "flat":
        base = faiss.IndexFlatIP(dim)
    else:
        base = faiss.IndexHNSWFlat(dim, config.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = config.HNSW_EF_CONSTRUCTION
        base.hnsw.efSearch = config.HNSW_EF_SEARCH
    index = faiss.IndexIDMap2(base)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
    return index


def write_index(
    out_dir: Path, catalog: Catalog, *, index_type: str, source: dict[str, Any], changes: dict[str, int]
) -> dict[str, Any]:
    """Write index.faiss from the catalog, then manifest.json; both atomically. Returns the manifest."""
    model = catalog.get_meta("model") or ""
    dim = int(catalog.get_meta("embedding_dim") or 0)
    ids, vectors = catalog.vectors(dim)
    kind = choose_index_type(index_type, len(ids))
    index = make_faiss_index(ids, vectors, kind)
    recall = measured_recall(index, ids, vectors) if kind != "flat" else 1.0
    replace_atomically(out_dir / INDEX, lambda tmp: faiss.write_index(index, str(tmp)))
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "embedding_dim": dim,
        "count": len(ids),
        "index_type": kind,
        "metric": "inner_product",
        "recall_at_10": recall,
        # Indexes made before this was recorded were all made in fp32.
        "precision": {"image": catalog.get_meta("image_precision") or "fp32"},
        "source": source,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "last_build": changes,
        "content_digest": catalog.content_digest(),
    }
    return _write_manifest(out_dir, manifest)


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Record the digests of the index files in `manifest` and write it, atomically. Returns it."""
    manifest = manifest | {"files": {name: file_digest(out_dir / name) for name in (INDEX, CATALOG)}}
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    replace_atomically(out_dir / MANIFEST, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return manifest


def measured_recall(
    index: faiss.Index, ids: np.ndarray, vectors: np.ndarray, queries: int = 200, k: int = 10
) -> float:
    """Recall@k of `index` against exact search, with a sample of the indexed vectors as queries.

    An approximate index's quality is measured on the collection it serves, never assumed.
    """
    if len(ids) == 0:
        return 1.0
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(len(ids), size=min(queries, len(ids)), replace=False)]
    k = min(k, len(ids))
    _, truth = make_faiss_index(ids, vectors, "flat").search(sample, k)
    _, found = index.search(sample, k)
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found, strict=True))
    return round(hits / (len(sample) * k), 4)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest of a finished index, or a BuscadorError saying how to make one."""
    path = index_dir / MANIFEST
    if not path.is_file():
        hint = (
            "a build was interrupted; run the same build again to finish it"
            if (index_dir / CATALOG).exists()
            else f"build one first: python -m indexing build FOLDER --out {index_dir}"
        )
        raise BuscadorError(f"no index at {index_dir} ({hint})")
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
    if any((index_dir / name).is_symlink() for name in INDEX_FILES):  # e.g. the Hub's cache
        raise BuscadorError(
            f"{index_dir} uses index format {manifest['format_version']} and cannot be migrated where "
            "it is: pull it into a folder of its own (python -m indexing pull REPO --out DIR), or "
            "rebuild and push it again"
        )
    Catalog(index_dir / CATALOG).close()  # opening it for writing migrates it
    log.info("migrated %s to index format %d", index_dir, FORMAT_VERSION)
    return _write_manifest(index_dir, manifest | {"format_version": FORMAT_VERSION})


class IndexStore:
    """A finished index, loaded for searching: FAISS for the vectors, the catalog for the rest."""

    def __init__(self, index_dir: Path, *, model: str | None = None, dim: int | None = None) -> None:
        self.dir = index_dir
        self.manifest = open_manifest(index_dir)
        self.model = str(self.manifest["model"])
        self.dim = int(self.manifest["embedding_dim"])
        if model is not None and dim is not None:
            self.require_model(model, dim)
        try:
            self.index = faiss.read_index(str(index_dir / INDEX))
        except RuntimeError as exc:
            raise BuscadorError(f"cannot read {index_dir / INDEX} ({exc}); rebuild the index") from None
        self.catalog = Catalog(index_dir / CATALOG, readonly=True)
        self.items = {item.id: item for item in self.catalog.items()}
        if (
            not hasattr(self.index, "id_map")  # not an index this program wrote
            or self.index.d != self.dim
            or self.index.ntotal != self.manifest["count"]
            or not np.isin(faiss.vector_to_array(self.index.id_map), list(self.items)).all()
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
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query vector, up to k (id, score) pairs, best first."""
        if self.count == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self.index.search(np.ascontiguousarray(queries, np.float32), min(k, self.count))
        return [
            [(int(i), float(s)) for i, s in zip(id_row, score_row, strict=True) if i >= 0]
            for id_row, score_row in zip(ids, scores, strict=True)
        ]

    def vector(self, item_id: int) -> np.ndarray:
        if item_id not in self.items:
            raise BuscadorError(f"no image with id {item_id} in this index", "unknown_id", id=item_id)
        return self.index.reconstruct(item_id)

    def thumbnail(self, item_id: int) -> bytes | None:
        return self.catalog.thumbnail(item_id)
