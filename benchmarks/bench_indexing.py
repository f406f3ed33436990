"""Indexing and query benchmark, in one run on this machine. Prints figures; asserts nothing.

1. End-to-end indexing (decode + preprocess + embed + add) of N real-size JPEGs (4000×3000,
   generated) with the full-size ViT-B/32 (random weights, built from ../shared):
   - seed approach: one image at a time, full decode, CLIPProcessor, get_image_features;
   - Buscador Visual's pipeline (`build_index`): reduced-size JPEG decoding, batched embedding,
     decoding overlapped with the model.
   Prints images/s for both, the ratio, and the cosine between the two paths' embeddings.
   The build runs in the precision and runtime `auto` picks on this machine (see
   indexing/precision.py, indexing/openvino_tower.py): on an x86-64 CPU with OpenVINO installed,
   its converted image model where an earlier run cached it (section 2 does, and a build of 1,000
   images or more), then a build with the runtime torch follows, for the comparison.
2. bf16 fidelity on --fidelity-images generated images and 200 texts: centred cosine (the
   collection's mean fp32 vector subtracted) between bf16 and torch's fp32 embeddings of every
   image, and recall@10 of bf16 queries (images and texts) against the fp32 index; for torch's
   bf16 and, on a CPU with OpenVINO, OpenVINO's bf16 and fp32 (its text tower too, as the app has it).
3. The feeding side: decode + crop + 256-px thumbnail of 1024×768 JPEGs, images/s with one
   worker process and with one per core, and the scaling (N workers against N × one worker).
   With the model on the CPU, the ceiling a build of these photos cannot pass there: what one
   photo's decoding (the build's own function, on one thread) and its share of the model (its
   images/s on every core, in the build's precision) cost in core time, against the cores' time.
4. Text-query latency (embed the text + search) with 10k and 100k indexed vectors (synthetic),
   exact (flat) and HNSW, with HNSW's recall@10 against exact search.

On a GPU machine (issue #8's GPU figure): `--size 1024x768 --images 3000 --seed-images 300
--skip-queries --variants` times both loops on the GPU (the build decoding JPEGs on the GPU where
torchvision is there, as `auto` does), then the build with other numbers of JPEGs a decode
process reads at a time, with a decode process a core, with decode processes decoding (not the
GPU), with decode threads, with the CPU's batch size, and with a model that takes no time (what
the GPU's decoding feeds, and what the decode processes feed). On the CPU, `--variants` times
decode processes and threads with one a core against the default (up to 4 threads): on a
many-core CPU that says whether the default holds.

torch, transformers, faiss and the build are imported inside the functions that use them: on a GPU
the build's decode processes are spawned, and each imports this module again before its first image.

Usage: .venv/bin/python -m benchmarks.bench_indexing [--images 200] [--seed-images 200]
    [--size 4000x3000] [--skip-queries] [--variants]
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks import arguments
from benchmarks.bench_feeding import InstantModel, decode_scaling
from benchmarks.photos import WORK, photo_files, photo_folder
from indexing.config import usable_cores
from indexing.decoding import prepare_for_model
from indexing.images import clip_pixels, load_image
from indexing.sources import FolderSource
from tests.synthetic import shapes_image

if TYPE_CHECKING:
    from indexing.embedder import Embedder


def make_model() -> Path:
    """The full-size ViT-B/32 architecture with random weights, saved beside the real tokenizer."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from tests.tiny_clip import SHARED_FILES, model_files

    out = WORK / "clip-vit-b32-random"
    if not (out / "config.json").exists():
        torch.manual_seed(0)
        files = model_files()
        CLIPModel(CLIPConfig.from_pretrained(files)).save_pretrained(out)
        for name in SHARED_FILES:
            shutil.copy(files / name, out / name)
    return out


def seed_approach(model_dir: Path, paths: list[Path], device: str) -> tuple[float, np.ndarray]:
    """One image at a time: full decode, CLIPProcessor, get_image_features, add to FAISS."""
    import faiss
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(model_dir).to(device).eval()
    processor = CLIPProcessor.from_pretrained(model_dir)
    index = faiss.IndexFlatIP(512)
    vectors = []
    start = time.perf_counter()
    with torch.inference_mode():
        for path in paths:
            image = Image.open(path).convert("RGB")
            inputs = processor(images=image, return_tensors="pt").to(device)
            out = model.get_image_features(**inputs)
            vec = torch.nn.functional.normalize(out.pooler_output, dim=-1).cpu().numpy()
            index.add(vec)
            vectors.append(vec[0])
    return time.perf_counter() - start, np.stack(vectors)


