"""What a camera RAW file costs a build beside a JPEG: a 6000×4000 (24-megapixel) DNG without a
preview, developed at half size by `indexing.images.load_image` (rawpy's LibRaw), against the
reduced-size decode of a 6000×4000 photo-like JPEG for CLIP. A RAW with a large enough preview
costs what a JPEG does (its preview is one). Prints the median of a few runs; asserts nothing.

Usage: .venv/bin/python -m benchmarks.bench_camera_raw [--runs 5]
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from benchmarks import arguments
from benchmarks.photos import WORK, photo_files, photo_like
from indexing.images import load_image
from tests.synthetic import write_dng

SIZE = (6000, 4000)


def median_seconds(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    raw = WORK / "camera-24mp.dng"
    if not raw.exists():
        picture = np.asarray(photo_like(0, SIZE), np.float64).transpose(2, 0, 1) * (4095 / 255)
        write_dng(raw, picture)
    jpeg = photo_files(1, SIZE)[0]
    developed = median_seconds(lambda: load_image(raw, min_side=224), args.runs)
    decoded = median_seconds(lambda: load_image(jpeg, min_side=224), args.runs)
    size = f"{SIZE[0]}×{SIZE[1]}"
    print(f"{size} DNG ({raw.stat().st_size / 2**20:.0f} MB), developed at half size: {developed:.3f} s")
    print(f"{size} JPEG ({jpeg.stat().st_size / 2**20:.1f} MB), reduced-size decode: {decoded:.3f} s")


if __name__ == "__main__":
    main()
