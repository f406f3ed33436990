"""Progress bars on the console for long steps (embedding, building an index, finding
duplicates): all on stderr, as wide as the terminal, off when `shown` is false."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, unit: str, *, shown: bool) -> tqdm:
    """A bar over `total` `unit`s named `desc` (a count without a total when it is None)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not shown, dynamic_ncols=True, file=sys.stderr)
