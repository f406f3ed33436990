"""What reading when and where photos were taken adds to a build: the pass over EXIF headers at
its end. Prints figures; asserts nothing.

Writes N small JPEGs whose EXIF is a phone's size (about 30 KB: dates, a GPS position in Madrid,
camera, a maker note), lists them into a catalog as a build would, and times the build's header
pass over them (file headers read on its thread, one catalog transaction per 2,048, then each
position's town named), from the page cache, and one header alone on one thread. The embedding
it sits beside costs 15-45 ms an image on a CPU and about 1 ms on a GPU. With --takeout, each
photo has a Google Takeout sidecar beside it naming two people, as a Google Photos export has.

Usage: .venv/bin/python -m benchmarks.bench_dates [--images 10000] [--takeout]
"""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
from PIL import Image

from benchmarks import arguments
from benchmarks.photos import WORK, phone_exif
from indexing import headers
from indexing.catalog import Row
from indexing.config import usable_cores
from indexing.header_pass import read_headers
from indexing.sources import FolderSource
from indexing.store import open_for_build


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--takeout", action="store_true", help="a Takeout sidecar beside each photo")
    args = parser.parse_args()
    folder, out = WORK / "dated", WORK / "dated-index"
    for path in (folder, out):
        shutil.rmtree(path, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pixels = Image.fromarray(rng.integers(0, 255, (48, 64, 3), np.uint8))
    pixels.save(folder / "0.jpg", exif=phone_exif())
    data = (folder / "0.jpg").read_bytes()
    for i in range(1, args.images):
        (folder / f"{i}.jpg").write_bytes(data)
    if args.takeout:  # Google Photos' JSON, of its usual size (about 900 bytes)
        said = {
            "title": "IMG_1234.jpg",
            "description": "",
            "imageViews": "9",
            "creationTime": {"timestamp": "1600598769", "formatted": "Sep 20, 2020, 10:46:09 AM UTC"},
            "photoTakenTime": {"timestamp": "1600596727", "formatted": "Sep 20, 2020, 10:12:07 AM UTC"},
            "geoData": {"latitude": 40.4168, "longitude": -3.7038, "altitude": 650.0},
            "geoDataExif": {"latitude": 40.4168, "longitude": -3.7038, "altitude": 650.0},
            "people": [{"name": "Ana García"}, {"name": "Luis"}],
            "url": "https://photos.google.com/photo/AF1QipOyLtYKtmMPyLhse9O8lOcWmb6LND5",
            "googlePhotosOrigin": {"mobileUpload": {"deviceType": "ANDROID_PHONE"}},
        }
        text = json.dumps(said, indent=2)
        for i in range(args.images):
            (folder / f"{i}.jpg.supplemental-metadata.json").write_text(text, encoding="utf-8")
    source = FolderSource(folder)
    keys = [item.key for item in source.items()]
    catalog = open_for_build(out, "bench", 4)
    empty = np.zeros(4, np.float32)
    catalog.write([Row(key, key, "", empty, b"") for key in keys], list(range(len(keys))))
    started = time.perf_counter()
    for key in keys[:2000]:
        headers.from_file(folder / key)
    one = (time.perf_counter() - started) / min(2000, len(keys))
    started = time.perf_counter()
    read_headers(source, catalog, progress=False)
    seconds = time.perf_counter() - started
    dated = sum(catalog.years_taken().values())
    located = catalog.countries()
    catalog.close()
    print(f"{len(data) / 1000:.0f} KB files, {usable_cores()} cores")
    print(f"one header, one thread:  {one * 1e6:.0f} µs")
    print(
        f"header pass of a build:  {seconds:.2f} s for {len(keys)} images "
        f"({seconds / len(keys) * 1e6:.0f} µs an image), {dated} dated, placed {located}"
    )


if __name__ == "__main__":
    main()
