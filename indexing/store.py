"""Index store: what an index directory holds, and how it is written and read back.

    manifest.json   model, dimension, count, source, index type with its search settings and
                    measured recall, format version, build time, the dates taken (how many, the
                    span, each year's count), the places (how many, each country's count, the
                    towns with the most) and the SHA-256 of the other files. Written last: it
                    marks a finished build.
    catalog.sqlite  one row per image: id, key (path or dataset row), label, fingerprint,
                    content hash, dataset fields, when and where it was taken. Committed batch
                    by batch, so it is also the build's checkpoint; older catalogs are migrated
                    in place on open (indexing.catalog).
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
import shlex
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from indexing import ann, config, media
from indexing.catalog import CATALOG, FORMAT_VERSION, Catalog, Item, Row
from indexing.dates import Period
from indexing.errors import BuscadorError
from indexing.files import file_digest, replace_atomically
from indexing.narrowing import Narrowing
from indexing.places import NAMING, Near, country_name
from indexing.tags import fold
from indexing.thumbnails import Thumbnails, reads_whole
from indexing.vectors import NAME as VECTORS
from indexing.vectors import VectorFile

log = logging.getLogger(__name__)

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
# What a search for one kind of image that finds none says.
_NONE_OF_KIND = {
    "no_videos": "this index holds no video",
    "no_photos": "this index holds videos alone, no photo",
    "no_videos_among": "none of the images searched is a video",
    "no_photos_among": "none of the images searched is a photo: they are videos",
}


def holds_index(folder: Path) -> bool:
    """Whether `folder` holds an index, finished or begun (its manifest, or its catalog)."""
    return (folder / CATALOG).exists() or (folder / MANIFEST).exists()


def check_index_folder(out_dir: Path) -> None:
    """Refuse to start an index in a folder that holds files of other kinds and no index (hidden
    ones aside: a desktop's .DS_Store)."""
    if not out_dir.is_dir() or holds_index(out_dir):
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


def open_for_build(out_dir: Path, model: str, dim: int) -> Catalog:
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
        catalog = Catalog(out_dir / CATALOG, build_lock=lock)
    except BaseException:
        lock.close()
        raise
    built_with = catalog.get_meta("model")
    built_dim = catalog.get_meta("embedding_dim")
    if built_with is None:  # a new index: its files' content hashes are their pictures'
        catalog.set_meta(model=model, embedding_dim=str(dim))
        catalog.hash_files_as(pictures=True)
    elif built_with != model or int(built_dim or 0) != dim:
        catalog.close()
        raise BuscadorError(
            f"{out_dir} holds an index built with model {built_with} ({built_dim}-d), "
            f"not {model} ({dim}-d). Build into another --out directory, or delete {out_dir}."
        )
    return catalog


class Writer:
    """Writes embedded rows into an index folder: vectors and thumbnails first, then the catalog
    rows in one transaction, the checkpoint. A crash before that commit leaves rows the resumed
    build writes again under the same ids."""

    def __init__(self, out_dir: Path, catalog: Catalog, dim: int) -> None:
        self.out_dir = out_dir
        self.catalog = catalog
        self.vectors = VectorFile(out_dir / VECTORS, dim)
        self.thumbnails = Thumbnails(out_dir)
        # Keys the source no longer has, whose ids a photo moved or renamed takes (Catalog.assign_ids),
        # and how many did.
        self.gone: set[str] = set()
        self.moved = 0

    def write(self, rows: list[Row]) -> None:
        before = len(self.gone)
        ids, replaced = self.catalog.assign_ids(rows, self.gone)
        self.moved += before - len(self.gone)
        self.vectors.write(np.array(ids, np.int64), np.stack([r.vector for r in rows]))
        self.thumbnails.write({i: r.thumbnail for i, r in zip(ids, rows, strict=True)})
        self.catalog.write(rows, ids)
        self.thumbnails.delete(replaced)

    def delete(self, keys: Iterable[str]) -> int:
        gone = self.catalog.delete(keys)
        self.thumbnails.delete(gone)
        return len(gone)

    def damaged_shards(self) -> list[str]:
        """The thumbnail shards the last manifest records that are gone, or no longer read whole
        (a copy cut short, a disk's fault): each checked where its size is not the recorded one
        (a build interrupted since changes it too), so an intact index costs a look at each."""
        damaged = []
        for name, said in _recorded_thumbnails(self.out_dir).items():
            path = self.out_dir / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                damaged.append(name)
                continue
            if size != said.get("size") and not reads_whole(path):
                damaged.append(name)
        return damaged

    def without_vectors(self) -> list[str]:
        """The keys of indexed images whose vector the vector file does not hold: a build writes
        vectors before their rows, so only a file cut short from outside (a copy or a sync
        stopped halfway, a full disk's) leaves any."""
        return self.catalog.keys_from(self.vectors.rows())

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
    # What the index holds: its ids (their vectors, the vector file's digest says). Keys, dates
    # and sidecars are not in it: a photo moved, or a sidecar edited, keeps it as it is.
    ids_digest = hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest()
    previous = _kept_index(
        out_dir, choice | {"count": len(ids)}, ids_digest=ids_digest, content_digest=digest
    )
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
        "ids_digest": ids_digest,
    }
    for name in ("warning", "ghosts"):  # ghosts: removed images a grown graph still holds
        if name in search:
            manifest[name] = search[name]
    if source.get("kind") == "folder" and (videos := len(catalog.ids_of_videos())):  # (a dataset has none)
        manifest["videos"] = videos
    if ratings := {stars: n for stars, n in catalog.ratings().items() if stars > 0}:
        manifest["ratings"] = {str(stars): n for stars, n in ratings.items()}  # 5 stars: n, 4: n, ...
    if captions := catalog.captions():
        manifest["captions"] = captions  # the images with a caption
    tagged, tags = catalog.top_tags(TOP_TOWNS)
    if tags:
        manifest["tags"] = {"count": tagged, "top": dict(tags)}  # the images with keywords, the most used
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


