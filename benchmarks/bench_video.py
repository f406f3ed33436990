"""What a video costs a build beside a photo: the frame `indexing.images.load_image` takes from a
phone-like clip (30 frames a second, a key frame a second) of 1080p H.264 and of 2160p (4K) HEVC,
against the reduced-size decode of a 4000×3000 JPEG for CLIP; and a video's identity, its size
and three megabytes of it (`indexing.sources.sampled_content_hash`); and what playing it in the app
costs before its first byte: its seekable copy (`indexing.video.seekable_copy`, from a warm page
cache). Prints the median of a few runs; asserts nothing.

Usage: .venv/bin/python -m benchmarks.bench_video [--runs 5] [--seconds 10]
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from benchmarks import arguments
from benchmarks.bench_camera_raw import median_seconds
from benchmarks.photos import WORK, photo_files, photo_like
from indexing.images import load_image
from indexing.sources import sampled_content_hash
from indexing.video import seekable_copy

CLIPS = {"1080p H.264": ("libx264", (1920, 1080), "mp4"), "2160p HEVC": ("libx265", (3840, 2160), "mov")}


def write_clip(path: Path, codec: str, size: tuple[int, int], seconds: int) -> None:
    """A clip of a photo-like picture panning sideways, as phones encode one (a key frame a second)."""
    width, height = size
    picture = np.asarray(photo_like(0, (width + 30 * seconds * 4, height)))
    with av.open(str(path), "w") as out:
        quiet = {"x265-params": "log-level=none"} if codec == "libx265" else {}
        stream = out.add_stream(codec, rate=30, options={"g": "30", "preset": "ultrafast"} | quiet)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for n in range(30 * seconds):
            part = np.ascontiguousarray(picture[:, n * 4 : n * 4 + width])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(part, format="rgb24")))
        out.mux(stream.encode())


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    for name, (codec, size, suffix) in CLIPS.items():
        path = WORK / f"clip-{size[1]}p-{codec}-{args.seconds}s.{suffix}"
        if not path.exists():
            write_clip(path, codec, size, args.seconds)
        took = median_seconds(lambda path=path: load_image(path, min_side=224), args.runs)
        mb = path.stat().st_size / 2**20
        print(f"{name}, {args.seconds} s ({mb:.0f} MB): its frame {took * 1000:.1f} ms")

        def hashed(path: Path = path) -> str:
            with path.open("rb") as file:
                return sampled_content_hash(file)

        print(f"  its identity (size and 3 MB of it): {median_seconds(hashed, args.runs) * 1000:.1f} ms")
        copy = WORK / f"played.{suffix}.mp4"
        copied = median_seconds(lambda path=path, copy=copy: seekable_copy(path, copy), args.runs)
        copy.unlink()
        print(f"  its seekable copy, to be played: {copied * 1000:.1f} ms ({mb / copied:.0f} MB/s)")
    jpeg = photo_files(1)[0]
    decoded = median_seconds(lambda: load_image(jpeg, min_side=224), args.runs)
    print(
        f"4000×3000 JPEG ({jpeg.stat().st_size / 2**20:.1f} MB), reduced-size decode: {decoded * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
