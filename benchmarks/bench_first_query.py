"""The first visitor's wait: how long the first text and image queries take after the app starts,
against the next ones, with the start-up's warm-up (`ui.startup._warm_up`) and without it. Prints
figures; asserts nothing.

Each case runs in a fresh process: the app's start-up (`ui.startup.start`, the full-size ViT-B/32
with random weights, the sample collection's index, built first if missing), then three text
queries and three image queries, each timed.

Usage: .venv/bin/python -m benchmarks.bench_first_query [--rounds 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from benchmarks import arguments
from benchmarks.bench_indexing import make_model
from benchmarks.photos import REPO, WORK

TEXTS = ("a dog on the beach", "a red car at night", "mountains")


def measure(warm_up: bool) -> None:
    """One fresh start-up, then the queries; prints one line."""
    from ui import startup

    if not warm_up:
        startup._warm_up = lambda embedder: None  # type: ignore[assignment]
    started = time.perf_counter()
    engine = startup.start(index_dir=WORK / "first-query-index", model=str(make_model()), text_model="none")
    ready = time.perf_counter() - started
    searcher = engine.searcher
    assert searcher is not None, engine.problem
    texts, images = [], []
    for text in TEXTS:
        started = time.perf_counter()
        searcher.by_text(text, k=5)
        texts.append((time.perf_counter() - started) * 1000)
    for _ in range(3):
        started = time.perf_counter()
        searcher.by_image(REPO / "samples" / "astronaut.png", k=5)
        images.append((time.perf_counter() - started) * 1000)
    label = "with the warm-up:   " if warm_up else "without the warm-up:"
    print(
        f"{label} start-up {ready:.1f} s; text queries {', '.join(f'{t:.0f}' for t in texts)} ms; "
        f"image queries {', '.join(f'{t:.0f}' for t in images)} ms",
        flush=True,
    )


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", choices=("warm", "cold"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure == "warm")
        return
    make_model()
    for _ in range(args.rounds):
        for case in ("warm", "cold"):
            command = [sys.executable, "-m", "benchmarks.bench_first_query", "--measure", case]
            subprocess.run(command, cwd=REPO, check=True)


if __name__ == "__main__":
    main()
