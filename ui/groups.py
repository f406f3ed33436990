"""The app's Duplicates tab: an index's groups of near-duplicates (copies, re-encodings, burst
shots), shown as thumbnails that open the originals. Found once per index build, folder and
threshold, and kept: they change only with a new build.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from indexing.duplicates import Member, find_duplicates
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.store import folder_name

# Groups the page shows, biggest first; `python -m indexing duplicates --json` lists them all.
GROUPS_SHOWN = 100
# Above this many images the page sends visitors to the command line: the groups take about 8 s
# to find at 100,000 images on 2 cores, 18 s at 200,000, 2.5 minutes at a million
# (benchmarks/RESULTS.md, "Near-duplicates").
MOST_IMAGES = 200_000
# Answers kept (index build, folder, threshold).
KEPT = 8


@dataclass(frozen=True)
class Found:
    """Near-duplicate groups among `images` images, found in `seconds`."""

    groups: list[list[Member]]
    images: int
    seconds: float


class DuplicateGroups:
    """Finds and keeps the near-duplicate groups of the builds an app serves."""

    def __init__(self) -> None:
        self._found: OrderedDict[tuple[str, str, float], Found] = OrderedDict()
        self._lock = threading.Lock()  # one search for groups at a time: it takes every core

    def find(
        self, searcher: Searcher, build: str, threshold: float, within: str, *, progress: bool = False
    ) -> Found:
        """The groups of build `build` (served by `searcher`), or of its folder `within`, with a
        progress bar if asked (the page shows it: seconds at 100,000 images). Raises
        BuscadorError for an unknown folder, or for more than MOST_IMAGES images."""
        folder = folder_name(within)
        key = (build, folder, threshold)
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                return self._found[key]
            store = searcher.store
            images = store.count_in(folder)
            if images > MOST_IMAGES:
                raise BuscadorError(
                    f"{images} images are too many to look for near-duplicates from the page (at most "
                    f"{MOST_IMAGES}): use python -m indexing duplicates",
                    "too_many_for_duplicates",
                    images=images,
                    limit=MOST_IMAGES,
                )
            started = time.perf_counter()
            groups = find_duplicates(store, threshold, within=folder, progress=progress)
            found = self._found[key] = Found(groups, images, time.perf_counter() - started)
            while len(self._found) > KEPT:
                self._found.popitem(last=False)
            return found


def groups_html(
    groups: list[list[Member]],
    thumbnail: Callable[[int], str],
    opened: Callable[[Member], str | None],
    *,
    title: Callable[[int, int], str],
    more: str,
) -> str:
    """The groups as HTML: `title(n, size)` above each group's thumbnails, captioned
    with their label, similarity and stars. `thumbnail(id)` gives a thumbnail's URL, `opened(member)` its
    original's, where there is one, which the thumbnail opens. `more` follows the GROUPS_SHOWN shown."""
    parts = []
    for n, group in enumerate(groups[:GROUPS_SHOWN], start=1):
        items = []
        for member in group:
            original = opened(member)
            label = html.escape(member.label)
            image = (
                f'<img src="{html.escape(thumbnail(member.id))}" alt="{label}" loading="lazy">'
                f"<span>{label}</span><span>{member.similarity:.4f} {member.stars}</span>"
            )
            opens = f' href="{html.escape(original)}" target="_blank" rel="noopener"' if original else ""
            tag = "a" if original else "div"
            items.append(f'<{tag} class="dup-item"{opens}>{image}</{tag}>')
        heading = html.escape(title(n, len(group)))
        parts.append(
            f'<div class="dup-group"><h3>{heading}</h3><div class="dup-row">{"".join(items)}</div></div>'
        )
    if len(groups) > GROUPS_SHOWN:
        parts.append(f"<p>{html.escape(more)}</p>")
    return "".join(parts)
