"""A slow file in a build: what a few huge PNGs (no reduced-size decoding) cost among JPEGs.
Prints figures; asserts nothing.

Builds N 1024×768 JPEGs with the full-size ViT-B/32 (random weights), then the same JPEGs with
K 8000×6000 PNGs spread among them, and times each PNG's own decode + crop + thumbnail on one
thread. When one slow file holds up only its own place, the mixed build takes about the JPEG
build plus the PNGs' own time shared over the decode threads; a batch that waited for its slowest
file would also leave the other cores idle for that long.

Usage: .venv/bin/python -m benchmarks.bench_slow_files [--jpegs 192] [--pngs 6] [--png-size 8000x6000]
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks import arguments
from benchmarks.bench_feeding import decode_scaling
from benchmarks.bench_indexing import make_model
from benchmarks.photos import WORK, photo_files, photo_like
from indexing.build import build_index
from indexing.config import usable_cores
from indexing.embedder import Embedder
from indexing.images import clip_pixels, load_image, read_file, thumbnail_jpeg
from indexing.sources import FolderSource


def timed_build(folder: Path, embedder: Embedder) -> float:
    out = WORK / "slow-index"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    build_index(FolderSource(folder), out, embedder, progress=False)
    return time.perf_counter() - started


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--jpegs", type=int, default=192)
    parser.add_argument("--pngs", type=int, default=6)
    parser.add_argument("--png-size", default="8000x6000", help="WIDTHxHEIGHT of the PNGs")
    args = parser.parse_args()
    photos = photo_files(max(args.jpegs, 240), (1024, 768))
    decode_scaling(photos)
    jpegs, mixed = WORK / "slow-jpegs", WORK / "slow-mixed"
    for folder in (jpegs, mixed):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for i, path in enumerate(photos[: args.jpegs]):
        shutil.copy(path, jpegs / f"{i:04d}.jpg")
        shutil.copy(path, mixed / f"{i:04d}.jpg")
    step = args.jpegs // args.pngs
    pngs = [mixed / f"{i * step + step // 2:04d}b.png" for i in range(args.pngs)]  # spread out
    width, height = (int(side) for side in args.png_size.split("x"))
    for n, path in enumerate(pngs):
        photo_like(1000 + n, (width, height)).save(path, compress_level=1)
    own = 0.0
    for path in pngs:
        started = time.perf_counter()
        image = load_image(read_file(path), min_side=224)
        clip_pixels(image, 224, fast=True)
        thumbnail_jpeg(image)
        own += time.perf_counter() - started
    embedder = Embedder(str(make_model()))
    timed_build(jpegs, embedder)  # warm up: the precision measurement, the page cache
    alone = timed_build(jpegs, embedder)
    both = timed_build(mixed, embedder)
    workers = min(4, usable_cores())
    print(
        f"{args.jpegs} JPEGs: {alone:.1f}s; with {args.pngs} {width}×{height} PNGs among them: {both:.1f}s "
        f"(+{both - alone:.1f}s); the PNGs' own decode time: {own:.1f}s on one thread, "
        f"{own / workers:.1f}s shared over {workers} decode threads"
    )


if __name__ == "__main__":
    main()
