"""What a caption search (`caption:`) costs at a million photos. Prints figures; asserts nothing.

Writes a catalog of N photos, half of them captioned (six of twenty everyday words and a number:
"Ana beach birthday dog sunset party 4312"), and times Catalog.ids_captioned for a word no caption
has, a word a third of the captions have, the start of a word, and two words together: looked up in
the captions' word index (SQLite's FTS5, filled as the rows are written), then by a scan of the
captions as an index without it is searched (SQLite finds the ones that hold the words anywhere;
those where they start a word are kept); and Catalog.captions (a build's manifest), the time the
rows took to write, and what the word index adds to the catalog's size.

Usage: .venv/bin/python -m benchmarks.bench_captions [--photos 1000000]
"""

from __future__ import annotations

import sqlite3
import time

import numpy as np

from benchmarks import arguments
from benchmarks.catalogs import filled_catalog
from indexing.captions import stored
from indexing.tags import folded

WORDS = [
    *("Ana", "Luis", "beach", "birthday", "sea", "boat", "mountain", "snow", "dinner", "party"),
    *("wedding", "garden", "dog", "cat", "picnic", "sunset", "city", "night", "Cádiz", "cumpleaños"),
]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--photos", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(args.photos):
        caption = f"{' '.join(rng.choice(WORDS, 6, replace=False))} {i}" if i % 2 == 0 else None
        rows.append((i, f"p/{i}.jpg", f"{i}.jpg", "", *stored(caption)))
    started = time.perf_counter()
    catalog = filled_catalog(
        "captions", ("id", "key", "label", "fingerprint", "caption", "caption_key"), rows
    )
    written = time.perf_counter() - started
    started = time.perf_counter()
    captioned = catalog.captions()
    print(
        f"{args.photos:,} photos, {captioned:,} with a caption "
        f"(counted in {time.perf_counter() - started:.2f} s; written in {written:.1f} s)"
    )
    for words in ("gaviota", "ana", "cumple", "birth", "birthday party"):
        for how, indexed in (("word index", True), ("scan", False)):
            catalog.caption_words = indexed
            started = time.perf_counter()
            found = catalog.ids_captioned(folded(words))
            print(
                f"caption:{words!r:18} {how:10} {len(found):>7,} photos in "
                f"{time.perf_counter() - started:.3f} s"
            )
    catalog.close()
    path = catalog.path
    with_index = path.stat().st_size
    with sqlite3.connect(path) as db:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute("DROP TABLE caption_words")
    with sqlite3.connect(path) as db:
        db.execute("VACUUM")
    print(f"catalog: {with_index / 1e6:.0f} MB, {path.stat().st_size / 1e6:.0f} MB without the word index")


if __name__ == "__main__":
    main()
