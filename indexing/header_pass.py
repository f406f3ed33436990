"""When and where a build's images were taken, recorded in the catalog: read by the decode
processes beside their decoding, from a dataset row's bytes or columns as the build goes by it,
or from the files' headers in a pass after the model (indexing.headers reads one header)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import BrokenExecutor, CancelledError, Future
from pathlib import Path

from indexing import headers, places
from indexing.catalog import Catalog, Said
from indexing.decoding import facts_of, header_facts
from indexing.guard import Pool
from indexing.progress import progress_bar
from indexing.sources import Source, SourceItem

# File headers read at a time, each batch one catalog transaction.
HEADERS_CHUNK = 2048
# File headers a decode process reads in one task, beside its decoding.
HEADERS_TASK = 64
# What a folder's header pass reads, by version: 2 added Google Takeout's sidecars (and videos'); 3
# made a video's UTC time local, where it says where it was shot; 4 read how long a video lasts; 5
# read XMP keywords; 6 star ratings; 7 the people Takeout's sidecars name; 8 the towns IPTC
# locations name; 9 captions; 10 a DNG's (a TIFF-built RAW's that Pillow cannot open) keywords,
# rating and GPS position, GPS minutes or seconds of 60, a date and position from a file's own
# XMP where its EXIF has none, keywords and captions from IPTC (Picasa's) and Windows' tags where
# XMP has none, and the names of XMP's face regions as keywords; 11 the town an IPTC record's
# location names (an older Photo Mechanic's; ISO's three-letter country codes) where XMP names
# none. An index read by an older one reads every image's header again, once (`reread`).
HEADERS_READER = 11


class HeadersAhead:
    """When and where a build's new and changed files were taken, read by its decode processes
    beside their decoding (a task for a few files), when it has processes: on a GPU, where the
    header pass after the model would add a quarter to the build (0.3 ms an image on this thread
    against about 1 ms). What they could not read is left to that pass (`read_headers`); without
    processes (threads, on the CPU, where the model holds the cores) it reads them all."""

    def __init__(self, pool: Pool | None) -> None:
        self._pool = pool
        self._waiting: list[tuple[str, Path]] = []  # (key, file)
        self._asked: list[tuple[list[str], Future[list[headers.Facts | None]]]] = []

    def passing(self, items: Iterable[SourceItem]) -> Iterator[SourceItem]:
        """The items, each file among them asked for in passing."""
        for item in items:
            if self._pool is not None and isinstance(item.data, Path):
                self._waiting.append((item.key, item.data))
                if len(self._waiting) == HEADERS_TASK:
                    self._ask()
            yield item
        self._ask()

    def _ask(self) -> None:
        if self._pool is not None and self._waiting:
            keys, paths = zip(*self._waiting, strict=True)
            self._asked.append((list(keys), self._pool.submit(facts_of, list(paths))))
            self._waiting = []

    def record(self, catalog: Catalog) -> None:
        """Record what was read, once the pool is done and every row written (a build's rows
        are written unread)."""
        read = []
        for keys, future in self._asked:
            try:
                facts = future.result()
            except (BrokenExecutor, CancelledError):  # a decode process that died: the pass reads them
                continue
            read += [said(f, key) for key, f in zip(keys, facts, strict=True) if f is not None]
        catalog.set_facts(read)


class UnreadRows:
    """The unchanged rows of a dataset whose header was never read (an index built before dates,
    or places, were read; rows embedded from already decoded pictures): read from the row's
    bytes as the build goes by it, once, without embedding it again. A folder's files are read
    by path after the build (`read_headers`). 0.13 ms a row with a phone's EXIF, on the thread
    that takes the rows, in the one build that reads them."""

    def __init__(self, catalog: Catalog, source: Source) -> None:
        self._catalog = catalog
        self._keys = set() if source.of_files else set(catalog.unread())
        self._read: list[Said] = []

    def passing(self, item: SourceItem) -> None:
        """Read unchanged `item`'s header (its columns first) if it was never read."""
        if item.key in self._keys:
            taken, lat, lon = when_and_where(item, header_facts(item.data) if header_wanted(item) else None)
            if taken is not None:  # None: a picture given decoded, without a date column
                # (A dataset's row: no keywords nor rating; its caption, its column's.)
                self._read.append((taken, lat, lon, None, (), None, item.caption or "", item.key))
                if len(self._read) == HEADERS_CHUNK:  # unchanged rows: no commit writes them
                    self.record()

    def record(self) -> None:
        """Record what was read."""
        self._catalog.set_facts(self._read)
        self._read = []


