"""The serving benchmark's ceiling: a Gradio app with the same inputs and outputs as ours, whose
handlers return at once. Usage: python -m benchmarks.trivial_app PORT"""

from __future__ import annotations

import sys
from typing import Any

import gradio as gr


def answer(*_: Any) -> tuple[list, list, str, str]:
    return [], [], "", ""


def hits(text: str, k: int, min_score: float) -> list[dict[str, Any]]:
    """Answers at once."""
    return []


def main() -> None:
    with gr.Blocks() as demo:
        k = gr.Slider(1, 50, value=12, step=1)
        min_score = gr.Slider(-1.0, 1.0, value=0.0)
        query = gr.Textbox()
        image = gr.Image(type="filepath")
        outputs = [gr.Gallery(), gr.JSON(), gr.Markdown(), gr.Markdown()]
        query.submit(answer, [query, k, min_score], outputs, api_name="search_text", concurrency_limit=48)
        image.upload(answer, [image, k, min_score], outputs, api_name="search_image", concurrency_limit=48)
        gr.api(hits, api_name="hits_text", concurrency_limit=48)
    demo.queue(max_size=256).launch(server_port=int(sys.argv[1]), max_threads=64)


if __name__ == "__main__":
    main()
