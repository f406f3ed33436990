"""The serving benchmark's ceiling: a Gradio app with the same inputs and outputs as ours, whose
handlers return at once. With --canned, they return an answer of the size ours gives (12 gallery
items by URL, 12 hits); without, an empty one. Usage: python -m benchmarks.trivial_app PORT [--canned]"""

from __future__ import annotations

import sys
from typing import Any

import gradio as gr

CANNED = "--canned" in sys.argv
HITS = [
    {
        "rank": i + 1,
        "score": 0.3 - i / 100,
        "id": i,
        "key": f"photo_{i}.jpg",
        "label": f"photo_{i}.jpg",
        "file": None,
        "thumbnail": f"http://127.0.0.1:{sys.argv[1]}/thumb/0123456789abcdef/{i}.jpg",
    }
    for i in range(12)
]


def answer(*_: Any) -> tuple[list, list, str, str]:
    if not CANNED:
        return [], [], "", ""
    gallery = [(h["thumbnail"], f"#{h['rank']} · {h['score']:.4f} · {h['label']}") for h in HITS]
    return gallery, HITS, "12 results for “a cat”.", "[🔗 Link to this search](?q=a+cat&k=12)"


def hits(
    text: str, k: int, min_score: float, collapse: float | None = None, within: str = ""
) -> list[dict[str, Any]]:
    """Answers at once."""
    return HITS if CANNED else []


def main() -> None:
    with gr.Blocks() as demo:
        k = gr.Slider(1, 50, value=12, step=1)
        min_score = gr.Slider(-1.0, 1.0, value=0.0)
        collapse = gr.Checkbox(value=True)
        within = gr.Textbox("")
        query = gr.Textbox()
        image = gr.Image(type="filepath")
        outputs = [gr.Gallery(), gr.JSON(), gr.Markdown(), gr.Markdown()]
        controls = [k, min_score, collapse, within]  # the app's, in its order
        for event, first, name in [
            (query.submit, query, "search_text"),
            (image.upload, image, "search_image"),
        ]:
            event(answer, [first, *controls], outputs, api_name=name, concurrency_limit=48)
        gr.api(hits, api_name="hits_text", concurrency_limit=48)
    demo.queue(max_size=256).launch(server_port=int(sys.argv[1]), max_threads=64)


if __name__ == "__main__":
    main()
