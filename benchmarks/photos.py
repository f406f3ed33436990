"""Generated photographs for the benchmarks, and where the benchmarks keep their files."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"


def photo_like(seed: int, size: tuple[int, int] = (4000, 3000)) -> Image.Image:
    """Smooth colour fields, shapes and sensor-like noise: JPEG sizes and decode costs like a photo."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize(size, Image.Resampling.BICUBIC), np.int16)
    noise = rng.normal(0, 12, (h, w, 1)).astype(np.int16)
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    shapes = Image.fromarray(rng.integers(0, 256, (h // 50, w // 50, 3), dtype=np.uint8)).resize(size)
    mask = Image.fromarray((rng.random((h // 100, w // 100)) > 0.7).astype(np.uint8) * 255).resize(size)
    img.paste(shapes, (0, 0), mask)
    return img


def photo_files(n: int, size: tuple[int, int] = (4000, 3000)) -> list[Path]:
    """The first n generated photo-like JPEGs of `size` (quality 90), made once, on every core, and
    kept in the work folder (which may hold more: `photo_folder` gives a folder of exactly n)."""
    folder = WORK / ("photos" if size == (4000, 3000) else f"photos-{size[0]}x{size[1]}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:04d}.jpg" for i in range(n)]
    missing = [i for i, path in enumerate(paths) if not path.exists()]
    with ProcessPoolExecutor() as pool:
        list(pool.map(_save_photo, [paths[i] for i in missing], missing, [size] * len(missing), chunksize=8))
    return paths


def photo_folder(n: int, size: tuple[int, int] = (4000, 3000)) -> Path:
    """A folder of exactly the first n `photo_files` (hard links to them), for a build of n images."""
    paths = photo_files(n, size)
    folder = paths[0].parent.with_name(f"{paths[0].parent.name}-{n}")
    folder.mkdir(exist_ok=True)
    for path in paths:
        if not (folder / path.name).exists():
            os.link(path, folder / path.name)
    return folder


def phone_exif() -> bytes:
    """An EXIF block of a phone's size (about 30 KB): dates, a GPS position in Madrid, camera, a
    maker note (most of a phone's EXIF)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Phone maker", "Phone 12"
    inner = exif.get_ifd(0x8769)
    inner[0x9003], inner[0x9004] = "2019:07:14 18:22:05", "2019:07:14 18:22:05"
    inner[0x927C] = bytes(30_000)
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (40.0, 25.0, 0.5), "W", (3.0, 42.0, 9.2)
    return exif.tobytes()


def with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """A JPEG's bytes with an EXIF segment (APP1) put after its start marker, pixels untouched."""
    return jpeg[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[2:]


def _save_photo(path: Path, seed: int, size: tuple[int, int]) -> None:
    photo_like(seed, size).save(path, "JPEG", quality=90)
