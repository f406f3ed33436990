"""Thumbnail shards: each image's small JPEG, kept apart from what search needs.

    thumbs/00000.sqlite   thumbnails of ids 0 to SHARD_SIZE − 1
    thumbs/00001.sqlite   the next SHARD_SIZE ids, and so on

A shard whose deleted thumbnails (images removed, or changed: a changed image gets a new id) leave
a quarter of its pages free is rewritten without them (VACUUM): ids only grow, so nothing else
would ever fill them.

Search downloads the catalog, vectors and index only. An index pulled from the Hub fetches a
shard the first time one of its thumbnails is asked for (`fetch`, through the Hub cache), so the
first results page shows its images without the whole collection's thumbnails being downloaded.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from indexing.errors import BuscadorError

log = logging.getLogger(__name__)

FOLDER = "thumbs"
# About 12 MB of 12 KB thumbnails a shard: a first results page fetches a few of them.
SHARD_SIZE = 1024
# The share of a shard's pages left free by deletions past which it is rewritten without them.
MOST_FREE = 0.25


def shard_name(item_id: int) -> str:
    """The shard holding `item_id`, relative to the index folder."""
    return f"{FOLDER}/{item_id // SHARD_SIZE:05d}.sqlite"


def shard_ids(name: str) -> range:
    """The ids whose thumbnails shard `name` holds."""
    first = int(Path(name).stem) * SHARD_SIZE
    return range(first, first + SHARD_SIZE)


def reads_whole(path: Path) -> bool:
    """Whether the shard at `path` reads whole (SQLite's quick check: about 15 ms for 12 MB).
    Opened for writing: a transaction a crash left half done (its journal beside it) is rolled
    back first, as any write would."""
    try:
        db = sqlite3.connect(path)
        try:
            return db.execute("PRAGMA quick_check").fetchone() == ("ok",)
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False


class Thumbnails:
    """The thumbnail shards of an index folder.

    `fetch(name)` is asked for a shard that is not in the folder (a pulled index); it returns
    the shard's path, or None when it cannot be had.
    """

    def __init__(self, folder: Path, *, fetch: Callable[[str], Path | None] | None = None) -> None:
        self.folder = folder
        self.fetch = fetch

    def names(self) -> list[str]:
        """The shards present, relative to the index folder, in id order."""
        return sorted(f"{FOLDER}/{p.name}" for p in (self.folder / FOLDER).glob("*.sqlite"))

    def write(self, thumbs: dict[int, bytes]) -> None:
        """Store these thumbnails (empty ones are skipped), one transaction per shard."""
        rows = [(item_id, jpeg) for item_id, jpeg in thumbs.items() if jpeg]
        self._change("INSERT OR REPLACE INTO thumbs(id, jpeg) VALUES(?, ?)", rows, create=True)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove these ids' thumbnails; a shard left mostly free is rewritten smaller."""
        self._change(
            "DELETE FROM thumbs WHERE id=?", [(item_id,) for item_id in ids], create=False, compact=True
        )

    def _change(self, statement: str, rows: list[tuple], *, create: bool, compact: bool = False) -> None:
        """Run `statement` for each row (its id first), one transaction per shard; with `compact`,
        then rewrite a shard whose free pages pass MOST_FREE without them (on the same connection)."""
        by_shard: dict[str, list[tuple]] = defaultdict(list)
        for row in rows:
            by_shard[shard_name(row[0])].append(row)
        for name, shard_rows in sorted(by_shard.items()):
            if create or (self.folder / name).exists():
                try:
                    db = self._open(self.folder / name, create=True)
                    try:
                        with db:
                            db.executemany(statement, shard_rows)
                        if compact:
                            _compact(db, name)
                    finally:
                        db.close()
                except sqlite3.OperationalError:  # (a full disk's, a lock's: as they are)
                    raise
                except sqlite3.DatabaseError as exc:
                    raise BuscadorError(
                        f"{self.folder / name} is damaged ({exc}): delete it and build again (the "
                        "images whose thumbnails it held are embedded again)"
                    ) from None

    def get(self, item_id: int) -> bytes | None:
        """The thumbnail of `item_id`, fetching its shard first if needed; None if there is none."""
        return self.get_many([item_id]).get(item_id)

    def get_many(self, ids: Iterable[int]) -> dict[int, bytes]:
        """id → thumbnail for those of these ids that have one (one connection a shard)."""
        by_shard: dict[str, list[int]] = defaultdict(list)
        for item_id in ids:
            by_shard[shard_name(item_id)].append(int(item_id))
        found: dict[int, bytes] = {}
        for name, wanted in by_shard.items():
            path = self.folder / name
            if not path.exists() and self.fetch is not None:
                path = self.fetch(name) or path
            if not path.exists():
                continue
            try:
                db = self._open(path, create=False)
                try:
                    marks = ",".join("?" * len(wanted))
                    found.update(db.execute(f"SELECT id, jpeg FROM thumbs WHERE id IN ({marks})", wanted))
                finally:
                    db.close()
            except sqlite3.DatabaseError as exc:
                log.warning(
                    "cannot read thumbnails from %s (%s): delete it and build the index again to mend it",
                    path,
                    exc,
                )
        return found

    @staticmethod
    def _open(path: Path, *, create: bool) -> sqlite3.Connection:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE IF NOT EXISTS thumbs (id INTEGER PRIMARY KEY, jpeg BLOB NOT NULL)")
            db.isolation_level = ""
            return db
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _compact(db: sqlite3.Connection, name: str) -> None:
    """Rewrite shard `name` without its free pages when they pass MOST_FREE of it (VACUUM)."""
    free, pages = (db.execute(f"PRAGMA {what}").fetchone()[0] for what in ("freelist_count", "page_count"))
    if free > MOST_FREE * pages:
        try:
            db.execute("VACUUM")
        except sqlite3.OperationalError as exc:  # a full disk (VACUUM writes a copy): another time
            log.warning("thumbnails in %s not compacted: %s", name, exc)
