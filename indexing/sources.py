"""Sources: where images come from — a local folder, or a Hugging Face dataset (by name or on disk).

Every source implements `Source`: it describes itself (for the manifest), says how many items it
will give where it knows, and yields `SourceItem`s in a stable order, each with a key that
identifies it across builds and a fingerprint that changes when its content does; that is what
makes re-builds incremental.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol

from PIL import Image

from indexing import camera_raw, video, xmp
from indexing.captions import caption_of
from indexing.config import SKIPPED_FOLDERS, usable_cores
from indexing.dates import dataset_date
from indexing.errors import BuscadorError
from indexing.headers import dataset_position
from indexing.images import IMAGE_EXTENSIONS, UNREAD_FORMATS, WebFile, is_url

log = logging.getLogger(__name__)

# A label or metadata field is cut to this many characters: a caption, not a book.
MAX_FIELD_CHARS = 500
# A dataset's rows are hashed on threads this many rows ahead of the one handed out, those of
# images past HASHED_APART bytes (smaller ones cost less to hash than to hand to a thread).
HASHED_AHEAD = 32
HASHED_BYTES = 64 * 2**20  # and no more bytes than this held ahead (a dataset of big scans)
HASHED_APART = 64 * 1024
# A video is known by its size and this many bytes of its start, middle and end, not all of it
# (`sampled_content_hash`): 3 MB read of a 4 GB video on a NAS, where reading it took 40 s at
# 100 MB/s.
SAMPLED = 2**20
# The field of a dataset row's meta that keeps its image's web address, where the dataset gives one.
WEB_ADDRESS = "image_url"


@dataclass(frozen=True)
class SourceItem:
    """One image of a source, not yet decoded."""

    key: str  # stable identity: relative path, or "split/row"
    label: str  # what people see
    fingerprint: str  # changes whenever the image does
    data: Path | bytes | Image.Image | WebFile  # what the embedder decodes (a WebFile: once downloaded)
    content: str | None = None  # content_hash of the image's bytes, where the source knows it
    meta: dict[str, str] | None = None  # the source's own fields for it (caption, artist, URL, ...)
    id: int | None = None  # in a shard build, its position in the whole source (see Shard)
    taken: str | None = None  # when it was taken, where the source says (a dataset's date column)
    lat: float | None = None  # where it was taken, where the source says (its position columns)
    lon: float | None = None
    caption: str | None = None  # its caption, where the source says (a dataset's caption column)


def content_hash(data: bytes) -> str:
    """Identifies an image's content: the same bytes under any name give the same hash."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def sampled_content_hash(file: BinaryIO) -> str:
    """A big file's identity without reading it all (a video of gigabytes on a network share):
    a hash of its size and of its first, middle and last SAMPLED bytes; a small one's
    `content_hash`. A copy, a rename or a move gives the same; a file rewritten in place of the
    same size and the same three parts would too (a video's header and index are at its ends)."""
    size = os.fstat(file.fileno()).st_size
    if size <= 3 * SAMPLED:
        return content_hash(file.read())
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=16)
    for at in (0, size // 2 - SAMPLED // 2, size - SAMPLED):
        file.seek(at)
        digest.update(file.read(SAMPLED))
    return digest.hexdigest()


@dataclass(frozen=True)
class Shard:
    """Slice `index` of `count` of a source, for a build spread over several machines: the items
    whose key's stable hash falls in it. Each keeps its position in the whole source as its id,
    so merged slices get the ids one build of the whole source gives (see indexing.merge)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """ "I/N" (I from 0 to N − 1) → Shard(I, N)."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            index, count = -1, 0
        if not 0 <= index < count:
            raise BuscadorError(f"a shard is written I/N with I from 0 to N-1 (e.g. 0/4), not {text!r}")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, key: str) -> bool:
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def items(self, source: Source) -> Iterator[SourceItem]:
        """This slice's items of `source`, each with its position in the whole source as its id (a
        dataset's rows of other slices go by unhashed)."""
        listed = source.items(keep=self.holds) if isinstance(source, DatasetSource) else source.items()
        for position, item in enumerate(listed):
            if self.holds(item.key):
                yield replace(item, id=position)

    def share(self, total: int) -> int:
        """About how many of `total` items fall in this slice."""
        return -(-total // self.count)


class Source(Protocol):
    """Where a build's images come from."""

    # Items the source could not even hand over (an unlistable folder, an unusable dataset
    # value), one line each, filled while `items()` runs.
    warnings: list[str]
    # Files it left out for their format (HEIC without its reader): (name, format, advice) each;
    # the build reports them in one line a format, not one a file.
    left_out: list[tuple[str, str, str]]
    # What it could not read this time: keys, and folders as key prefixes ending in "/" ("" for
    # the whole source). Images indexed there stay as they are instead of being taken for removed.
    unreachable: list[str]
    # Its folders that are not there now (of several: a disk not mounted); a build refuses one its
    # index does not have yet, a typing slip more likely than a disk away.
    absent: list[str]
    # Files it passed over as no image, by extension ("" for none): what a build that found no
    # image says was there instead.
    others: Counter[str]
    # Whether its images are files (a folder's), listed before a build starts: their headers are
    # read by path (`file`), not from their bytes as a dataset's rows are.
    of_files: bool

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the source (JSON-ready)."""
        ...

    def total(self) -> int | None:
        """How many items `items()` will yield, where the source knows it up front."""
        ...

    def items(self) -> Iterator[SourceItem]:
        """The images, in a stable order."""
        ...

    def file(self, key: str) -> Path | None:
        """The file the image of `key` is, to read its header (its date taken); None for a
        source of no files."""
        ...


def source_text(described: dict[str, Any]) -> str:
    """One line naming a source from what its `describe()` gave: "folder /photos", "folder /photos
    (leaving out Exports)", "folders /photos, /nas/photos", "dataset x [train]"."""
    if described.get("kind") == "dataset":
        return f"dataset {described.get('dataset')} [{described.get('split')}]"
    excluded = f" (leaving out {', '.join(described['exclude'])})" if described.get("exclude") else ""
    if roots := described.get("roots"):
        return f"folders {', '.join(roots.values())}{excluded}"
    return f"folder {described.get('root', '?')}{excluded}"


def folder_roots(described: dict[str, Any]) -> dict[str, Path]:
    """The folders of an index of folders, from its source's `describe()`: the name that starts
    its images' keys → the folder ("" → the folder, for an index of one); {} for a dataset's."""
    if described.get("kind") != "folder":
        return {}
    if roots := described.get("roots"):
        return {name: Path(folder) for name, folder in roots.items()}
    return {"": Path(described["root"])} if described.get("root") else {}


def file_of(roots: dict[str, Path], key: str) -> Path | None:
    """Where the image of `key` is, among `roots` (`folder_roots`): never outside its folder,
    whatever a catalog says; None for a key of none of them."""
    relative = PurePosixPath(key)
    if relative.is_absolute() or ".." in relative.parts:
        return None
    if "" in roots:
        return roots[""] / relative
    for name in sorted(roots, key=len, reverse=True):  # "nas/Photos" before "Photos"
        if key.startswith(f"{name}/"):
            return roots[name] / key[len(name) + 1 :]
    return None


def same_collection(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two sources, as their `describe()` gives them, are one collection: the same folder,
    or the same dataset and split (a local one wherever it is named from); their options
    (exclusions, limit, columns, revision) may differ."""
    return _collection(a) == _collection(b)


def adds_folders(was: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether the folders `now` describes are those `was` describes and more: an index of folders
    grown by one (its images keep their vectors, under keys that name their folder)."""
    before, after = ({str(f) for f in folder_roots(d).values()} for d in (was, now))
    return bool(before) and before < after


def _collection(described: dict[str, Any]) -> tuple[Any, ...]:
    name = described.get("dataset")
    if isinstance(name, str) and Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    folders = tuple(sorted(str(folder) for folder in folder_roots(described).values()))
    return described.get("kind"), folders, name, described.get("split")


class FolderSource:
    """Image files under a folder (or several: a laptop's and a NAS's), recursively, in sorted order.

    Hidden files and folders are skipped, and so are NAS and system housekeeping folders
    (config.SKIPPED_FOLDERS: thumbnails, trash), whatever matches an `exclude` pattern (a glob,
    matched against names and against paths in the folder), and symlinks that lead outside the
    folder (and symlink loops). Names that are not valid UTF-8, and photo formats this installation
    cannot read (HEIC without pi-heif), are left out and reported (`warnings`, `left_out`). A
    camera RAW file beside a JPEG of the same name (RAW+JPEG) is left out: the JPEG stands for it;
    so is a video beside a photo of its name (a Live Photo's motion: the photo stands for it).
    Fingerprint: size and modification time, as rclip does: cheap to re-check; and its XMP
    sidecar's, where it has one (indexing.xmp: an edited sidecar has its header read again).

    An image's key is its path in the folder; with several folders, its folder's name first
    (`Photos/2019/beach.jpg`; two folders of one name are told apart by the folders above them,
    `nas/Photos` and `ana/Photos`). One of several that is not there now, or lists no image at all
    (the empty mount point of a disk not mounted), is one the build cannot read this time: its
    images stay indexed.
    """

    kind = "folder"
    of_files = True

    def __init__(
        self, root: str | os.PathLike[str], *more: str | os.PathLike[str], exclude: Sequence[str] = ()
    ) -> None:
        named = [(Path(folder).expanduser().resolve(), folder) for folder in (root, *more)]
        given = list(dict.fromkeys(folder for folder, _ in named))  # each once
        for folder, original in named:
            if not folder.is_dir() and (len(given) == 1 or folder.exists()):
                raise BuscadorError(f"{original} is not a folder")
        if not any(folder.is_dir() for folder in given):
            raise BuscadorError(f"none of {', '.join(map(str, given))} is there now")
        self.absent = [str(folder) for folder in given if not folder.exists()]
        for folder in given:
            if inside := next(
                (other for other in given if other != folder and folder.is_relative_to(other)), None
            ):
                raise BuscadorError(
                    f"{folder} is inside {inside}, whose images it would give twice: give one of them"
                )
        self.root = given[0]
        # The name that starts each folder's keys: none for one folder.
        self.roots = {"": self.root} if len(given) == 1 else _named(given)
        self.exclude = tuple(pattern.strip("/") for pattern in exclude)
        self.warnings: list[str] = []
        self.left_out: list[tuple[str, str, str]] = []
        self.unreachable: list[str] = []
        self.others: Counter[str] = Counter()
        self._scanned: list[SourceItem] | None = None

    def describe(self) -> dict[str, Any]:
        where = (
            {"root": str(self.root)}
            if "" in self.roots
            else {"roots": {name: str(folder) for name, folder in self.roots.items()}}
        )
        return {"kind": self.kind} | where | ({"exclude": list(self.exclude)} if self.exclude else {})

    def total(self) -> int:
        self._scanned = self._scan()
        return len(self._scanned)

    def items(self) -> Iterator[SourceItem]:
        # The listing `total()` just made, so both agree; a later build lists the folder anew.
        listing, self._scanned = self._scanned or self._scan(), None
        return iter(listing)

    def file(self, key: str) -> Path | None:
        return file_of(self.roots, key)

    def _scan(self) -> list[SourceItem]:
        self.warnings, self.left_out, self.unreachable, self.others = [], [], [], Counter()
        listing: list[SourceItem] = []
        for name, root in self.roots.items():
            base = f"{name}/" if name else ""
            if not root.is_dir():
                self.warnings.append(f"{root}: not there now (a disk not mounted?)")
                self.unreachable.append(base)
                continue
            found = list(self._walk(root, base, root, {root}, base))
            if name and not found:  # one of several, empty: its images stay, as the build says
                self.unreachable.append(base)
            listing += found
        return listing

    def _walk(
        self, folder: Path, prefix: str, real_folder: Path, visited: set[Path], base: str
    ) -> Iterator[SourceItem]:
        """The images under `folder` (reached as `prefix`; its root's images' keys start with
        `base`), whose real path is `real_folder`, and those of its parents `visited` (a symlink
        back to one of them is a loop). Only a symlink's real path is looked up: each lookup costs a
        system call a path component, which was most of the time a 100,000-file listing took."""
        root = self.roots[base[:-1]]
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            self.warnings.append(f"{prefix or '.'}: cannot list folder ({exc.strerror})")
            self.unreachable.append(prefix)
            return
        names = [
            (stem.lower(), suffix.lower()) for stem, suffix in (os.path.splitext(e.name) for e in entries)
        ]
        shots = {stem for stem, suffix in names if suffix in camera_raw.TWIN_SUFFIXES}
        stills = {  # photos this installation reads (a HEIC without pi-heif leaves its video in)
            stem for stem, suffix in names if suffix in video.STILL_SUFFIXES and suffix in IMAGE_EXTENSIONS
        }
        sidecars = {  # photo editors' XMP files, by lowercase name
            e.name.lower(): e for e, (_, suffix) in zip(entries, names, strict=True) if suffix == xmp.SUFFIX
        }
        for entry, (stem, suffix) in zip(entries, names, strict=True):
            rel = f"{prefix}{entry.name}"
            if (
                entry.name.startswith(".")
                or entry.name in SKIPPED_FOLDERS
                or self._excluded(entry.name, rel[len(base) :])
            ):
                continue
            if suffix in camera_raw.EXTENSIONS and stem in shots:
                continue  # RAW+JPEG: the camera's JPEG of the shot stands for it
            if suffix in video.EXTENSIONS and stem in stills:
                continue  # a Live Photo's motion: its photo stands for it
            if not _utf8(entry.name):  # the catalog, the app and the console all need text
                self.warnings.append(f"{_shown(rel)}: its name is not valid UTF-8: rename it to index it")
                continue
            try:
                link = entry.is_symlink()
                real = Path(os.path.realpath(entry.path)) if link else None
                if real is not None and not real.is_relative_to(root):
                    continue
                if entry.is_dir():
                    real = real or real_folder / entry.name
                    if real not in visited:
                        yield from self._walk(Path(entry.path), rel + "/", real, visited | {real}, base)
                elif entry.is_file():
                    if suffix in IMAGE_EXTENSIONS:
                        st = entry.stat()
                        fingerprint = (
                            f"{st.st_size}:{st.st_mtime_ns}{self._sidecar_stamp(entry.name, sidecars)}"
                        )
                        yield SourceItem(rel, rel, fingerprint, Path(entry.path))
                    elif suffix in UNREAD_FORMATS:
                        self.left_out.append((rel, *UNREAD_FORMATS[suffix]))
                    else:
                        self.others[suffix] += 1
            except OSError as exc:
                self.warnings.append(f"{rel}: cannot read ({exc.strerror})")
                self.unreachable.extend([rel, rel + "/"])  # a file, or a folder whose images stay

    @staticmethod
    def _sidecar_stamp(name: str, sidecars: dict[str, os.DirEntry[str]]) -> str:
        """The XMP sidecar's part of the fingerprint of the photo `name`, among its folder's
        `sidecars` ("" for none): an edited sidecar has the photo's header read again."""
        found = xmp.sidecar_of(name, sidecars) if sidecars else None
        if found is None:
            return ""
        try:
            st = found.stat()
        except OSError:
            return ""
        return xmp.stamp(st.st_size, st.st_mtime_ns)

    def _excluded(self, name: str, rel: str) -> bool:
        """Whether an `exclude` pattern matches this entry's name or its path under its folder."""
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p) for p in self.exclude)


