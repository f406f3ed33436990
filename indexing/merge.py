"""Merging shard builds: the indexes that `build --shard I/N` made on several machines, joined into
the index one build of the whole source gives (same keys, labels, vectors and ids).

A shard build gives each image its position in the whole source as its id; the merge numbers
the images 0, 1, 2… in that order, as a single build does. Vectors and thumbnails are copied,
never embedded again; the FAISS index is then built and tuned over all of them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexing import config, places
from indexing.catalog import CATALOG, Catalog, Row
from indexing.errors import BuscadorError
from indexing.sources import Shard
from indexing.store import MANIFEST, SEARCH_FILES, Writer, open_for_build, read_manifest, write_index
from indexing.thumbnails import FOLDER as THUMBNAILS
from indexing.thumbnails import Thumbnails
from indexing.vectors import NAME as VECTORS
from indexing.vectors import VectorFile

CHUNK = 4096


def merge_shards(
    shard_dirs: Sequence[Path],
    out_dir: Path,
    *,
    index_type: str = "auto",
    memory_budget_mb: int = config.MEMORY_BUDGET_MB,
    progress: bool = False,
) -> dict[str, Any]:
    """Join finished shard builds of one source into `out_dir`; returns its manifest. `progress`:
    a progress bar while an approximate index is built and tuned."""
    if not shard_dirs:
        raise BuscadorError("give the folders of the shard builds to merge")
    manifests = [_shard_manifest(d) for d in shard_dirs]
    _check_together(shard_dirs, manifests)
    if (out_dir / MANIFEST).exists():
        raise BuscadorError(f"{out_dir} already holds an index: merge into an empty folder")
    for name in [*SEARCH_FILES, THUMBNAILS]:  # what an interrupted merge left
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    first = manifests[0]
    dim = int(first["embedding_dim"])
    shards = [
        (Catalog(d / CATALOG, readonly=True), VectorFile(d / VECTORS, dim), Thumbnails(d)) for d in shard_dirs
    ]
    catalog = open_for_build(out_dir, first["model"], dim)
    if not all(c.picture_hashes for c, _, _ in shards):  # a shard's files hashed whole: all are
        catalog.hash_files_as(pictures=False)
    try:
        # Every image as (id in its shard = position in the source, shard number), in source order.
        order = sorted((int(i), n) for n, (c, _, _) in enumerate(shards) for i in c.ids())
        writer = Writer(out_dir, catalog, dim)
        seen: set[str] = set()
        for start in range(0, len(order), CHUNK):
            chunk = order[start : start + CHUNK]
            picked = {}  # (shard, id) → (record, vector, thumbnail)
            for n, (shard_catalog, vectors, thumbs) in enumerate(shards):
                ids = [i for i, m in chunk if m == n]
                if ids:
                    records = shard_catalog.records(ids)
                    pictures = thumbs.get_many(ids)
                    for i, vector in zip(ids, vectors.read(ids), strict=True):
                        picked[n, i] = (records[i], vector, pictures.get(i, b""))
            rows = []
            for new_id, (i, n) in enumerate(chunk, start=start):
                (key, label, fingerprint, content, meta, date, lat, lon, *_, caption), vector, thumbnail = (
                    picked[n, i]
                )
                if key in seen:
                    raise BuscadorError(f"{key} is in more than one shard: were they all cut the same way?")
                seen.add(key)
                fields = json.loads(meta) if meta else None
                rows.append(
                    Row(
                        key,
                        label,
                        fingerprint,
                        vector,
                        thumbnail,
                        content,
                        fields,
                        new_id,
                        date,
                        lat,
                        lon,
                        caption,
                    )
                )
            writer.write(rows)
        used = {p for m in manifests for p in m.get("precision", {}).get("image", "").split("+") if p}
        catalog.set_meta(image_precision="+".join(sorted(used)))
        places.name_towns(catalog)
        source = _whole(first)
        skipped = sum(m.get("last_build", {}).get("skipped", 0) for m in manifests)
        changes = {
            "added": len(order),
            "updated": 0,
            "unchanged": 0,
            "removed": 0,
            "skipped": skipped,
            "reused": 0,
            "moved": 0,
        }
        return write_index(
            out_dir,
            catalog,
            index_type=index_type,
            source=source | {"merged_shards": len(shard_dirs)},
            changes=changes,
            memory_budget_mb=memory_budget_mb,
            progress=progress,
        )
    finally:
        catalog.close()
        for shard_catalog, _, _ in shards:
            shard_catalog.close()


def _shard_manifest(shard_dir: Path) -> dict[str, Any]:
    manifest = read_manifest(shard_dir)
    if not manifest.get("source", {}).get("shard"):
        raise BuscadorError(f"{shard_dir} is not a shard build (build it with --shard I/N)")
    return manifest


def _check_together(shard_dirs: Sequence[Path], manifests: list[dict[str, Any]]) -> None:
    """The shards must be the N slices of one source, each once, made with one model."""
    first = manifests[0]
    shards = [Shard.parse(m["source"]["shard"]) for m in manifests]
    count = shards[0].count
    for d, m, shard in zip(shard_dirs, manifests, shards, strict=True):
        if (m["model"], m["embedding_dim"]) != (first["model"], first["embedding_dim"]):
            raise BuscadorError(f"{d} was built with {m['model']}, {shard_dirs[0]} with {first['model']}")
        if _whole(m) != _whole(first):
            raise BuscadorError(
                f"{d} is a shard of {json.dumps(_whole(m))}, {shard_dirs[0]} of {json.dumps(_whole(first))}"
            )
        if shard.count != count:
            raise BuscadorError(f"{d} is shard {shard}, not one of {count}")
    numbers = sorted(shard.index for shard in shards)
    if numbers != list(range(count)):
        raise BuscadorError(f"merging needs all {count} shards once each; given shards {numbers}")


def _whole(manifest: dict[str, Any]) -> dict[str, Any]:
    """The source a shard build describes, without its shard: the whole source."""
    return {k: v for k, v in manifest["source"].items() if k != "shard"}
