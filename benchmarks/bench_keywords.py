"""What a keyword search (`tag:`) costs at a million photos: one scan of the keywords as compared
(`tags_key`, Catalog.ids_tagged), or, in an index made before them, every keyword's ids read at the
first one (IndexStore keeps them: the next are a lookup); and a build's manifest counts the
keywords. Prints figures; asserts nothing.

Writes a catalog of N photos, half of them with keywords: three of eight everyday ones (a family's
collection), or, with --unique, two of them and two of their own ("roll 12", "frame 431": the
worst case, every photo a set of keywords no other has), as a build writes them
(Catalog.set_facts), and times Catalog.ids_tagged for a keyword a third of them have and one none
has, Catalog.ids_by_keyword and Catalog.top_tags on it.

Usage: .venv/bin/python -m benchmarks.bench_keywords [--photos 1000000] [--unique]
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import arguments
from benchmarks.catalogs import filled_catalog
from indexing.tags import fold

NAMES = ["Ana", "Luis", "Playa", "Cumpleaños", "Madrid", "Familia", "Perro", "Gato"]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--unique", action="store_true", help="every photo with keywords of its own too")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows, facts = [], []
    for i in range(args.photos):
        rows.append((i, f"p/{i}.jpg", f"{i}.jpg", ""))
        if i % 2 == 0:
            own = [f"roll {i // 36}", f"frame {i}"] if args.unique else []
            tags = (*rng.choice(NAMES, 2 if args.unique else 3, replace=False), *own)
            facts.append((None, None, None, None, tags, None, None, f"p/{i}.jpg"))
    catalog = filled_catalog("keywords", ("id", "key", "label", "fingerprint"), rows)
    catalog.set_facts(facts)
    for tag in ("Familia", "Gaviota"):
        fold.cache_clear()
        started = time.perf_counter()
        scanned = catalog.ids_tagged(fold(tag))
        seconds = time.perf_counter() - started
        print(f"tag:{tag} by a scan of the keywords as compared: {len(scanned):,} photos in {seconds:.3f} s")
    fold.cache_clear()
    started = time.perf_counter()
    found = catalog.ids_by_keyword(fold)
    read = time.perf_counter() - started
    fold.cache_clear()
    started = time.perf_counter()
    tagged, _ = catalog.top_tags(10)
    counted = time.perf_counter() - started
    catalog.close()
    shape = "every photo with keywords of its own too" if args.unique else "three of eight keywords"
    print(f"{args.photos:,} photos, {tagged:,} with keywords ({shape}): {len(found):,} keywords")
    print(f"every keyword's ids (a first tag: search, an index made before): {read:.2f} s")
    print(f"the ten most used (a build's manifest):    {counted:.2f} s")


if __name__ == "__main__":
    main()
