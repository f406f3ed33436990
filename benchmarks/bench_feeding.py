"""The feeding side of a build: how many images/s decoding, cropping and thumbnails deliver to a
model, with threads and with processes. Prints figures; asserts nothing.

1. Raw scaling: the build's decode-process function (`indexing.decoding.prepare_for_model`) over
   1024×768 JPEGs with one process and with one per core (issue #8's check: N workers against
   N × one worker, target ≥ 0.8).
2. The build itself (`build_index`, catalog writes included) with a model that costs nothing, so
   that only feeding is timed: what a GPU fast enough to keep up would see, with `--decode
   threads` and `--decode processes`, one worker a core. The files carry a phone's EXIF (a date,
   a GPS position, a 30 KB maker note), so that the build reads when and where each was taken
   as it would a phone's photos; its time by stage is printed.
3. The same files as a dataset on disk: what taking its rows costs the thread that feeds the model
   (reading, hashing), and the build of it with decode processes; with `--big-rows N`, the rows
   of N 4000×3000 photos (3.85 MB each) too.
4. With `--web-latency MS`, the same files as a dataset of web addresses, served on loopback by a
   server that waits MS milliseconds before each answer (a distant image host): the build
   downloads them DOWNLOAD_THREADS at a time, so it can take at most that many per MS.

On a GPU machine this is the ceiling the model can be fed at; on the CPU the real model shares
the cores with decoding, and the build keeps threads (see RESULTS.md).

Usage: .venv/bin/python -m benchmarks.bench_feeding [--images 480] [--rounds 1] [--big-rows 0]
       [--web-latency 0]
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from benchmarks import arguments
from benchmarks.photos import WORK, phone_exif, photo_files, photo_folder, with_exif
from indexing.config import usable_cores
from indexing.decoding import prepare_for_model
from indexing.images import ImageInput, clip_pixels, load_image
from indexing.sources import DatasetSource, FolderSource

if TYPE_CHECKING:
    from indexing.embedder import Crops


class InstantModel:
    """The embedder interface with a model that takes no time: unit vectors from the centre pixel."""

    model_name = "instant"
    dim = 512
    device = "cpu"
    image_size = 224
    fast_decode = True

    def load(self, src: ImageInput) -> Image.Image:
        return load_image(src, min_side=self.image_size)

    def pixels(self, img: Image.Image) -> np.ndarray:
        return clip_pixels(img, self.image_size, fast=True)

    def embed_pixels(self, batch: Crops) -> np.ndarray:
        centre = batch[:, self.image_size // 2, self.image_size // 2]
        vectors = np.zeros((len(batch), self.dim), np.float32)
        vectors[:, :3] = np.asarray(centre if isinstance(centre, np.ndarray) else centre.cpu()) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def precision_used(self, tower: str) -> str:
        return "fp32"

    def runtime_used(self) -> str:
        return "none"


def _decode(path: Path) -> int:
    return len(prepare_for_model(path, 224, True, None, pictures=True)[2])  # as in a new index


def decode_scaling(paths: list[Path]) -> None:
    """The build's decode function over `paths`: one process against one per core, printed."""
    cores = usable_cores()
    rates = {}
    for workers in sorted({1, cores}):
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_decode, paths[:workers]))  # start the workers
            started = time.perf_counter()
            list(pool.map(_decode, paths, chunksize=8))
            rates[workers] = len(paths) / (time.perf_counter() - started)
    print(
        f"decode + crop + thumbnail, 1024×768 JPEGs: {rates[1]:.0f} images/s with 1 process, "
        f"{rates[cores]:.0f} with {cores} (scaling {rates[cores] / (cores * rates[1]):.2f} of linear)"
    )


