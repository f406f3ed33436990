"""The app's words: the visitor's language from Accept-Language, and engine errors translated."""

from __future__ import annotations

import pytest

from indexing.errors import BadImage, BuscadorError
from ui import text


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("es-ES,es;q=0.9,en;q=0.8", "es"),
        ("es", "es"),
        ("es-MX", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),  # English first: English
        ("fr-FR,es;q=0.8", "es"),  # the first language we speak wins
        ("fr-FR,de;q=0.5", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_follows_the_first_language_we_speak(header, lang):
    assert text.language(header) == lang


def test_message_fills_in_values_and_falls_back_to_english():
    assert text.message("es", "count", n=3, what="«gato»") == "3 resultados para «gato»."
    assert text.message("en", "count", n=3, what="“cat”") == "3 results for “cat”."
    assert text.message("fr", "count", n=1, what="x") == "1 result for x."


def test_every_language_says_everything_english_says():
    english = text.LANGUAGES["en"]
    for lang, words in text.LANGUAGES.items():
        for part in ("labels", "messages", "errors"):
            assert words[part].keys() == english[part].keys(), (lang, part)
        assert len(words["examples"]) == len(english["examples"]) >= 4
    assert text.examples("es")[0] == "un gato" and text.examples("fr") == english["examples"]


def test_a_count_of_one_is_said_in_the_singular():
    assert text.message("en", "count", n=1, what="“cats”") == "1 result for “cats”."
    assert text.message("es", "count", n=1, what="«gatos»") == "1 resultado para «gatos»."
    assert text.message("es", "count", n=3, what="«gatos»") == "3 resultados para «gatos»."
    assert (text.message("es", "folded", n=1), text.message("es", "folded", n=2)) == (
        "+1 parecida",
        "+2 parecidas",
    )
    assert text.message("es", "videos", n=1) == "1 vídeo"


def test_engine_errors_are_translated_by_code():
    bad_k = BuscadorError("K must be …", "bad_k", low=1, high=50, value=1.5)
    assert text.error("es", bad_k) == "K debe ser un número entero de 1 a 50, no 1.5."
    assert text.error("en", bad_k) == "K must be a whole number from 1 to 50, not 1.5."
    huge = BadImage("image too large …", "too_many_pixels", width=20000, height=9000, limit=100)
    assert text.error("es", huge) == (
        "Ese archivo no sirve como imagen: imagen demasiado grande (20000×9000 píxeles; "
        "el límite es 100 megapíxeles)."
    )
    # A code the app has no words for keeps the engine's own message.
    assert text.error("es", BuscadorError("something new went wrong")) == "something new went wrong"
