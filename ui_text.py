"""The app's words, in English and Spanish.

Static labels are translated in the browser (gr.I18n, by the browser's language); messages made
per request (result counts, errors) are chosen here from the request's Accept-Language header.
"""

from __future__ import annotations

LABELS = {
    "en": {
        "intro": (
            "Find the most similar images in the collection: describe what you look for, or drop in a photo."
        ),
        "tab_text": "Text",
        "tab_image": "Image",
        "query": "Description",
        "query_placeholder": "e.g. a cat sleeping on a sofa",
        "examples": "Examples (click one)",
        "image": "Your image (upload, webcam or paste)",
        "search": "Search",
        "top_k": "Number of results (K)",
        "min_score": "Minimum score",
        "results": "Results (best first)",
        "selected": "Selected result id",
        "more_like_this": "More like this",
        "json": "Results as JSON",
        "scores_note": (
            "**About scores.** The score is the cosine similarity of CLIP embeddings. Image → image "
            "scores are high (≈0.7–0.85 for close matches, 1.0 for the same picture); text → image "
            "scores are low (≈0.2–0.3 for a good match), which is normal for CLIP: compare results "
            "with each other, not with 1."
        ),
    },
    "es": {
        "intro": (
            "Encuentra las imágenes más parecidas de la colección: describe lo que buscas o suelta una foto."
        ),
        "tab_text": "Texto",
        "tab_image": "Imagen",
        "query": "Descripción",
        "query_placeholder": "p. ej. un gato durmiendo en un sofá",
        "examples": "Ejemplos (haz clic en uno)",
        "image": "Tu imagen (subir, cámara o pegar)",
        "search": "Buscar",
        "top_k": "Número de resultados (K)",
        "min_score": "Puntuación mínima",
        "results": "Resultados (el mejor primero)",
        "selected": "Id del resultado elegido",
        "more_like_this": "Más como esta",
        "json": "Resultados en JSON",
        "scores_note": (
            "**Sobre las puntuaciones.** La puntuación es la similitud coseno de los vectores de "
            "CLIP. De imagen a imagen es alta (≈0,7–0,85 para imágenes parecidas, 1,0 para la misma "
            "foto); de texto a imagen es baja (≈0,2–0,3 para un buen resultado), y eso es normal en "
            "CLIP: compara los resultados entre sí, no con 1."
        ),
    },
}

MESSAGES = {
    "en": {
        "count": "{n} results for {what}.",
        "none": "No result above the minimum score {min_score:.2f} for {what}: lower it and search again.",
        "text_query": "“{q}”",
        "image_query": "your image",
        "like_query": "image #{id}",
        "link": "[🔗 Link to this search]({href})",
        "pick_first": "Click a result in the gallery first, then “More like this”.",
        "empty": "Type a description first, e.g. “a dog running on the beach”.",
        "no_image": "Upload, paste or take a picture first.",
        "not_ready": "The search engine is not ready: {problem}",
        "bad_image": "That file could not be used as an image: {reason}.",
        "status": "{count} images indexed · model {model}",
    },
    "es": {
        "count": "{n} resultados para {what}.",
        "none": (
            "Ningún resultado supera la puntuación mínima {min_score:.2f} para {what}: "
            "bájala y busca otra vez."
        ),
        "text_query": "«{q}»",
        "image_query": "tu imagen",
        "like_query": "la imagen n.º {id}",
        "link": "[🔗 Enlace a esta búsqueda]({href})",
        "pick_first": "Primero haz clic en un resultado de la galería y luego en «Más como esta».",
        "empty": "Escribe primero una descripción, p. ej. «un perro corriendo por la playa».",
        "no_image": "Primero sube, pega o haz una foto.",
        "not_ready": "El buscador no está listo: {problem}",
        "bad_image": "Ese archivo no sirve como imagen: {reason}.",
        "status": "{count} imágenes indexadas · modelo {model}",
    },
}

EXAMPLES = [
    "a cat",
    "a cup of coffee",
    "an astronaut",
    "a rocket launching",
    "coins on a table",
    "the surface of the moon",
    "a red flower",
    "a woman in uniform",
]


def language(accept_language: str | None) -> str:
    """'es' when the browser prefers Spanish over English, else 'en'."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("es"):
            return "es"
        if tag.startswith("en"):
            return "en"
    return "en"


def message(lang: str, key: str, **values: object) -> str:
    return MESSAGES.get(lang, MESSAGES["en"])[key].format(**values)