def dataset_rows(folder: Path, what: str) -> DatasetSource | None:
    """The files of `folder` as a dataset on disk (an image column of their bytes); what taking
    its rows costs the thread that takes them, printed. None where `datasets` is not installed
    (the GPU machine: its wheels would not fit a call)."""
    try:
        import datasets
    except ImportError:
        print("datasets is not installed: no dataset figures")
        return None
    datasets.disable_progress_bars()
    saved = folder.with_name(folder.name + "-dataset")
    shutil.rmtree(saved, ignore_errors=True)
    files = sorted(folder.glob("*.jpg"))
    datasets.Dataset.from_dict(
        {"img": [{"bytes": path.read_bytes(), "path": path.name} for path in files]},
        features=datasets.Features({"img": datasets.Image()}),
    ).save_to_disk(saved)
    source = DatasetSource(str(saved), image_column="img")
    for _ in range(2):  # the first opens the dataset
        wall, cpu = time.perf_counter(), time.thread_time()
        rows = sum(1 for _ in source.items())
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    print(
        f"dataset rows taken, {what}: {rows / wall:.0f} rows/s, {1000 * cpu / rows:.3f} ms of the "
        f"taking thread's CPU a row"
    )
    return source


class Host(ThreadingHTTPServer):
    """A server that takes many connections at once, as an image host does (Python's default
    backlog of 5 drops the rest, which then wait a second to try again)."""

    request_queue_size = 128


def web_rows(folder: Path, latency_ms: float) -> tuple[DatasetSource, Callable[[], None]] | None:
    """The files of `folder` as a dataset of web addresses (parquet), served on loopback with
    `latency_ms` before each answer; with the function that stops the server. None without
    `datasets`."""
    try:
        import datasets
    except ImportError:
        return None

    class Distant(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(latency_ms / 1000)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = Host(("127.0.0.1", 0), partial(Distant, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://127.0.0.1:{server.server_port}"
    table = folder.with_name(folder.name + "-web.parquet")
    urls = [f"{site}/{path.name}" for path in sorted(folder.glob("*.jpg"))]
    datasets.Dataset.from_dict({"url": urls}).to_parquet(table)
    return DatasetSource(str(table), image_column="url"), server.shutdown


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=480)
    parser.add_argument("--rounds", type=int, default=1, help="builds of each kind, alternated")
    parser.add_argument("--big-rows", type=int, default=0, help="4000×3000 photos taken as dataset rows")
    parser.add_argument(
        "--web-latency",
        type=float,
        default=0,
        help="ms a web server waits before each image (0: no web rows)",
    )
    args = parser.parse_args()
    paths = photo_files(args.images, (1024, 768))
    cores = usable_cores()
    print(f"{args.images} JPEGs of 1024×768, {cores} cores")
    decode_scaling(paths)
    folder = WORK / f"feeding-{args.images}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    exif = phone_exif()
    for path in paths:
        (folder / path.name).write_bytes(with_exif(path.read_bytes(), exif))

    from indexing.build import build_index  # here: decode processes import this module
    from indexing.downloads import DOWNLOAD_THREADS

    model = InstantModel()
    out = WORK / "feeding-index"
    builds: list[tuple[str, str, FolderSource | DatasetSource]] = [
        ("folder", "threads", FolderSource(folder)),
        ("folder", "processes", FolderSource(folder)),
    ]
    if dataset := dataset_rows(folder, "1024×768"):
        builds.append(("dataset", "processes", dataset))
    if dataset and args.big_rows:
        dataset_rows(photo_folder(args.big_rows), "4000×3000")
    stop_serving = None
    if args.web_latency and (web := web_rows(folder, args.web_latency)):
        web_dataset, stop_serving = web
        most = DOWNLOAD_THREADS / (args.web_latency / 1000)
        print(
            f"web rows: {args.web_latency:g} ms a download, {DOWNLOAD_THREADS} at a time: "
            f"at most {most:.0f}/s"
        )
        builds.append(("dataset of web addresses", "threads", web_dataset))
    for what, decode, source in builds * args.rounds:
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        summary = build_index(source, out, model, progress=False, decode=decode, workers=cores, batch_size=64)
        seconds = time.perf_counter() - started
        stages = ", ".join(f"{name} {spent:.2f}s" for name, spent in summary.stages.items())
        print(
            f"build of the {what} with a model that takes no time, {cores} decode {decode}: "
            f"{summary.count / seconds:.0f} images/s ({summary.count} in {seconds:.1f}s; {stages})"
        )
    if stop_serving:
        stop_serving()


if __name__ == "__main__":
    main()