def _named(folders: list[Path]) -> dict[str, Path]:
    """Each folder by the fewest of its last path components that tell it from the others:
    `Photos` and `Pictures`; `nas/Photos` and `ana/Photos`."""

    def tail(folder: Path, n: int) -> str:
        return "/".join(folder.parts[-n:]).strip("/") or "root"

    for n in range(1, max(len(folder.parts) for folder in folders) + 1):
        names = [tail(folder, n) for folder in folders]
        if len(set(names)) == len(names):
            return dict(zip(names, folders, strict=True))
    return {str(folder).strip("/") or "root": folder for folder in folders}


def holds_images(folder: Path, *, look_at: int = 2000) -> bool:
    """Whether image files are in `folder` or its subfolders, looking at `look_at` entries at
    most: a folder to index, given where an index was expected."""
    seen = 0
    for _, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".") and name not in SKIPPED_FOLDERS]
        if any(os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS for name in files):
            return True
        seen += len(files) + len(folders)
        if seen >= look_at:
            return False
    return False


def _utf8(name: str) -> bool:
    """Whether a file name read from the disk is text (Python keeps other bytes as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A file name that is not valid UTF-8, printable: its odd bytes as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class DatasetSource:
    """Rows of a Hugging Face dataset: a Hub name, a local dataset folder, or parquet file(s).

    Streams, so a large dataset never has to fit in memory or on disk. The image column may hold
    PIL images, raw bytes, {"bytes", "path"} dicts or file paths. `label_column` names the field
    shown under each result (a caption, a title), `meta_columns` the fields kept with each row
    (artist, source URL, licence...), `date_column` when each image was taken and
    `position_columns` (latitude, longitude) where (else, or where empty, its EXIF says,
    indexing.headers), `caption_column` its caption, for `caption:` searches (indexing.captions).
    The fingerprint covers the image's bytes and those fields, so a changed caption, date or
    position updates its row (reusing the image's vector).
    """

    kind = "dataset"
    of_files = False

    def __init__(
        self,
        name: str,
        *,
        split: str = "train",
        image_column: str | None = None,
        limit: int | None = None,
        revision: str | None = None,
        label_column: str | None = None,
        meta_columns: Sequence[str] = (),
        date_column: str | None = None,
        position_columns: tuple[str, str] | None = None,
        caption_column: str | None = None,
    ) -> None:
        self.name = name
        self.caption_column = caption_column
        self.date_column = date_column
        self.position_columns = position_columns
        self.split = split
        self.image_column = image_column
        self.label_column = label_column
        self.meta_columns = tuple(meta_columns)
        self.limit = limit
        self.revision = revision
        self.warnings: list[str] = []
        self.left_out: list[tuple[str, str, str]] = []  # a dataset's rows have no file format
        self.unreachable: list[str] = []  # a dataset that cannot be read stops the build instead
        self.absent: list[str] = []
        self.others: Counter[str] = Counter()  # a row is an image or unusable (`warnings`)
        self._base = Path(name).expanduser()
        self._opened: tuple[Any, str] | None = None

    def describe(self) -> dict[str, Any]:
        """The source as given, with the image column found once the dataset was opened."""
        column = self._opened[1] if self._opened else self.image_column
        return (
            {
                "kind": self.kind,
                "dataset": self.name,
                "split": self.split,
                "image_column": column,
                "revision": self.revision,
                "limit": self.limit,
                "label_column": self.label_column,
                "meta_columns": list(self.meta_columns),
            }
            | ({"date_column": self.date_column} if self.date_column else {})
            | ({"position_columns": list(self.position_columns)} if self.position_columns else {})
            | ({"caption_column": self.caption_column} if self.caption_column else {})
        )

    def file(self, key: str) -> None:
        return None  # a row's image is bytes in the dataset

    def total(self) -> int | None:
        """How many rows the build will see, where the dataset says (a streamed one may not)."""
        ds, _ = self._open()
        try:
            n = len(ds)
        except TypeError:
            splits = getattr(ds.info, "splits", None) or {}
            n = splits[self.split].num_examples if self.split in splits else None
        if self.limit is None:
            return n
        return self.limit if n is None else min(n, self.limit)

    def _open(self) -> tuple[Any, str]:
        """The split as an iterable dataset (image column left undecoded where possible), and the
        image column's name; opened once per source object."""
        if self._opened is None:
            self._opened = self._load()
        return self._opened

    def _load(self) -> tuple[Any, str]:
        import datasets

        try:
            if (self._base / "state.json").is_file() or (self._base / "dataset_dict.json").is_file():
                ds = datasets.load_from_disk(str(self._base))
                if isinstance(ds, datasets.DatasetDict):
                    ds = ds[self.split]
            elif self._base.is_file() and self._base.suffix == ".parquet":
                ds = datasets.load_dataset(
                    "parquet", data_files=str(self._base), split=self.split, streaming=True
                )
            else:
                ds = datasets.load_dataset(
                    self.name, split=self.split, streaming=True, revision=self.revision
                )
        except KeyError:
            raise BuscadorError(f"dataset {self.name!r} has no split {self.split!r}") from None
        except (FileNotFoundError, ValueError, OSError, ConnectionError) as exc:
            raise BuscadorError(
                f"cannot load dataset {self.name!r} (split {self.split!r}): {str(exc).splitlines()[0]}"
            ) from None
        column = self.image_column or _guess_image_column(ds)
        features = ds.features or {}
        if column not in features and features:
            raise BuscadorError(
                f"dataset {self.name!r} has no column {column!r}; its columns are "
                f"{', '.join(features)}. Choose one with --image-column."
            )
        if isinstance(features.get(column), datasets.Image):
            ds = ds.cast_column(column, datasets.Image(decode=False))
        return ds, column

    def items(self, keep: Callable[[str], bool] | None = None) -> Iterator[SourceItem]:
        ds, column = self._open()
        return self.rows(ds, column, keep)

    def rows(
        self, records: Iterable[dict[str, Any]], column: str, keep: Callable[[str], bool] | None = None
    ) -> Iterator[SourceItem]:
        """The items of dataset `records` (dicts), their images in `column`; with `keep`, the rows
        whose keys it keeps (a shard's), the others handed on without their image, unhashed, as
        row positions alone (a shard build hashed every row of the dataset).

        Each image's bytes are hashed (its content and fingerprint) on threads, a few rows ahead,
        not on the thread that takes the items: a build's, which feeds the model (a 3.8 MB photo
        takes 2.7 ms to hash, the ceiling of a GPU build at one thread)."""
        self.warnings = []
        ahead: deque[tuple[int, dict[str, Any], bytes | Image.Image | WebFile, str, Future[str]]] = deque()
        held = 0  # bytes of the images in `ahead`
        with ThreadPoolExecutor(min(4, usable_cores()), thread_name_prefix="hash") as hashing:
            for row, record in enumerate(records):
                if self.limit is not None and row >= self.limit:
                    break
                if row == 0:  # a streamed dataset may not list its columns up front
                    self._check_columns(record, column)
                kept = keep is None or keep(f"{self.split}/{row}")
                try:
                    data, name = self._image_data(record[column])
                except (OSError, TypeError, ValueError) as exc:  # (in every shard: positions agree)
                    if kept:
                        self.warnings.append(f"{self.split}/{row}: unusable image value ({exc})")
                    continue
                if not kept:
                    data = b""
                ahead.append((row, record, data, name, _hashed(data, hashing) if kept else _UNHASHED))
                held += _size(data)
                while len(ahead) > HASHED_AHEAD or (held > HASHED_BYTES and len(ahead) > 1):
                    held -= _size(ahead[0][2])
                    yield self._item(*ahead.popleft())
            while ahead:
                yield self._item(*ahead.popleft())

    def _item(
        self,
        row: int,
        record: dict[str, Any],
        data: bytes | Image.Image | WebFile,
        name: str,
        digest: Future[str],
    ) -> SourceItem:
        """Row `row`'s item: its image `data` (hashed into `digest`), label, fields and fingerprint."""
        label = f"{self.split}[{row}]" + (f" {name}" if name else "")
        if self.label_column and record[self.label_column] not in (None, ""):
            label = str(record[self.label_column])[:MAX_FIELD_CHARS]
        meta = {c: str(record[c])[:MAX_FIELD_CHARS] for c in self.meta_columns if record[c] is not None}
        if isinstance(data, WebFile):  # each result opens its image
            meta.setdefault(WEB_ADDRESS, data.url)
        taken = dataset_date(record[self.date_column]) if self.date_column else None
        columns = self.position_columns
        lat, lon = dataset_position(*(record[c] for c in columns)) if columns else (None, None)
        caption = caption_of(str(record[self.caption_column] or "")) if self.caption_column else None
        fields = [label, meta] + ([taken] if self.date_column else []) + ([lat, lon] if columns else [])
        fields += [caption] if caption is not None else []
        described = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        known = digest.result()  # the content's hash, or the web address's
        fingerprint = (
            content_hash(f"{known}{described}".encode())
            if self.label_column or meta or self.date_column or columns or self.caption_column
            else known
        )
        return SourceItem(
            f"{self.split}/{row}",
            label,
            fingerprint,
            data,
            None if isinstance(data, WebFile) else known,
            meta or None,
            taken=taken,
            lat=lat,
            lon=lon,
            caption=caption,
        )

    def _check_columns(self, record: dict[str, Any], image_column: str) -> None:
        for column, flag in [
            (image_column, "--image-column"),
            *([(self.label_column, "--label-column")] if self.label_column else []),
            *((c, "--meta-columns") for c in self.meta_columns),
            *([(self.date_column, "--date-column")] if self.date_column else []),
            *((c, "--position-columns") for c in self.position_columns or ()),
            *([(self.caption_column, "--caption-column")] if self.caption_column else []),
        ]:
            if column not in record:
                raise BuscadorError(
                    f"dataset {self.name!r} has no column {column!r}; its columns are "
                    f"{', '.join(record)}. Choose one with {flag}.",
                    "no_column",
                    column=column,
                )

    def _image_data(self, value: Any) -> tuple[bytes | Image.Image | WebFile, str]:
        """Raw bytes (or a decoded image, or an image's web address, downloaded by the build where
        the row is new) and an original file name, from any image encoding."""
        if isinstance(value, Image.Image):
            return value, ""
        if isinstance(value, (bytes, bytearray)):
            return bytes(value), ""
        if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
            path = value.get("path") or ""
            if value.get("bytes"):
                return bytes(value["bytes"]), Path(path).name
            value = path
        if isinstance(value, str) and value:
            if is_url(value):
                return WebFile(value), Path(urllib.parse.urlsplit(value).path).name
            return self._read_path(value), Path(value).name
        raise TypeError(f"expected an image, bytes, a path or a web address, got {type(value).__name__}")

    def _read_path(self, path: str) -> bytes:
        candidate = Path(path)
        if not candidate.is_absolute() and self._base.is_dir():
            candidate = self._base / candidate
        if not candidate.is_file():  # remote paths (hf://…) go through fsspec, as datasets does
            import fsspec

            try:
                with fsspec.open(path, "rb") as f:
                    return f.read()
            except ImportError as exc:  # s3://… without s3fs: so for every row
                raise BuscadorError(
                    f"cannot read the images of dataset {self.name!r}, such as {path}: {exc}"
                ) from None
        return candidate.read_bytes()


# What a row another shard builds is known by: nothing (see DatasetSource.rows).
_UNHASHED: Future[str] = Future()
_UNHASHED.set_result("")


def _size(data: bytes | Image.Image | WebFile) -> int:
    """About how many bytes a row's image holds."""
    if isinstance(data, WebFile):
        return 0
    return len(data) if isinstance(data, bytes) else data.width * data.height * len(data.getbands())


def _hashed(data: bytes | Image.Image | WebFile, hashing: ThreadPoolExecutor) -> Future[str]:
    """The content hash of a row's image, computed on `hashing`'s threads for a big one (hashlib
    lets go of Python's lock), else here; for an image on the web, a hash of its address, which
    stands for its content (a build downloads only the images of new addresses)."""
    if isinstance(data, WebFile):
        data = f"url:{data.url}".encode()
    raw = data.tobytes() if isinstance(data, Image.Image) else data
    if len(raw) > HASHED_APART:
        return hashing.submit(content_hash, raw)
    done: Future[str] = Future()
    done.set_result(content_hash(raw))
    return done


def _guess_image_column(ds: Any) -> str:
    import datasets

    features = ds.features or {}
    for name, feature in features.items():
        if isinstance(feature, datasets.Image):
            return name
    return "image"
