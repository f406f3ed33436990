"""The app's text model for other languages (indexing.text_encoder) in torch and in OpenVINO:
milliseconds a query, one text alone and eight together, each runtime in turn, in one process.
The model is the published one's architecture (a multilingual DistilBERT, 768 wide, 6 layers,
a Dense layer into 512-d) with random weights, saved in the sentence-transformers format (which
needs requirements-dev.txt's sentence-transformers); its costs are the real model's. Prints
figures; asserts nothing.

Usage: .venv/bin/python -m benchmarks.bench_text_model [--rounds 3] [--queries 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

WORK = Path(__file__).resolve().parent / ".work"
QUERY = "un perro corriendo por la playa al atardecer"
TOGETHER = ["una taza de café", "niños jugando en la nieve", "un gato negro", "la catedral de Sevilla"] * 2


def resident_mb() -> float:
    """This process's anonymous resident memory (its own allocations, not mapped files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def random_text_model(image_model: str) -> Path:
    """The published multilingual model's architecture with random weights (made once, in WORK),
    declared aligned to `image_model`."""
    from tests.tiny_multilingual import make_tiny_multilingual

    folder = WORK / "multilingual-random" / "model"
    if not folder.is_dir():
        make_tiny_multilingual(folder.parent, image_model, full_size=True)
    (folder / "buscador.json").write_text(json.dumps({"image_model": image_model}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    from indexing.text_encoder import TextEncoder

    folder = random_text_model("openai/clip-vit-base-patch32")
    before = resident_mb()
    torch_encoder = TextEncoder(str(folder), device="cpu", runtime="torch")
    loaded = resident_mb()
    ov_encoder = TextEncoder(str(folder), device="cpu", runtime="openvino")
    started = time.perf_counter()
    ov_encoder.ready_towers()
    made = time.perf_counter() - started
    both = resident_mb()
    tokens = len(torch_encoder.tokenizer(QUERY)["input_ids"])
    print(
        f"memory of its own (RssAnon; weights files are mapped besides): {loaded - before:.0f} MB for "
        f"the model in torch, {both - loaded:.0f} MB more for it in OpenVINO (made or read back in "
        f"{made:.1f} s)"
    )
    cosine = float(
        np.sum(torch_encoder.embed_texts(TOGETHER) * ov_encoder.embed_texts(TOGETHER), axis=1).min()
    )
    print(f"OpenVINO against torch, {len(TOGETHER)} texts: cosine min {cosine:.6f}")
    for round_ in range(args.rounds):
        for name, encoder in (("torch", torch_encoder), ("OpenVINO", ov_encoder)):
            times = {}
            for label, texts in (("one", [QUERY]), ("eight", TOGETHER)):
                encoder.embed_texts(texts)
                spent = []
                for _ in range(args.queries):
                    started = time.perf_counter()
                    encoder.embed_texts(texts)
                    spent.append(time.perf_counter() - started)
                times[label] = statistics.median(spent) * 1000
            print(
                f"round {round_ + 1}, {name:8}: one text ({tokens} tokens) {times['one']:.2f} ms, "
                f"eight together {times['eight']:.2f} ms ({times['eight'] / 8:.2f} each)",
                flush=True,
            )


if __name__ == "__main__":
    main()
