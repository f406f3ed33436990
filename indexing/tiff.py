"""A TIFF's picture (a scan's TIFF, and the camera RAW files built as TIFFs: DNG, NEF, ARW, CR2...),
read from its directories, for its picture hash (indexing.picture_hash). Decoding is Pillow's, or
LibRaw's for RAW files.

A TIFF is a chain of directories (IFDs), each a list of tagged entries (the picture's size,
compression, colours, orientation; where its strips or tiles of data lie), with more directories
below some (a DNG's RAW data, in a SubIFD). Metadata is entries too (XMP, IPTC, a description, the
EXIF and GPS directories' pointers, Windows' rating and keywords), which editors rewrite, often
moving the picture's strips to other places in the file: the picture is the entries but those
(`METADATA`), with each strip's or tile's bytes in place of where it lies.
"""

from __future__ import annotations

from typing import Literal

# Entries that are metadata, not picture: the document and page names, description, maker and
# model, software, date, artist, host computer, copyright, XMP, IPTC, Photoshop's resources, the
# EXIF, GPS and interoperability directories' pointers, Windows' title, comment, author, keywords,
# subject and rating, DNG's private data (a maker's notes, with offsets into the file) and what a
# DNG says of its preview's making (application, version, settings, when; the preview is hashed).
METADATA = frozenset(
    {269, 270, 271, 272, 285, 305, 306, 315, 316, 33432, 700, 33723, 34377, 34665, 34853, 40965}
    | {40091, 40092, 40093, 40094, 40095, 18246, 18249, 50740, 50966, 50967, 50968, 50969, 50971}
)
# Entries that say where data lies, each with the entry that says how long: strips, tiles, and an
# old-style JPEG's stream. The data is the picture, not where it lies.
_DATA = {273: 279, 324: 325, 513: 514}
_SUB_DIRECTORIES = 330
# Bytes of each entry type's values (BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED,
# SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_ORDERS: dict[bytes, Literal["little", "big"]] = {b"II*\0": "little", b"MM\0*": "big"}
# A file with more directories, or more entries in one, is not one this module reads.
MOST_DIRECTORIES, MOST_ENTRIES = 64, 4096


class _Unread(Exception):
    """The file's directories do not read as a TIFF's."""


def is_tiff(head: bytes) -> bool:
    """Whether a file whose first bytes are `head` is a classic TIFF (a scan's, a DNG, a NEF...)."""
    return head[:4] in _ORDERS


def picture_parts(data: bytes) -> list[bytes | memoryview] | None:
    """The parts of TIFF `data` that make its picture, in order: each directory's entries but
    metadata (`METADATA`), the strips', tiles' and JPEG stream's bytes in place of their offsets;
    None where `data` is not a classic TIFF, or one whose directories do not read."""
    order = _ORDERS.get(data[:4])
    if order is None:
        return None
    try:
        return _Reader(data, order).parts()
    except (_Unread, IndexError, ValueError):
        return None


class _Reader:
    """Reads a TIFF's directories, from the first and every one below or after it, once each."""

    def __init__(self, data: bytes, order: Literal["little", "big"]) -> None:
        self.data, self.view, self.order = data, memoryview(data), order
        self.seen: set[int] = set()
        self.data_bytes = 0  # the strips' and tiles' bytes so far: at most the file's

    def parts(self) -> list[bytes | memoryview]:
        found: list[bytes | memoryview] = []
        self._chain(self._uint(4, 4), found)
        if not found:
            raise _Unread("no directory")
        return found

    def _chain(self, at: int, found: list[bytes | memoryview]) -> None:
        """The directory at `at` and those after it."""
        while at:
            at = self._directory(at, found)

    def _directory(self, at: int, found: list[bytes | memoryview]) -> int:
        """One directory's parts added to `found`; the offset of the next (0 for none)."""
        if at in self.seen or len(self.seen) >= MOST_DIRECTORIES:
            raise _Unread("directories in a loop, or too many")
        self.seen.add(at)
        count = self._uint(at, 2)
        if count > MOST_ENTRIES or at + 2 + 12 * count + 4 > len(self.data):
            raise _Unread("a directory cut short")
        found.append(b"directory")
        entries = {}
        for n in range(count):
            entry = at + 2 + 12 * n
            tag, kind, values = self._uint(entry, 2), self._uint(entry + 2, 2), self._uint(entry + 4, 4)
            size = _TYPE_SIZES.get(kind, 1) * values
            start = entry + 8 if size <= 4 else self._uint(entry + 8, 4)
            if start + size > len(self.data):
                raise _Unread("an entry's values out of the file")
            entries[tag] = (kind, values, start, size)
        for tag, (kind, values, start, size) in entries.items():
            if tag in METADATA or tag == _SUB_DIRECTORIES:
                continue
            found.append(f"{tag} {kind} {values}".encode())
            if tag in _DATA:
                if _DATA[tag] not in entries:
                    raise _Unread("data without its lengths")
                lengths = self._numbers(*entries[_DATA[tag]])
                for offset, length in zip(self._numbers(kind, values, start, size), lengths, strict=True):
                    self.data_bytes += length
                    if offset + length > len(self.data) or self.data_bytes > len(self.data):
                        raise _Unread("data out of the file")
                    found.append(self.view[offset : offset + length])
            else:
                found.append(self.view[start : start + size])
        if _SUB_DIRECTORIES in entries:
            for below in self._numbers(*entries[_SUB_DIRECTORIES]):
                self._chain(below, found)
        return self._uint(at + 2 + 12 * count, 4)

    def _numbers(self, kind: int, values: int, start: int, size: int) -> list[int]:
        """An entry's values as numbers (SHORT, LONG or IFD ones)."""
        width = _TYPE_SIZES.get(kind, 0)
        if kind not in (3, 4, 13) or size != width * values:
            raise _Unread("offsets that are not numbers")
        return [self._uint(start + width * n, width) for n in range(values)]

    def _uint(self, at: int, size: int) -> int:
        if at + size > len(self.data):
            raise _Unread("cut short")
        return int.from_bytes(self.data[at : at + size], self.order)
