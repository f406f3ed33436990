"""Builds of the 200 generated 4000×3000 JPEGs with each runtime and precision, alternated, in one
process: images/s of `build_index` (a fresh Embedder each, its model loaded before the timing; an
OpenVINO tower read from the cache, made first where it is not there). Prints figures; asserts
nothing.

Usage: .venv/bin/python -m benchmarks.bench_runtimes [--rounds 2]
"""

from __future__ import annotations

import argparse

from benchmarks.bench_indexing import make_model, timed_build
from benchmarks.photos import photo_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from indexing import openvino_tower
    from indexing.embedder import Embedder

    folder, model = photo_folder(200, (4000, 3000)), str(make_model())
    waits = openvino_tower.CONVERT_AFTER
    openvino_tower.CONVERT_AFTER = dict.fromkeys(waits, 0)
    for precision in ("fp32", "bf16"):  # the towers cached before the timing, as a later build finds them
        tower = Embedder(model, precision=precision, runtime="openvino")
        tower.embed_pixels(tower.pixels(tower.load(next(folder.iterdir())))[None].repeat(2, 0))
    openvino_tower.CONVERT_AFTER = waits
    for round_ in range(args.rounds):
        for precision in ("fp32", "bf16"):
            for runtime in ("torch", "openvino"):
                embedder = Embedder(model, precision=precision, runtime=runtime)
                rate, stages = timed_build(folder, embedder)
                print(
                    f"round {round_ + 1}, {precision}, {runtime:8}: {rate:6.2f} images/s ({stages})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
