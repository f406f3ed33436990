"""What handing decode work out and taking it back costs the build's main thread, the one that
also runs the model: `indexing.build._decoded` with stand-in decoding (each task sleeps 4 ms an
image and returns a 224×224 crop an image), in the shapes builds use: 4 threads taking one image
a task (a CPU build's `--decode threads`), and on a 16-core GPU machine 15 processes taking
PROCESS_CHUNK (`--decode processes`) or GPU_CHUNK (`--decode gpu`, where they only read the files).
Prints images/s and the main thread's CPU time an image; asserts nothing.

Usage: .venv/bin/python -m benchmarks.bench_handover [--images 8000]
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

from benchmarks import arguments
from indexing.build import GPU_CHUNK, PROCESS_CHUNK, _decoded, _Decoders, _Prepared
from indexing.sources import SourceItem

SECONDS_AN_IMAGE = 0.004


def decode_stand_in(count: int) -> list[np.ndarray]:
    """`count` images' worth of decoding: the time, and the crops that come back."""
    time.sleep(SECONDS_AN_IMAGE * count)
    return [np.zeros((224, 224, 3), np.uint8) for _ in range(count)]


def measure(
    label: str, pool: Executor, items: list[SourceItem], *, workers: int, chunk: int, ahead: int
) -> None:
    list(pool.map(decode_stand_in, [0] * workers))  # start the workers first
    decoders = _Decoders(
        label,
        lambda group: pool.submit(decode_stand_in, len(group)),
        lambda group, crops: [_Prepared(item, crop) for item, crop in zip(group, crops, strict=True)],
        workers,
        chunk=chunk,
        ahead=ahead,
    )
    cpu, started = time.thread_time(), time.perf_counter()
    count = sum(len(batch) for batch in _decoded(iter(items), decoders, batch_size=128))
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    print(
        f"{label}: {count / seconds:7,.0f} images/s (at most {workers / SECONDS_AN_IMAGE:,.0f}); "
        f"main thread {cpu / count * 1e6:5.1f} µs of CPU an image"
    )


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=8000)
    args = parser.parse_args()
    items = [SourceItem(f"k{i}", f"k{i}", "", b"") for i in range(args.images)]
    with ThreadPoolExecutor(4) as threads:
        measure("4 threads, 1 image a task", threads, items, workers=4, chunk=1, ahead=0)
    with ProcessPoolExecutor(15) as processes:
        for chunk in (PROCESS_CHUNK, GPU_CHUNK):
            measure(
                f"15 processes, {chunk} images a task", processes, items, workers=15, chunk=chunk, ahead=2
            )


if __name__ == "__main__":
    main()
