"""The embedder gives what transformers' own CLIP path gives: same vectors, unit length, 512-d."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPModel, CLIPProcessor

from indexing.embedder import Embedder
from indexing.errors import BuscadorError
from tests.synthetic import shapes_image


def _embed(embedder: Embedder, images) -> np.ndarray:
    """Decode and embed images as the build does."""
    return embedder.embed_pixels(np.stack([embedder.pixels(embedder.load(i)) for i in images]))


@pytest.fixture(scope="module")
def reference(tiny_model: str):
    return CLIPModel.from_pretrained(tiny_model).eval(), CLIPProcessor.from_pretrained(tiny_model)


def _unit(t: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(t, dim=-1).numpy()


def test_image_embeddings_match_the_reference_path(tiny_model: str, reference):
    model, processor = reference
    images = [
        shapes_image(s, size) for s, size in enumerate([(320, 240), (240, 320), (1000, 700), (225, 600)])
    ]
    exact = _embed(Embedder(tiny_model, fast_decode=False, precision="fp32"), images)
    with torch.inference_mode():
        ref = _unit(model.get_image_features(**processor(images=images, return_tensors="pt")).pooler_output)
    assert exact.shape == (4, 512) and exact.dtype == np.float32
    assert np.allclose(np.linalg.norm(exact, axis=1), 1, atol=1e-5)
    assert (exact * ref).sum(1).min() >= 0.9999


def test_text_embeddings_match_the_reference_path(embedder: Embedder, reference):
    model, processor = reference
    texts = ["a red circle", "a photo of a dog running on the beach"]
    mine = embedder.embed_texts(texts)
    tokens = processor.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        ref = _unit(model.get_text_features(**tokens).pooler_output)
    assert mine.shape == (2, 512) and (mine * ref).sum(1).min() >= 0.9999


def test_text_past_77_tokens_is_truncated_not_an_error(embedder: Embedder):
    long = "a very long description of a cat " * 100
    first_77_tokens = embedder.tokenizer.decode(
        embedder.tokenizer(long, truncation=True, max_length=77)["input_ids"][1:-1]
    )
    a, b = embedder.embed_texts([long, first_77_tokens])
    assert float(a @ b) > 0.999


def test_a_text_past_77_tokens_says_where_clip_stopped_reading_it(embedder: Embedder):
    # Words of one token each: 75 of them fill CLIP's 77 tokens with its two marks.
    words = ("a red dog on the beach at night " * 20).split()
    long = " ".join(words)
    read = embedder.words_read(long)
    assert read == " ".join(words[:75])
    a, b = embedder.embed_texts([long, read])
    assert float(a @ b) > 0.9999  # what it read is all the long text counts for
    assert embedder.words_read(" ".join(words[:75])) is None  # exactly as much as it reads
    assert embedder.words_read("a red dog") is None
    assert embedder.words_read("Tiburón, " * 60).startswith("Tiburón, Tiburón,")  # the text as written


def test_unknown_model_gives_an_actionable_error(tmp_path):
    with pytest.raises(BuscadorError, match=r"no model directory at .*CLIP_MODEL"):
        Embedder(str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BuscadorError, match=r"(?s)could not load the CLIP model .*CLIP_MODEL"):
        Embedder(str(tmp_path / "empty"))


def test_a_batch_of_mixed_lengths_gives_each_text_its_own_vector(embedder: Embedder):
    texts = ["a cat", "a red circle on a blue square", "a long pasted paragraph " * 40, "dog", "¿qué?"]
    together = embedder.embed_texts(texts)
    alone = np.concatenate([embedder.embed_texts([t]) for t in texts])
    assert together.shape == (5, 512) and np.allclose(together, alone, atol=1e-5)


def test_the_model_keeps_its_threads_within_the_usable_cores(tiny_model, monkeypatch):
    from indexing import config

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(config, "usable_cores", lambda: 1)  # e.g. a container allowed one CPU
    try:
        torch.set_num_threads(2)
        Embedder(tiny_model, precision="fp32")
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's own setting wins
        Embedder(tiny_model, precision="fp32")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_read_only_crop_is_embedded_without_torchs_warning(embedder: Embedder, monkeypatch):
    crop = np.asarray(Image.new("RGB", (224, 224), (200, 30, 30)))  # Pillow's pixels: read-only
    assert not crop.flags.writeable
    given = []
    from_numpy = torch.from_numpy
    monkeypatch.setattr(torch, "from_numpy", lambda a: given.append(a.flags.writeable) or from_numpy(a))
    vector = embedder.embed_pixels(crop[None])
    assert given and all(given)  # torch warns on read-only arrays, once, into the user's console
    assert np.allclose(vector, embedder.embed_pixels(crop[None].copy()))


def test_a_tokenizer_that_cannot_say_where_its_tokens_came_from_writes_back_what_was_read():
    from indexing.embedder import words_read

    class Words:  # a "slow" tokenizer: a token a word, no offsets
        is_fast = False

        def num_special_tokens_to_add(self) -> int:
            return 2

        def __call__(self, text: str, *, add_special_tokens: bool, truncation: bool, max_length: int):
            assert not add_special_tokens and truncation
            return {"input_ids": text.split()[:max_length]}

        def decode(self, ids: list[str]) -> str:
            return " ".join(ids)

    text = " ".join(f"w{i}" for i in range(10))
    assert words_read(Words(), text, 7) == "w0 w1 w2 w3 w4"
    assert words_read(Words(), "w0 w1 w2 w3 w4", 7) is None
