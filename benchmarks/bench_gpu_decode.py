"""How fast the GPU turns JPEGs into CLIP's crops and thumbnails (`--decode gpu`), step by step, to
find what holds a GPU-decoding build back (issue #8). Prints figures; asserts nothing. Needs CUDA
and torchvision, which the project does not install: run it on a GPU machine that has them.

On files already read into memory, in batches of 128 (a GPU build's batch):
1. nvJPEG alone (torchvision's batched `decode_jpeg`);
2. the build's `GpuDecoder`: nvJPEG, then turning, CLIP's crop and the thumbnail on the GPU, and
   the thumbnails' JPEG encoding on the GPU (nvJPEG's encoder), then with Pillow on `--readers`
   threads instead, with the thumbnails' mean size each way;
3. the same while `--readers` threads, then 4, read, hash and check files as a build's reader
   threads did before the build read in processes: every tensor operation of the step lets go of
   Python's lock, which busy readers then hold; each with Python's switch interval at its
   default (5 ms) and at 0.5 ms, which would give the lock back to the GPU's thread sooner;
4. the same while `--readers`, then 4, processes read, hash and check them, sending each file
   back through a queue that a thread of this process empties, as a build's decode processes now
   read them: they hold no lock of this process but what taking their files costs.
Also the crops' difference from the CPU path's (`clip_pixels` of a reduced-size decode), in
0-255 levels.

Usage: python -m benchmarks.bench_gpu_decode [--images 2000] [--size 1024x768] [--readers CORES]
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks import arguments
from benchmarks.photos import photo_files
from indexing.config import usable_cores
from indexing.decoding import gpu_candidate, read_and_hash
from indexing.gpu_decoding import GpuDecoder, nvjpeg, nvjpeg_encoder
from indexing.images import clip_pixels, load_image

BATCH = 128


def rate(step: Callable[[Sequence[Any]], object], items: Sequence[Any]) -> float:
    """Images a second of `step` over `items` in batches, after one batch to warm up."""
    import torch

    step(items[:BATCH])
    torch.cuda.synchronize()
    started = time.perf_counter()
    for start in range(0, len(items), BATCH):
        step(items[start : start + BATCH])
    torch.cuda.synchronize()
    return len(items) / (time.perf_counter() - started)


def beside_readers(
    decoder: GpuDecoder, files: Sequence[Any], paths: Sequence[Any], readers: int, interval: float
) -> float:
    """`decoder`'s rate while `readers` threads read, hash and check `paths` as a build's readers
    do, with Python's switch interval at `interval` seconds (how long a thread that wants the lock
    waits before it asks the holder to let go: the default is 5 ms)."""
    stop = threading.Event()

    def read_like_a_build(offset: int) -> None:
        while not stop.is_set():
            for path in paths[offset::readers]:
                raw, _ = read_and_hash(path, None)
                gpu_candidate(raw)
                if stop.is_set():
                    return

    default = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        with ThreadPoolExecutor(readers) as pool:
            for offset in range(readers):
                pool.submit(read_like_a_build, offset)
            try:
                return rate(decoder, files)
            finally:
                stop.set()
    finally:
        sys.setswitchinterval(default)


def _read_in_a_process(paths: Sequence[Any], offset: int, step: int, out: Any, stop: Any) -> None:
    """A reader process: read, hash and check every `step`-th of `paths` from `offset`, and send
    each file back on `out`, until `stop` is set."""
    while not stop.is_set():
        for path in paths[offset::step]:
            raw, content = read_and_hash(path, None)
            out.put((content, gpu_candidate(raw)))
            if stop.is_set():
                return


def beside_reader_processes(
    decoder: Callable[[Sequence[Any]], object], files: Sequence[Any], paths: Sequence[Any], readers: int
) -> float:
    """`decoder`'s rate while `readers` processes read, hash and check `paths` and send them back
    to a thread of this process, which takes them off the queue as fast as they come."""
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue(maxsize=4 * BATCH)
    workers = [
        context.Process(target=_read_in_a_process, args=(list(paths), n, readers, out, stop), daemon=True)
        for n in range(readers)
    ]
    for worker in workers:
        worker.start()
    out.get()  # the readers are running
    taking = threading.Event()

    def take() -> None:
        while not taking.is_set():
            try:
                out.get(timeout=0.1)
            except queue.Empty:
                continue

    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    try:
        return rate(decoder, files)
    finally:
        stop.set()
        taking.set()
        taker.join()
        for worker in workers:
            worker.join(timeout=5)
            worker.kill()


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--readers", type=int, default=usable_cores())
    args = parser.parse_args()
    import torch

    decode = nvjpeg("cuda")
    if decode is None:
        print("no CUDA device with torchvision: nothing to measure")
        return
    import torchvision

    width, height = (int(n) for n in args.size.lower().split("x"))
    paths = photo_files(args.images, (width, height))
    files = [gpu_candidate(p.read_bytes()) for p in paths]
    tensors = [torch.frombuffer(bytearray(f.raw), dtype=torch.uint8) for f in files]
    decoder = GpuDecoder(decode, 224, encoders=args.readers, encode=nvjpeg_encoder("cuda"))
    by_pillow = GpuDecoder(decode, 224, encoders=args.readers)
    nvjpeg_rate = rate(decode, tensors)
    decoder_rate = rate(decoder, files)
    pillow_rate = rate(by_pillow, files)
    sizes = [np.mean([len(t) for _, t in d(files[:BATCH])]) / 1000 for d in (decoder, by_pillow)]
    by_pillow.close()

    busy = {
        (readers, interval): beside_readers(decoder, files, paths, readers, interval)
        for readers in sorted({args.readers, 4})
        for interval in (sys.getswitchinterval(), 0.0005)
    }
    in_processes = {
        readers: beside_reader_processes(decoder, files, paths, readers)
        for readers in sorted({args.readers, 4})
    }
    crops = np.stack([crop.cpu().numpy() for crop, _ in decoder(files[:20])]).astype(np.int16)
    decoder.close()
    cpu = np.stack([clip_pixels(load_image(p, min_side=224), 224, fast=True) for p in paths[:20]])
    diff = np.abs(crops - cpu.astype(np.int16))
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name()}, "
        f"{usable_cores()} cores; {len(files)} {width}×{height} JPEGs in batches of {BATCH}:\n"
        f"nvJPEG decode alone:                                  {nvjpeg_rate:6.0f} images/s\n"
        f"GpuDecoder (decode, crop, thumbnail, JPEG encoding): {decoder_rate:6.0f} images/s\n"
        + "".join(
            f"the same beside {n:2d} busy readers, switch {1000 * interval:.1f} ms:  {r:6.0f} images/s\n"
            for (n, interval), r in busy.items()
        )
        + "".join(
            f"the same beside {n:2d} reader processes:               {r:6.0f} images/s\n"
            for n, r in in_processes.items()
        )
        + f"GpuDecoder, thumbnails encoded by Pillow:            {pillow_rate:6.0f} images/s\n"
        f"thumbnails' mean size, nvJPEG / Pillow: {sizes[0]:.1f} / {sizes[1]:.1f} kB\n"
        f"crops against the CPU path's: mean |diff| {diff.mean():.2f}/255, "
        f"99.9th percentile {np.percentile(diff, 99.9):.0f}/255"
    )


if __name__ == "__main__":
    main()