def query_latency(
    embedder: Embedder, vectors: np.ndarray, index_type: str, repeats: int = 30
) -> tuple[float, float]:
    """Median ms of embed-text + search; recall@10 of this index type against exact search.

    Recall is measured with queries that lie near indexed vectors, as a text query lies near the
    images it describes (random weights give meaningless text vectors, so those are timed only).
    """
    from indexing import ann, config

    rng = np.random.default_rng(1)
    ids = np.arange(len(vectors), dtype=np.int64)
    built = ann.build(index_type, ids, vectors, budget_mb=config.MEMORY_BUDGET_MB)
    exact = ann.build("flat", ids, vectors, budget_mb=config.MEMORY_BUDGET_MB).index
    stored = ann.lookup(ids, vectors)
    times, recalls = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        query = embedder.embed_texts([f"a photo of thing number {i}"])
        ann.search(built.index, built.params, query, 10, stored)
        times.append((time.perf_counter() - t0) * 1000)
        near = vectors[rng.integers(0, len(vectors))] + 0.03 * rng.standard_normal(512).astype(np.float32)
        near = (near / np.linalg.norm(near))[None].astype(np.float32)
        _, approx = ann.search(built.index, built.params, near, 10, stored)
        _, truth = exact.search(near, 10)
        recalls.append(len(set(approx[0]) & set(truth[0])) / 10)
    return statistics.median(times), float(np.mean(recalls))


def crop_difference(paths: list[Path]) -> tuple[float, float]:
    """Mean and max absolute difference (0-255) between the fast and exact 224×224 CLIP crops."""
    diffs = []
    for path in paths:
        fast = clip_pixels(load_image(path, min_side=224), 224, fast=True).astype(np.int16)
        exact = clip_pixels(load_image(path), 224, fast=False).astype(np.int16)
        diffs.append(np.abs(fast - exact))
    stacked = np.stack(diffs)
    return float(stacked.mean()), float(np.percentile(stacked, 99.9))


def centred_fidelity(model_dir: Path, n: int) -> dict[str, float]:
    """Section 2: bf16 against fp32 on n generated images and 200 texts, printed; the model's
    images/s for each precision and runtime returned ("fp32", "bf16", "bf16 openvino", ...), in a
    build's batches on this device, after a first call (its kernels chosen, its weights cast, a
    converted tower compiled) that is not timed."""
    from indexing import ann, config, openvino_tower
    from indexing.embedder import Embedder

    openvino_tower.CONVERT_AFTER = dict.fromkeys(openvino_tower.CONVERT_AFTER, 0)  # its tower measured
    crops = np.stack([clip_pixels(shapes_image(i, (320, 240)), 224, fast=True) for i in range(n)])
    fp32 = Embedder(str(model_dir), precision="fp32", runtime="torch")
    embedders = {"fp32": fp32, "bf16": Embedder(str(model_dir), precision="bf16", runtime="torch")}
    if fp32.device == "cpu" and openvino_tower.installed():
        for precision in ("bf16", "fp32"):
            embedders[f"{precision} openvino"] = Embedder(
                str(model_dir), precision=precision, runtime="openvino"
            )
    batch = config.BATCH_SIZE if fp32.device == "cpu" else config.GPU_BATCH_SIZE
    seconds, vectors = {}, {}
    for name, embedder in embedders.items():
        embedder.embed_pixels(crops[:batch])
        started = time.perf_counter()
        vectors[name] = np.concatenate(
            [embedder.embed_pixels(crops[i : i + batch]) for i in range(0, n, batch)]
        )
        seconds[name] = time.perf_counter() - started
    mean = vectors["fp32"].mean(0)

    def centred(name: str) -> np.ndarray:
        a, b = vectors["fp32"] - mean, vectors[name] - mean
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    ids = np.arange(n, dtype=np.int64)
    index = ann.build("flat", ids, vectors["fp32"], budget_mb=config.MEMORY_BUDGET_MB).index
    sample = np.random.default_rng(0).choice(n, size=min(200, n), replace=False)

    def recall(exact: np.ndarray, approx: np.ndarray) -> float:
        _, truth = index.search(exact, 10)
        _, found = index.search(approx, 10)
        return float(np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)]))

    texts = [
        f"a photo of {w} number {i}" for i, w in enumerate(["a dog", "the sea", "a red car", "coffee"] * 50)
    ]
    text32, text16 = fp32.embed_texts(texts), embedders["bf16"].embed_texts(texts)
    print(
        f"bf16 against fp32, {n} images: model (batches of {batch}) {n / seconds['fp32']:.1f} images/s fp32, "
        f"{n / seconds['bf16']:.1f} bf16 ({seconds['fp32'] / seconds['bf16']:.2f}×); centred cosine "
        f"min {centred('bf16').min():.5f}, mean {centred('bf16').mean():.5f}"
    )
    print(
        f"recall@10 of bf16 queries against the fp32 index: images "
        f"{recall(vectors['fp32'][sample], vectors['bf16'][sample]):.3f}, texts {recall(text32, text16):.3f}"
    )
    for name in [name for name in embedders if "openvino" in name]:
        cosine, gain = centred(name), seconds["fp32"] / seconds[name]
        embedders[name].ready_towers()  # its text tower too, as the app makes them
        texts_in = recall(text32, embedders[name].embed_texts(texts))
        print(
            f"OpenVINO {name.split()[0]} against torch's fp32, {n} images: {n / seconds[name]:.1f} images/s "
            f"({gain:.2f}× torch's fp32, {seconds['bf16'] / seconds[name]:.2f}× its bf16); centred cosine "
            f"min {cosine.min():.5f}, mean {cosine.mean():.5f}; recall@10 of its image queries against "
            f"the fp32 index {recall(vectors['fp32'][sample], vectors[name][sample]):.3f}, of its text "
            f"queries {texts_in:.3f}"
        )
    return {name: n / spent for name, spent in seconds.items()}


