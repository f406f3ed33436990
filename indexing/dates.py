"""When a photo was taken: dates as EXIF headers (indexing.headers), file names and dataset fields
write them, and the periods a query names.

A date taken is kept as the camera wrote it, local time without a zone, as "YYYY-MM-DDTHH:MM:SS"
(so dates sort as texts). One known in UTC alone (a video container's creation time, Google
Takeout's, Unix seconds) is kept with a "Z" after it until its place is known: the time zone of the
town nearest to where it was taken then gives its local time (`local_time`). A query names a period
after `taken:` (or `date:`, `fecha:`): a year, a month or a day, or a range of them, `2019`,
`2019-06`, `2019-06-15`, `2018..2020`, `..2015`.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime

from indexing.errors import BuscadorError

# A date as EXIF writes it ("2019:07:14 18:22:05"), or as texts and dataset fields do.
_EXIF_DATE = re.compile(r"\s*(\d{4})[:\-/](\d\d)[:\-/](\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d))?)?")
# The years a date taken may have (a camera whose clock was never set writes 0000:00:00);
# photographs start in 1826.
FIRST_YEAR, LAST_YEAR = 1826, 2100
# After a date taken known in UTC alone, until its place gives its local time.
UTC_MARK = "Z"
# A date in a file name: IMG_20190714_182205.jpg (Android), PXL_20210302_080000123.jpg (Pixel),
# IMG-20190714-WA0001.jpg (WhatsApp, which strips EXIF), Screenshot_2019-07-14-18-22-05.png,
# "Photo 2019-07-14 18.22.05.jpg": a year from 1900 to 2099, month and day, then maybe the time
# (and milliseconds); not inside a longer run of digits.
_NAME_DATE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])"
    r"(?:[-_ T.]?([01]\d|2[0-3])[-_.:]?([0-5]\d)[-_.:]?([0-5]\d)(?:\d{3})?)?(?!\d)"
)


def dataset_date(value: object) -> str:
    """A dataset field's date as a date taken: a date or datetime, a text that starts with one
    ("2010-07-04 15:31:06.0", "2019:07:14 18:22:05", "2019-07-14"), or Unix seconds (in UTC);
    "" for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            value = datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
        except (ValueError, OverflowError, OSError):
            return ""
        return in_utc(exif_date(value.isoformat(sep=" ")))
    if isinstance(value, date):
        value = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return exif_date(value)


def in_utc(taken: str) -> str:
    """A date taken ("2019-07-14T16:22:05", or "") marked as UTC's ("2019-07-14T16:22:05Z")."""
    return taken + UTC_MARK if taken else ""


def local_time(taken: str, zone: str) -> str:
    """A date taken in UTC ("2019-07-14T16:22:05Z") as the local time of time zone `zone`
    ("Europe/Madrid": "2019-07-14T18:22:05"), summer time and all; `taken` as it is for another
    date, or a zone this machine does not know."""
    if not taken.endswith(UTC_MARK) or not zone:
        return taken
    try:
        when = datetime.fromisoformat(taken[: -len(UTC_MARK)]).replace(tzinfo=UTC)
        return when.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError, zoneinfo.ZoneInfoNotFoundError):
        return taken


def date_in_name(name: str) -> str:
    """The date (and time) a file name holds, "IMG_20190714_182205.jpg" → "2019-07-14T18:22:05";
    "" for none."""
    for match in _NAME_DATE.finditer(name):
        year, month, day, hour, minute, second = match.groups()
        if found := exif_date(f"{year}:{month}:{day} {hour or '00'}:{minute or '00'}:{second or '00'}"):
            return found
    return ""


def exif_date(value: object) -> str:
    """An EXIF date ("2019:07:14 18:22:05") as "2019-07-14T18:22:05"; "" for none or a clock never set."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str) or not (match := _EXIF_DATE.match(value)):
        return ""
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        return ""
    if not FIRST_YEAR <= year <= LAST_YEAR or hour > 23 or minute > 59 or second > 59:
        return ""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


@dataclass(frozen=True)
class Period:
    """The dates taken from `start` (included) to `end` (left out), as sortable texts; `text` is
    how the query wrote it."""

    start: str
    end: str
    text: str


_DAY = r"\d{4}(?:[-/]\d{1,2}(?:[-/]\d{1,2})?)?"
_PERIOD = re.compile(rf"({_DAY})?\s*(?:(\.\.|–|—|-)\s*({_DAY})?)?")
# The period follows the colon at once: "a date: dinner by the sea" is a description.
_OPERATOR = re.compile(r"(?:^|\s)(?:taken|date|fecha):(\S+)", re.IGNORECASE)


def split_period(text: str) -> tuple[str, Period | None]:
    """'beach taken:2019' → ("beach", the period 2019); a text without `taken:` → (text, None)."""
    found = _OPERATOR.findall(text)
    if not found:
        return text, None
    if len(found) > 1:
        raise BuscadorError(
            "the query names more than one period (taken:…): give one, or a range like taken:2018..2020",
            "two_periods",
        )
    return " ".join(_OPERATOR.sub(" ", text).split()), parse_period(found[0])


def parse_period(text: str) -> Period:
    """'2019' → 2019-01-01 to 2020-01-01; '2019-06..2019-08' → 2019-06-01 to 2019-09-01; either
    end of a range may be left open ('..2015', '2020..'). Raises BuscadorError (code bad_period)."""
    match = _PERIOD.fullmatch(text.strip())
    first, separator, last = match.groups() if match else (None, None, None)
    if not match or not (first or last) or (separator == "-" and not (first and last)):
        raise _bad_period(text)
    start = _bound(first, text, after=False) if first else f"{FIRST_YEAR:04d}"
    if separator is None:
        end = _bound(first, text, after=True)
    else:
        end = _bound(last, text, after=True) if last else f"{LAST_YEAR + 1:04d}"
    if end <= start:
        raise BuscadorError(f"the period {text!r} ends before it starts", "period_backwards", period=text)
    return Period(start, end, text)


def _bound(day: str | None, text: str, *, after: bool) -> str:
    """The first instant of `day` (a year, month or day), or with `after` the first one after it."""
    parts = [int(part) for part in re.split(r"[-/]", day or "")]
    year, month, dom = (*parts, 1, 1)[:3]
    try:
        first = date(year, month, dom)
        if after and len(parts) == 1:
            first = date(year + 1, 1, 1)
        elif after and len(parts) == 2:
            first = date(year + (month == 12), month % 12 + 1, 1)
        elif after:
            first = date.fromordinal(first.toordinal() + 1)
    except (ValueError, OverflowError):
        raise _bad_period(text) from None
    return first.isoformat()


def _bad_period(text: str) -> BuscadorError:
    return BuscadorError(
        f"{text!r} is not a period: write a year, month or day, or a range of them "
        "(taken:2019, taken:2019-06, taken:2019-06-15, taken:2018..2020, taken:..2015)",
        "bad_period",
        period=text,
    )
