"""fp32 against bf16 for each of the model's paths on this machine's device (issue #8), and what
`--precision auto` then chooses. Prints figures; asserts nothing.

1. CLIP ViT-B/32 (random weights) timed in fp32 and under bf16 autocast: image batches of
   `--batches`, single texts and text batches (77 tokens, the longest a query can be); each
   `--reps` calls after 3 untimed ones, both precisions twice, alternated, the second kept.
2. An `Embedder` with `auto`: its first single text (a short query, as a visitor types it), its
   first single image and its first image batch, and the precision it chose for each (its log).

Usage: python -m benchmarks.bench_precision [--batches 32,128] [--reps 30]
(`bash benchmarks/device.sh run` runs it on a lent GPU.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks import arguments
from benchmarks.bench_indexing import make_model
from indexing.embedder import Embedder


def _rate(model_call: Callable[[], object], rows: int, precision: str, reps: int, device: str) -> float:
    """Rows a second of `model_call` in `precision`, after 3 untimed calls."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    with torch.inference_mode(), torch.autocast(kind, dtype=torch.bfloat16, enabled=precision == "bf16"):
        for _ in range(3):
            model_call()
        if kind == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(reps):
            model_call()
        if kind == "cuda":
            torch.cuda.synchronize()
        return rows * reps / (time.perf_counter() - started)


def _compare(label: str, model_call: Callable[[], object], rows: int, reps: int, device: str) -> None:
    rates = {}
    for precision in ("fp32", "bf16", "fp32", "bf16"):  # the second of each kept
        rates[precision] = _rate(model_call, rows, precision, reps, device)
    print(
        f"{label:18} fp32 {rates['fp32']:9.1f}/s  bf16 {rates['bf16']:9.1f}/s  "
        f"bf16/fp32 {rates['bf16'] / rates['fp32']:.2f}",
        flush=True,
    )


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--batches", default="32,128", help="image batch sizes, comma-separated")
    parser.add_argument("--reps", type=int, default=30, help="timed calls for each figure")
    args = parser.parse_args()
    embedder = Embedder(str(make_model()), precision="auto")
    model, device = embedder.model, embedder.device
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    for batch in (int(b) for b in args.batches.split(",")):
        pixels = torch.randn(batch, 3, 224, 224, device=device)
        _compare(
            f"images, batch {batch}",
            lambda p=pixels: model.get_image_features(pixel_values=p),
            batch,
            args.reps,
            device,
        )
    for batch in (1, 128):
        ids = torch.randint(0, 49000, (batch, 77), device=device)
        _compare(
            f"texts, batch {batch}",
            lambda i=ids: model.get_text_features(input_ids=i),
            batch,
            args.reps,
            device,
        )

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("indexing.precision").setLevel(logging.INFO)
    crops = np.random.default_rng(0).integers(0, 256, (128, 224, 224, 3), dtype=np.uint8)
    embedder.embed_texts(["a dog running on the beach"])
    embedder.embed_pixels(crops[:1])
    embedder.embed_pixels(crops)
    print(f"auto chose: {embedder.precision.chosen}")


if __name__ == "__main__":
    main()