def ceiling(paths: list[Path], model_rate: float, precision: str, seed_rate: float) -> None:
    """How many images/s a build of `paths` cannot pass on this CPU, printed with the ratio to the
    seed loop it caps: each photo costs its decoding (read, hash, reduced-size decode, crop and
    thumbnail: the build's decode function, one thread, 20 photos from the page cache) and its
    share of the model (`model_rate` images/s on every core) in core time, and the cores give no
    more than theirs, however the two are overlapped."""
    sample = paths[:20]
    for path in sample:
        path.read_bytes()
    started = time.thread_time()
    for path in sample:
        prepare_for_model(path, 224, True, None, pictures=True)  # as in a new index
    decode_ms = (time.thread_time() - started) / len(sample) * 1000
    cores = usable_cores()
    model_ms = cores * 1000 / model_rate
    top = cores * 1000 / (decode_ms + model_ms)
    print(
        f"ceiling on {cores} cores: decoding {decode_ms:.1f} core-ms a photo, the model ({precision}) "
        f"{model_ms:.1f}: at most {top:.1f} images/s, {top / seed_rate:.2f}× the seed loop"
    )


def timed_build(folder: Path, embedder: Embedder, **options: object) -> tuple[float, str]:
    """images/s of `build_index` over `folder` into a fresh index (index written included), and
    how many images, where they were decoded and the time per stage."""
    from indexing.build import build_index

    out = WORK / "index"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    summary = build_index(FolderSource(folder), out, embedder, progress=False, **options)
    rate = summary.count / (time.perf_counter() - started)
    stages = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in summary.stages.items())
    model = f", model {summary.model}" if summary.model else ""
    return rate, f"{summary.count} images, {summary.decoding} decoding{model}; {stages}"


def compare_with_seed(seed_paths: list[Path], seed_vecs: np.ndarray) -> None:
    """Cosine between the build's and the seed loop's embeddings of the same images, and between
    the fast and the exact crops, printed (reads the index the build just wrote)."""
    from indexing.store import IndexStore

    store = IndexStore(WORK / "index")
    ids = store.catalog.ids()
    key_of = {i: item.key for i, item in store.items(ids).items()}
    by_key = {key_of[int(i)]: v for i, v in zip(ids, store.vectors.read(ids), strict=True)}
    fast_vecs = np.stack([by_key[p.name] for p in seed_paths])
    cos = (fast_vecs * seed_vecs).sum(1)
    others = seed_vecs @ seed_vecs.T
    baseline = others[~np.eye(len(seed_vecs), dtype=bool)].mean() if len(seed_vecs) > 1 else float("nan")
    print(
        f"cosine fast vs seed embeddings, same image: min {cos.min():.5f}, mean {cos.mean():.5f}"
        f" (different images: mean {baseline:.5f}; random weights make every cosine high)"
    )
    mean_diff, p999 = crop_difference(seed_paths[:20])
    print(f"fast vs exact 224×224 crops: mean |diff| {mean_diff:.2f}/255, 99.9th percentile {p999:.0f}/255")


def machine() -> str:
    import torch

    from indexing.precision import cpu_has_bf16

    cores = usable_cores()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    return (
        f"torch {torch.__version__}, {cores} cores ({torch.get_num_threads()} torch threads){gpu}; "
        f"CPU bf16 native: {cpu_has_bf16()}"
    )


