"""Generated test images: coloured shapes on coloured backgrounds, distinct per seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def shapes_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(4):
        s = int(rng.integers(min(w, h) // 12, min(w, h) // 3))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.integers(0, 2) else draw.rectangle)([x, y, x + s, y + s], fill=colour)
    return img


def write_collection(folder: Path, n: int, *, start: int = 0, ext: str = "png") -> list[Path]:
    """n images named img_000.png …; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(start, start + n):
        path = folder / f"img_{seed:03d}.{ext}"
        shapes_image(seed).save(path)
        paths.append(path)
    return paths


def save_as_dataset(folder: Path, out: Path) -> None:
    """The image files under `folder`, in path order, as a dataset on disk at `out` (an image
    column "img", each row its file's bytes and name)."""
    import datasets

    files = sorted(path for path in folder.rglob("*") if path.is_file())
    datasets.Dataset.from_dict(
        {"img": [{"bytes": path.read_bytes(), "path": path.name} for path in files]},
        features=datasets.Features({"img": datasets.Image()}),
    ).save_to_disk(out)
