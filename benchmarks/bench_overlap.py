"""On the CPU, is decoding the next batch between model calls (the build's choice there) still
faster than decoding it while the model runs, now that the model runs in bf16? Prints figures;
asserts nothing.

Builds the 200 generated 4000×3000 JPEGs of bench_indexing with the full-size ViT-B/32 (random
weights) and `--precision auto`, alternating how many batches are decoded ahead of the model: 0
(between model calls) and 1 (beside it), three builds each.

Usage: .venv/bin/python -m benchmarks.bench_overlap [--images 200] [--rounds 3]
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from benchmarks import arguments
from benchmarks.bench_indexing import make_model
from benchmarks.photos import WORK, photo_folder


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from indexing import build
    from indexing.embedder import Embedder
    from indexing.sources import FolderSource

    folder = photo_folder(args.images)
    embedder = Embedder(str(make_model()), precision="auto")
    decoders = build._decoders
    ahead = 0

    @contextmanager
    def decoding_ahead(*given: Any, **options: Any) -> Iterator[Any]:
        with decoders(*given, **options) as chosen:
            yield replace(chosen, ahead=ahead)

    build._decoders = decoding_ahead  # type: ignore[assignment]
    out = WORK / "overlap-index"
    for _ in range(args.rounds):
        for ahead in (0, 1):
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            summary = build.build_index(FolderSource(folder), out, embedder, progress=False)
            rate = summary.count / (time.perf_counter() - started)
            stages = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in summary.stages.items())
            print(
                f"{ahead} batch ahead: {rate:6.2f} images/s ({summary.decoding} decoding; {stages})",
                flush=True,
            )


if __name__ == "__main__":
    main()
