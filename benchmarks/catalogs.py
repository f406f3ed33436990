"""Catalogs of many photos for the benchmarks: rows as a build leaves them, written straight into
a fresh catalog in the work folder (a million in seconds, where a build would take days)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

from benchmarks.photos import WORK
from indexing.catalog import Catalog


def filled_catalog(name: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> Catalog:
    """A new catalog in WORK/`name` holding `rows`, each the values of `columns` (the others left
    as a build leaves what it has not read), in one transaction."""
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    catalog = Catalog(folder / "catalog.sqlite")
    db = catalog._db
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO items({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
    db.execute("COMMIT")
    return catalog
