"""A deterministic stand-in for CLIP, so tests can say *which* image ranks first.

An image's vector is the share of its pixels nearest to each palette colour; a text's vector counts
the palette's colour words in it. Both are L2-normalised, like CLIP's. So "red" scores 1.0 against
an all-red image and 0.7071 against a half-red, half-blue one: rankings and scores are known.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from indexing.images import ImageInput, load_image

PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "white": (250, 250, 250),
    "black": (10, 10, 10),
}
COLOURS = np.array(list(PALETTE.values()), np.float32)


def colour_image(*colours: str, size: tuple[int, int] = (120, 90)) -> Image.Image:
    """Vertical bands of the named palette colours, equal widths."""
    img = Image.new("RGB", size)
    band = size[0] // len(colours)
    for i, name in enumerate(colours):
        img.paste(PALETTE[name], (i * band, 0, size[0] if i == len(colours) - 1 else (i + 1) * band, size[1]))
    return img


class ColourEmbedder:
    """Has what the build pipeline and the searcher use of `indexing.embedder.Embedder`."""

    model_name = "test/colour-histogram"
    dim = len(PALETTE)
    device = "cpu"
    image_size = 32

    def __init__(self) -> None:
        self.text_calls = 0

    def load(self, src: ImageInput) -> Image.Image:
        return load_image(src)

    def pixels(self, img: Image.Image) -> np.ndarray:
        return np.asarray(img.resize((self.image_size, self.image_size), Image.Resampling.NEAREST))

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        flat = batch.reshape(len(batch), -1, 3).astype(np.float32)
        nearest = np.linalg.norm(flat[:, :, None, :] - COLOURS[None, None], axis=-1).argmin(-1)
        counts = np.stack([np.bincount(row, minlength=self.dim) for row in nearest]).astype(np.float32)
        return counts / np.linalg.norm(counts, axis=1, keepdims=True)

    def precision_used(self, tower: str) -> str:
        return "fp32"

    def runtime_used(self) -> str:
        return "numpy"

    def words_read(self, text: str) -> str | None:
        return None  # it reads every word

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.text_calls += 1
        out = np.ones((len(texts), self.dim), np.float32)  # no colour word: equally like everything
        for row, text in enumerate(texts):
            words = text.lower().split()
            counts = np.array([words.count(name) for name in PALETTE], np.float32)
            if counts.any():
                out[row] = counts
        return out / np.linalg.norm(out, axis=1, keepdims=True)