def _kept_index(
    out_dir: Path, wanted: dict[str, Any], *, ids_digest: str, content_digest: str
) -> dict[str, Any] | None:
    """The last manifest of `out_dir` when its index.faiss can be kept: it says the index was built
    with the `wanted` fields (the same model, index type and budget) for the same ids
    (`ids_digest`; a manifest written before it was recorded: the same `content_digest`, keys and
    fingerprints too) from the vector file that is there now, and the index file is the one it
    recorded; else None (build it)."""
    try:
        previous = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        same_ids = (
            previous["ids_digest"] == ids_digest
            if "ids_digest" in previous
            else previous.get("content_digest") == content_digest
        )
        same = (
            same_ids
            and previous.get("format_version") == FORMAT_VERSION
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


def _recorded_thumbnails(out_dir: Path) -> dict[str, Any]:
    """The thumbnail shards the manifest in `out_dir` records (name → its digest and size); none
    where there is no manifest, or one that does not read."""
    try:
        recorded = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")).get("thumbnails", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


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
    previous = _recorded_thumbnails(out_dir)
    stamp = 0
    if previous:
        try:
            stamp = (out_dir / MANIFEST).stat().st_mtime_ns
        except OSError:
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
        self._subsets: OrderedDict[tuple[str, ...], Subset] = OrderedDict()
        self._subsets_lock = threading.Lock()
        self._keywords: dict[str, np.ndarray] | None = None  # keyword → ids, found at the first tag:
        self._videos: np.ndarray | None = None  # the ids of the videos, found at the first is:
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
        return len(self.among(Narrowing(folder)).ids) if folder else self.count

    def among(self, narrowing: Narrowing) -> Subset:
        """The images of `narrowing` (see there), to search among (`search`'s `only`); a
        BuscadorError when there are none. The last ones asked for are kept (a visitor searching
        one folder asks again), up to SUBSETS_KEPT and config.FOLDER_CACHE_MB of vectors."""
        wanted = narrowing.key()
        with self._subsets_lock:
            if (found := self._subsets.get(wanted)) is not None:
                self._subsets.move_to_end(wanted)
                return found
        ids = self._ids_of(narrowing)
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

    def how_many_captioned(self, words: str, ids: np.ndarray | None) -> int:
        """How many of `ids` (None: all) have `words` in their caption (0 for none), counted without
        keeping them, as `among` keeps a search's: a count that a search only mentions does not push
        the subsets searched out of those kept."""
        try:
            return len(self._captioned(words, ids))
        except BuscadorError:
            return 0

    def _ids_of(self, narrowing: Narrowing) -> np.ndarray:
        """The ids of `narrowing`'s images; a BuscadorError saying why when there are none."""
        folder, period, near = narrowing.folder, narrowing.period, narrowing.near
        ids = self._in_folder(folder) if folder else None
        if period is not None:
            ids = _within(ids, self._taken_in(period, folder))
            if not len(ids):
                raise BuscadorError(
                    f"no image of this index in folder {folder!r} was taken in {period.text}",
                    "no_taken_in_folder",
                    folder=folder,
                    period=period.text,
                )
        if near:
            there, place = self._near(near)
            there = _within(ids, there)
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
        if narrowing.kind is not None:
            ids = self._of_kind(narrowing.kind, ids)
        if narrowing.tag is not None:
            ids = self._with_tag(narrowing.tag, ids)
        if narrowing.without_tags:
            ids = self._without_tags(narrowing.without_tags, ids)
        if narrowing.stars is not None:
            ids = self._rated(narrowing.stars, ids)
        if narrowing.caption is not None:
            ids = self._captioned(narrowing.caption, ids)
        if narrowing.without_captions:
            ids = self._without_captions(narrowing.without_captions, ids)
        return self.catalog.ids() if ids is None else ids

    def in_date_order(self, subset: Subset) -> np.ndarray:
        """`subset`'s ids in the order they were taken (see Catalog.taken_order), worked out the
        first time and kept with it, so that each further page is a slice (a country holding
        half of a million photos: 0.76 s the first time)."""
        if not subset.order:
            subset.order.append(self.catalog.taken_order(subset.ids))
        return subset.order[0]

    def _of_kind(self, kind: str, ids: np.ndarray | None) -> np.ndarray:
        """Those of `ids` (None: all) that are videos, or photos, for `kind`; a BuscadorError
        when there are none, among the images already narrowed to or in the whole index."""
        with self._subsets_lock:
            if self._videos is None:
                self._videos = self.catalog.ids_of_videos()
            videos = self._videos
        if kind == media.VIDEO:
            found = _within(ids, videos)
        else:
            found = np.setdiff1d(self.catalog.ids() if ids is None else ids, videos, assume_unique=True)
        if not len(found):
            code = f"no_{kind}s_among" if ids is not None else f"no_{kind}s"
            raise BuscadorError(_NONE_OF_KIND[code], code)
        return found

    def _with_tag(self, tag: str, ids: np.ndarray | None) -> np.ndarray:
        """Those of `ids` (None: all) with keyword `tag`; a BuscadorError when there are none (among
        the images already narrowed to, or in the whole index)."""
        found = _within(ids, self._tagged(tag))
        if not len(found):
            narrowed = ids is not None
            where = "none of the images searched has" if narrowed else "no image of this index has"
            raise BuscadorError(
                f"{where} the keyword {tag!r}", "no_tag_among" if narrowed else "no_tag", tag=tag
            )
        return found

    def _tagged(self, tag: str) -> np.ndarray:
        """The ids of the images with keyword `tag` (as indexing.tags.fold writes it): the
        catalog's scan of its keywords as compared, or in an index made before, from every
        keyword's ids read once; a BuscadorError for an index that does not record keywords."""
        _require(self.catalog.tagged, "keywords")
        if (found := self.catalog.ids_tagged(tag)) is not None:
            return found
        with self._subsets_lock:
            if self._keywords is None:
                self._keywords = self.catalog.ids_by_keyword(fold)
            return self._keywords.get(tag, np.empty(0, np.int64))

    def _without_tags(self, tags: tuple[str, ...], ids: np.ndarray | None) -> np.ndarray:
        """Those of `ids` (None: all) with none of the keywords `tags`; a BuscadorError when every
        one has one."""
        shown = ", ".join(tags)
        return self._all_but(
            ids,
            [self._tagged(tag) for tag in tags],
            BuscadorError(f"every image searched has a keyword left out ({shown})", "all_tagged", tag=shown),
        )

    def _rated(self, stars: int, ids: np.ndarray | None) -> np.ndarray:
        """Those of `ids` (None: all) rated `stars` or more; a BuscadorError when there are none
        (`_or_why`)."""
        _require(self.catalog.rated, "ratings")
        return _or_why(
            ids,
            _within(ids, self.catalog.ids_rated(stars)),
            among=BuscadorError(
                f"none of the images searched is rated {stars} stars or more", "no_rated_among", stars=stars
            ),
            some=lambda: bool(self.catalog.ratings()),
            none_said=BuscadorError(
                "no image of this index has a rating (stars a photo editor wrote in its XMP)", "no_ratings"
            ),
            nowhere=BuscadorError(
                f"no image of this index is rated {stars} stars or more", "no_rated", stars=stars
            ),
        )

    def _captioned(self, words: str, ids: np.ndarray | None) -> np.ndarray:
        """Those of `ids` (None: all) whose caption has `words`; a BuscadorError when there are none
        (`_or_why`)."""
        _require(self.catalog.captioned, "captions")
        return _or_why(
            ids,
            _within(ids, self.catalog.ids_captioned(words)),
            among=BuscadorError(
                f"none of the images searched has “{words}” in its caption", "no_captioned_among", words=words
            ),
            some=lambda: self.catalog.captions() > 0,
            none_said=BuscadorError(
                "no image of this index has a caption (a title or description written in a photo "
                "editor or in Google Photos)",
                "no_captions",
            ),
            nowhere=BuscadorError(
                f"no image of this index has “{words}” in its caption", "no_captioned", words=words
            ),
        )

    def _without_captions(self, left_out: tuple[str, ...], ids: np.ndarray | None) -> np.ndarray:
        """Those of `ids` (None: all) whose caption has none of the `left_out` words (each a set of
        words it would have all of); a BuscadorError when every one has some."""
        _require(self.catalog.captioned, "captions")
        shown = ", ".join(left_out)
        return self._all_but(
            ids,
            [self.catalog.ids_captioned(words) for words in left_out],
            BuscadorError(
                f"every image searched has words left out in its caption ({shown})",
                "all_captioned",
                words=shown,
            ),
        )

    def _all_but(
        self, ids: np.ndarray | None, left_out: list[np.ndarray], refusal: BuscadorError
    ) -> np.ndarray:
        """Those of `ids` (None: all) in none of `left_out`; `refusal` raised when none is left."""
        found = np.setdiff1d(self.catalog.ids() if ids is None else ids, np.concatenate(left_out))
        if not len(found):
            raise refusal
        return found

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


def _within(ids: np.ndarray | None, found: np.ndarray) -> np.ndarray:
    """Those of `found` (ids in order) among `ids`, the images a narrowing has kept so far (None:
    all of them)."""
    return found if ids is None else np.intersect1d(ids, found, assume_unique=True)


def _or_why(
    ids: np.ndarray | None,
    found: np.ndarray,
    *,
    among: BuscadorError,
    some: Callable[[], bool],
    none_said: BuscadorError,
    nowhere: BuscadorError,
) -> np.ndarray:
    """`found`, the images a filter kept of `ids` (None: all), where there are any; else why not:
    none `among` the images already narrowed to, none in the whole index says anything of the
    kind (where not `some()`: `none_said`), or none says what was asked (`nowhere`)."""
    if len(found):
        return found
    if ids is not None:
        raise among
    raise nowhere if some() else none_said


def _require(recorded: bool, what: str) -> None:
    """Refuse a search by `what` ("keywords", "ratings", "captions") in an index that does not record them
    (built by a version before they were read, opened as it is): say to build it again."""
    if not recorded:
        raise BuscadorError(
            f"this index does not record its photos' {what}: build it again with this version of "
            "Buscador Visual, which reads them from the photos",
            f"{what}_not_read",
        )