def main() -> None:
    from transformers.utils import logging as transformers_logging

    from benchmarks.vectors import synthetic_vectors
    from indexing import config
    from indexing.embedder import Embedder

    transformers_logging.disable_progress_bar()  # "Loading weights" bars would fill the output
    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed-images", type=int, default=200, help="images timed through the seed approach")
    parser.add_argument("--fidelity-images", type=int, default=1000)
    parser.add_argument("--size", default="4000x3000", help="the generated photos' width x height")
    parser.add_argument("--skip-queries", action="store_true", help="leave out section 4")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also time the build with other decoding, batch and worker settings",
    )
    args = parser.parse_args()
    if args.fidelity_images < 1:  # (the model's rates, which the ceiling needs, are timed on them)
        parser.error("--fidelity-images must be at least 1")
    width, height = (int(n) for n in args.size.lower().split("x"))

    print(machine())
    paths = photo_files(args.images, (width, height))
    folder = photo_folder(args.images, (width, height))
    model_dir = make_model()
    mb = sum(p.stat().st_size for p in paths) / len(paths) / 1e6
    print(f"{len(paths)} JPEGs of {width}×{height} ({mb:.2f} MB each) in {folder}")

    embedder = Embedder(str(model_dir))
    seed_paths = paths[: args.seed_images]
    seed_s, seed_vecs = seed_approach(model_dir, seed_paths, embedder.device)
    seed_rate = len(seed_paths) / seed_s
    print(
        f"seed approach:   {seed_rate:7.2f} images/s  ({len(seed_paths)} images in {seed_s:.1f}s, "
        f"on {embedder.device})"
    )
    fast_rate, stages = timed_build(folder, embedder)
    print(f"buscador build:  {fast_rate:7.2f} images/s  (with index; precision and runtime auto; {stages})")
    print(f"speed-up:        {fast_rate / seed_rate:.2f}×")
    compare_with_seed(seed_paths, seed_vecs)
    if embedder.runtime_used() != "torch":
        torch_rate, torch_stages = timed_build(folder, Embedder(str(model_dir), runtime="torch"))
        print(
            f"build, runtime torch: {torch_rate:7.2f} images/s, {torch_rate / seed_rate:.2f}× the seed loop "
            f"({torch_stages})"
        )
    if args.variants:
        cores = usable_cores()
        on_cpu = embedder.device == "cpu"
        other_batch = config.GPU_BATCH_SIZE if on_cpu else config.BATCH_SIZE
        import indexing.build
        from indexing.gpu_decoding import nvjpeg

        # The decoding `auto` does not choose on this device, or with other counts; on the GPU,
        # other numbers of JPEGs a decode process reads a task (`GPU_CHUNK`).
        chunk = indexing.build.GPU_CHUNK
        others = (
            [
                *(
                    (f"decode on the GPU, reading {n} a task", {"decode": "gpu", "chunk": n})
                    for n in sorted({4, 16} - {chunk})
                ),
                (f"decode on the GPU, {cores} processes", {"decode": "gpu", "workers": cores}),
                ("decode processes", {"decode": "processes"}),
                ("decode on the GPU, a model that takes no time", {"decode": "gpu"}),
            ]
            if nvjpeg(embedder.device)
            else []
        ) + ([(f"decode processes ({cores})", {"decode": "processes", "workers": cores})] if on_cpu else [])
        for label, options in (
            *others,
            (f"decode threads ({cores})", {"decode": "threads", "workers": cores}),
            (f"batches of {other_batch}", {"batch_size": other_batch}),
            ("a model that takes no time (feeding alone)", {"decode": "threads" if on_cpu else "processes"}),
        ):
            model = InstantModel() if "no time" in label else embedder
            if options.get("decode") == "gpu":
                model.device = embedder.device  # (the instant model's crops come from the GPU)
            indexing.build.GPU_CHUNK = options.pop("chunk", chunk)
            rate, stages = timed_build(folder, model, **options)
            print(f"build, {label}: {rate:7.2f} images/s ({stages})")
        indexing.build.GPU_CHUNK = chunk

    rates = centred_fidelity(model_dir, args.fidelity_images)
    if embedder.device == "cpu":
        used = embedder.precision_used("image") + (
            " openvino" if "OpenVINO" in embedder.runtime_used() else ""
        )
        ceiling(paths, rates.get(used, rates["fp32"]), used, seed_rate)
    decode_scaling(paths[:1600] if (width, height) == (1024, 768) else photo_files(240, (1024, 768)))

    if args.skip_queries:
        return
    for n in (10_000, 100_000):
        for data in ("lowrank", "uniform"):
            vectors = synthetic_vectors(n, data)
            for kind in ("flat", "hnsw"):
                ms, recall = query_latency(embedder, vectors, kind)
                print(
                    f"text query, {n:>7,} {data:7} vectors, {kind:4}: {ms:6.1f} ms median "
                    f"(embed + search), recall@10 {recall:.3f}"
                )


if __name__ == "__main__":
    main()
