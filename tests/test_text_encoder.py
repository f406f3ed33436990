"""The second text encoder: read faithfully (equal to sentence-transformers' own), aligned to the
index's image model or refused, and used for queries in other languages than English."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from indexing import openvino_tower
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.text_encoder import TextEncoder
from tests.tiny_multilingual import SENTENCES, make_tiny_multilingual


def test_it_embeds_as_sentence_transformers_does(multilingual):
    from sentence_transformers import SentenceTransformer

    texts = [*SENTENCES, "a much longer text about many cats and dogs " * 10]
    reference = SentenceTransformer(multilingual, device="cpu").encode(texts, normalize_embeddings=True)
    mine = TextEncoder(multilingual).embed_texts(texts)
    assert mine.shape == (len(texts), 512) and np.allclose(mine, reference, atol=1e-5)


def test_spanish_goes_to_the_multilingual_encoder_and_english_to_clip(built_index, embedder, multilingual):
    encoder = TextEncoder(multilingual)
    calls: list[str] = []
    real = encoder.embed_texts
    encoder.embed_texts = lambda texts: (calls.append("multilingual"), real(texts))[1]
    searcher = Searcher.open(built_index, embedder, text_encoder=encoder)
    spanish = searcher.by_text("un gato rojo", k=3, language="es")
    assert calls == ["multilingual"] and len(spanish) == 3
    expected = searcher.store.search(real(["un gato rojo"]), 3)[0]
    assert [(h.id, h.score) for h in spanish] == [(i, round(s, 6)) for i, s in expected]
    searcher.by_text("a red cat", k=3, language="en")
    assert calls == ["multilingual"]  # English stayed with CLIP
    assert searcher.text_encoder_for("es") == "multilingual" and searcher.text_encoder_for("en") == "clip"
    assert Searcher.open(built_index, embedder).text_encoder_for("es") == "clip"  # none loaded


def test_a_text_model_for_another_image_space_is_refused(tmp_path, built_index, embedder):
    other = make_tiny_multilingual(tmp_path / "other", "openai/clip-vit-large-patch14")
    with pytest.raises(BuscadorError, match="aligned to the images of openai/clip-vit-large-patch14"):
        Searcher.open(built_index, embedder, text_encoder=TextEncoder(str(other)))
    undeclared = make_tiny_multilingual(tmp_path / "undeclared", None)
    with pytest.raises(BuscadorError, match="does not say which image model it is aligned to"):
        TextEncoder(str(undeclared))
    with pytest.raises(BuscadorError, match="could not load the text model"):
        TextEncoder(str(tmp_path / "nothing-here"))


def test_the_command_line_loads_the_text_model_for_a_text_in_another_language_alone(
    tmp_path, built_index, tiny_model, capsys, monkeypatch
):
    from indexing.cli import main

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    other = make_tiny_multilingual(tmp_path / "other", "openai/clip-vit-large-patch14")  # another space
    args = ["search", str(built_index), "--text", "a cat", "-k", "2", "--text-model", str(other)]
    assert main(args) == 0  # English: CLIP's own encoder, the other model never loaded
    capsys.readouterr()
    assert main([*args, "--language", "es"]) == 2  # Spanish needs it: refused when loaded
    assert "aligned to the images of openai/clip-vit-large-patch14" in capsys.readouterr().err


def test_a_text_model_on_a_hub_out_of_reach_is_a_clear_message(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as with no network
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(BuscadorError) as raised:
        TextEncoder("someone/text-model")
    assert str(raised.value).splitlines()[0] == (
        "could not load the text model 'someone/text-model': "
        "the Hub is unreachable and it is not in the cache"
    )


def test_the_app_logs_which_encoder_answered(built_index, embedder, multilingual, caplog):
    from gradio_client import Client

    from tests.test_app import _serve
    from tests.tiny_clip import DUPLICATE_THRESHOLD
    from ui.startup import APP_MAX_K, Engine

    searcher = Searcher.open(built_index, embedder, max_k=APP_MAX_K, text_encoder=TextEncoder(multilingual))
    demo, url = _serve(Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD))
    try:
        with caplog.at_level(logging.INFO, logger="buscador.search"):
            Client(url, verbose=False, headers={"Accept-Language": "es"}).predict(
                "un gato", 2, -1.0, api_name="/hits_text"
            )
            Client(url, verbose=False).predict("a cat", 2, -1.0, api_name="/hits_text")
        lines = [r.getMessage() for r in caplog.records if r.name == "buscador.search"]
        assert [line.split()[4] for line in lines] == ["text_encoder=multilingual", "text_encoder=clip"]
    finally:
        demo.close()


def test_the_cli_takes_a_text_model_and_a_language(
    built_index, tiny_model, multilingual, capsys, monkeypatch
):
    import json

    from indexing.cli import main

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    monkeypatch.setenv("CLIP_PRECISION", "fp32")
    args = [
        "search",
        str(built_index),
        "--text",
        "un gato",
        "-k",
        "3",
        "--json",
        "--text-model",
        multilingual,
    ]
    assert main([*args, "--language", "es"]) == 0
    spanish = [h["id"] for h in json.loads(capsys.readouterr().out)]
    encoder = TextEncoder(multilingual)
    from indexing.store import IndexStore

    expected = [i for i, _ in IndexStore(built_index).search(encoder.embed_texts(["un gato"]), 3)[0]]
    assert spanish == expected
    assert main([*args, "--language", "xx"]) == 0  # any language but English
    assert [h["id"] for h in json.loads(capsys.readouterr().out)] == expected


def test_a_description_too_long_for_either_encoder_says_where_it_stopped(
    built_index, embedder, multilingual, tiny_model, capsys, monkeypatch
):
    from indexing.cli import main

    encoder = TextEncoder(multilingual)
    searcher = Searcher.open(built_index, embedder, text_encoder=encoder)
    long = "un gato rojo muy grande " * 100 + "-perro taken:2019"
    read = {language: searcher.words_read(long, language) for language in ("en", "es")}
    assert read["en"] == embedder.words_read(long) and read["es"] == encoder.words_read(long)
    assert long.startswith(read["en"]) and long.startswith(read["es"]) and read["en"] != read["es"]
    assert searcher.words_read("un gato rojo -perro taken:2019", "es") is None
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    assert main(["search", str(built_index), "--text", long[:-18], "-k", "1", "--paths"]) == 0
    end = " ".join(read["en"].split()[-6:])
    assert f"note: the description is too long for the model: it read up to “…{end}”" in (
        capsys.readouterr().err
    )


needs_openvino = pytest.mark.skipif(not openvino_tower.installed(), reason="needs OpenVINO")


@needs_openvino
def test_in_openvino_it_embeds_as_in_torch_and_its_conversion_is_kept(
    multilingual, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("BUSCADOR_CACHE", str(tmp_path / "cache"))
    texts = [*SENTENCES, "a much longer text about many cats and dogs " * 10]
    encoder = TextEncoder(multilingual, device="cpu", runtime="openvino")
    in_torch = encoder.embed_texts(texts)
    with caplog.at_level("INFO"):
        encoder.ready_towers()
    assert encoder._tower is not None and "sentence tower agrees with torch's fp32" in caplog.text
    in_openvino = encoder.embed_texts(texts)  # padded to the longest
    assert np.sum(in_torch * in_openvino, axis=1).min() > 0.9999
    alone = encoder.embed_texts([texts[1]])
    assert float(alone[0] @ in_torch[1]) > 0.9999
    made: list[int] = []
    monkeypatch.setattr(openvino_tower, "_convert", lambda *args: made.append(1))
    again = TextEncoder(multilingual, device="cpu", runtime="openvino")
    again.ready_towers()  # the app's next start: read back, not converted
    assert again._tower is not None and not made
    assert np.allclose(again.embed_texts(texts), in_openvino, atol=1e-6)


@needs_openvino
def test_where_openvino_cannot_take_it_torch_runs_it(multilingual, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("BUSCADOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CLIP_RUNTIME", "torch")
    asked = TextEncoder(multilingual, device="cpu")
    asked.ready_towers()
    assert asked.runtime == "torch" and asked._tower is None and not (tmp_path / "cache").exists()
    monkeypatch.delenv("CLIP_RUNTIME")

    def fails(*args, **kwargs):
        raise RuntimeError("Exception from src/core/src/node.cpp: unsupported operation")

    monkeypatch.setattr(openvino_tower, "OpenVinoTower", fails)
    encoder = TextEncoder(multilingual, device="cpu", runtime="openvino")
    with caplog.at_level("WARNING"):
        encoder.ready_towers()
    assert encoder.runtime == "torch" and "OpenVINO could not take the text model" in caplog.text
    assert encoder.embed_texts(["un gato rojo"]).shape == (1, 512)
