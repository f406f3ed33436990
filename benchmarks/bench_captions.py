"""What a caption search (`caption:`) costs at a million photos. Prints figures; asserts nothing.

Writes a catalog of N photos, half of them captioned (six of twenty everyday words and a number:
"Ana beach birthday dog sunset party 4312"), and times Catalog.ids_captioned for a word no caption
has, a word a third of the captions have, and two words together, each a scan of the captions
(SQLite finds the ones that hold the words anywhere; those where they start a word are kept), and
Catalog.captions (a build's manifest).

Usage: .venv/bin/python -m benchmarks.bench_captions [--photos 1000000]
"""

from __future__ import annotations

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
    catalog = filled_catalog(
        "captions", ("id", "key", "label", "fingerprint", "caption", "caption_key"), rows
    )
    started = time.perf_counter()
    captioned = catalog.captions()
    print(
        f"{args.photos:,} photos, {captioned:,} with a caption "
        f"(counted in {time.perf_counter() - started:.2f} s)"
    )
    for words in ("gaviota", "ana", "cumple", "birthday party"):
        started = time.perf_counter()
        found = catalog.ids_captioned(folded(words))
        print(f"caption:{words!r:18} {len(found):>7,} photos in {time.perf_counter() - started:.2f} s")
    catalog.close()


if __name__ == "__main__":
    main()