def read_headers(source: Source, catalog: Catalog, *, progress: bool, again: Sequence[str] = ()) -> None:
    """Record when and where each image not read yet was taken, from its file's EXIF header (or
    name): the new and changed images of a build without decode processes (`HeadersAhead` reads
    them where there are), once every image of an index built before dates (or places) were
    read, and the keys `again` (read by an older reader, which found nothing there). Then name the
    town of each new position.

    Apart from the decoding threads, so that each stays as fast as it can; headers alone, on this
    thread: 0.2-0.3 ms an image with its position and town, where threads, the parsing holding
    the GIL, were slower (dates alone: 0.15 against 0.2-0.3 ms; benchmarks/bench_dates.py). A
    source of no files reads none (a dataset's rows are read from their bytes as they are
    embedded, and those of an older index as a build goes by them, `UnreadRows`)."""
    if source.of_files:
        unread = list(dict.fromkeys([*catalog.unread(), *again]))
        bar = progress_bar(
            len(unread), "reading headers", "img", shown=progress and len(unread) > HEADERS_CHUNK
        )
        with bar:
            for start in range(0, len(unread), HEADERS_CHUNK):
                chunk = unread[start : start + HEADERS_CHUNK]
                read = [(headers.from_file(source.file(key)), key) for key in chunk]
                catalog.set_facts([said(f, key) for f, key in read if f is not None])
                bar.update(len(chunk))
    places.name_towns(catalog)


def reread(catalog: Catalog, source: Source, keys: Iterable[str]) -> list[str]:
    """The keys whose headers are read again, once, for an index of files read by an older reader
    (HEADERS_READER): all its `keys` (the caller has them at hand). What the newer ones read may
    be inside any photo's file (an editor's export's keywords, rating, IPTC town or caption), which nothing
    else tells apart: 0.24 ms a photo, about 4 minutes at a million, once, with a progress bar."""
    reader = int(catalog.get_meta("headers_reader") or 1) if source.of_files else HEADERS_READER
    return list(keys) if reader < HEADERS_READER else []


def said(facts: headers.Facts, key: str) -> Said:
    """What the header of the image of `key` said, as the catalog records it: a photo without a
    position placed at the centre of the town its IPTC location names, where there is one."""
    lat, lon = facts.lat, facts.lon
    if lat is None and facts.town and (centre := places.centre_of(facts.town)):
        lat, lon = centre
    return (facts.taken, lat, lon, facts.seconds, facts.tags, facts.rating, facts.caption, key)


def header_wanted(item: SourceItem) -> bool:
    """Whether the header of a dataset row's bytes is to be read: its columns lack a date or a
    position (a folder's files are read by path, `HeadersAhead` and `read_headers`)."""
    return isinstance(item.data, bytes) and (not item.taken or item.lat is None)


def when_and_where(
    item: SourceItem, read: headers.Facts | None
) -> tuple[str | None, float | None, float | None]:
    """When and where a dataset's `item` was taken: its date and position columns', else what its
    header says (`read`, None where it was not read); None as the date: not read."""
    taken = item.taken or (read.taken if read else None)
    if item.lat is not None:
        return taken, item.lat, item.lon
    return (taken, read.lat, read.lon) if read else (taken, None, None)
