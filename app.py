"""Buscador Visual's web app: Gradio UI and API over the search engine (deployable as an HF Space).

Only wiring lives here: every button and API endpoint calls `indexing.search.Searcher`.
Endpoints: /search_text, /search_image, /search_similar (by result id). A link with ?q=…&k=…
(or ?like=ID) opens the app and runs that search.

Configuration: CLIP_MODEL, INDEX_DIR, INDEX_REPO (+ INDEX_REVISION), GRADIO_SERVER_NAME/PORT
(all read by `indexing.config`). Start-up lives in `ui.startup`, the words in `ui.text`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gradio as gr
import PIL.Image

from indexing import config
from indexing.errors import BuscadorError
from indexing.files import replace_atomically
from indexing.search import Hit, Searcher
from indexing.store import CATALOG
from ui import text as ui_text
from ui.startup import APP_MAX_K, Engine, start

Results = tuple[list[tuple[str, str]], list[dict[str, Any]], str, str]

T = gr.I18n(**ui_text.LABELS)  # T("key"): a label the browser shows in its language


def lenient_upload(image: gr.Image) -> gr.Image:
    """Let every upload reach the handler as a file path, even one Pillow cannot open.

    gr.Image's own preprocessing opens the file and fails with an internal message on a corrupt
    or truncated upload; passed on, our decoder says what is wrong with it instead. (Wrapped on
    the instance: a gr.Image subclass would make Gradio write a .pyi stub beside this file.)
    """
    strict = image.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return strict(payload)
        except (OSError, ValueError, SyntaxError, PIL.Image.DecompressionBombError):
            return str(payload.path) if payload is not None and payload.path else None

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


class Handlers:
    """The functions behind the events; each returns (gallery, json, status, link)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._thumbs = Path(tempfile.gettempdir()) / "buscador-visual" / _index_tag(engine)

    def search_text(self, query: str, k: float, min_score: float, request: gr.Request) -> Results:
        lang = _lang(request)
        hits = self._run(lambda s: s.by_text(query, k, float(min_score)), lang)
        what = ui_text.message(lang, "text_query", q=query.strip()[:80])
        return self._results(hits, lang, what, min_score, {"q": query.strip(), "k": int(k)})

    def search_image(self, image: str | None, k: float, min_score: float, request: gr.Request) -> Results:
        lang = _lang(request)
        hits = self._run(lambda s: s.by_image(image, k, float(min_score)), lang)
        return self._results(hits, lang, ui_text.message(lang, "image_query"), min_score, None)

    def search_similar(
        self, item_id: float | None, k: float, min_score: float, request: gr.Request
    ) -> Results:
        lang = _lang(request)
        if item_id is None or item_id == -1:  # the page's "nothing picked yet"
            raise gr.Error(ui_text.message(lang, "pick_first"), print_exception=False)
        hits = self._run(lambda s: s.by_id(item_id, k, float(min_score)), lang)
        what = ui_text.message(lang, "like_query", id=int(item_id))
        return self._results(hits, lang, what, min_score, {"like": int(item_id), "k": int(k)})

    def pick(self, results: list[dict[str, Any]] | None, evt: gr.SelectData) -> tuple[int, Any]:
        """The id of the gallery item a visitor clicked, and "More like this" enabled for it."""
        return int((results or [])[evt.index]["id"]), gr.update(interactive=True)

    def open_link(self, request: gr.Request) -> tuple[Any, ...] | None:
        """The page's (query, k, gallery, json, status, link, selected) for the search a shared link
        names (?q=…&k=…, or ?like=ID&k=…); None when the link names no search."""
        params = request.query_params
        try:
            k = min(max(int(params.get("k", config.TOP_K_DEFAULT)), 1), APP_MAX_K)
        except ValueError:
            k = config.TOP_K_DEFAULT
        try:
            if params.get("q", "").strip():
                return (params["q"], k, *self.search_text(params["q"], k, 0.0, request), gr.update())
            if params.get("like", "").isdigit():
                like = int(params["like"])
                return (gr.update(), k, *self.search_similar(like, k, 0.0, request), like)
        except gr.Error as exc:
            return (gr.update(), k, [], [], f"⚠️ {exc.message}", "", gr.update())
        return None

    def _run(self, query: Callable[[Searcher], list[Hit]], lang: str) -> list[Hit]:
        if self.engine.searcher is None:
            raise gr.Error(
                ui_text.message(lang, "not_ready", problem=self.engine.problem), print_exception=False
            )
        try:
            return query(self.engine.searcher)
        except BuscadorError as exc:
            raise gr.Error(ui_text.error(lang, exc), print_exception=False) from None

    def _results(
        self, hits: list[Hit], lang: str, what: str, min_score: float, link: dict[str, Any] | None
    ) -> Results:
        gallery = [(self._thumbnail(h), f"#{h.rank} · {h.score:.4f} · {h.label}") for h in hits]
        if hits:
            status = ui_text.message(lang, "count", n=len(hits), what=what)
        else:
            status = ui_text.message(lang, "none", min_score=float(min_score), what=what)
        share = ui_text.message(lang, "link", href="?" + urlencode(link)) if link else ""
        return gallery, [_hit_json(h) for h in hits], status, share

    def _thumbnail(self, hit: Hit) -> str:
        """A small JPEG on disk for the gallery (written once per id), or the original file."""
        path = self._thumbs / f"{hit.id}.jpg"
        if not path.exists():
            data = self.engine.searcher.thumbnail(hit.id) if self.engine.searcher else None
            if data is None:
                return str(hit.path or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, lambda tmp: tmp.write_bytes(data), durable=False)
        return str(path)


def _hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as the API answers it. The original file is under "file", not "path": gradio_client
    takes any dict with a "path" key for a file to download."""
    data = hit.as_dict()
    return data | {"file": data.pop("path")}


def _index_tag(engine: Engine) -> str:
    """Distinguishes thumbnail caches of different index builds."""
    if engine.searcher is None:
        return "none"
    manifest = engine.searcher.store.manifest
    return manifest["files"][CATALOG]["sha256"][:16]


def _lang(request: gr.Request | None) -> str:
    headers = getattr(request, "headers", None) or {}
    return ui_text.language(headers.get("accept-language"))


def build_ui(engine: Engine) -> gr.Blocks:
    """The Blocks app for `engine`; tests call this with their own engine."""
    h = Handlers(engine)
    searcher = engine.searcher
    with gr.Blocks(title="Buscador Visual") as demo:
        gr.Markdown("# 🔎 Buscador Visual")
        gr.Markdown(T("intro"))
        if searcher is None:
            gr.Markdown(f"⚠️ **{engine.problem}**", elem_id="problem")
        else:
            gr.Markdown(
                f"🖼️ {searcher.store.count} · `{Path(searcher.store.model).name}`", elem_id="index-status"
            )
        with gr.Row():
            k = gr.Slider(1, APP_MAX_K, value=config.TOP_K_DEFAULT, step=1, label=T("top_k"))
            min_score = gr.Slider(-1.0, 1.0, value=0.0, step=0.01, label=T("min_score"))
        with gr.Tabs():
            with gr.Tab(T("tab_text"), id="text"):
                query = gr.Textbox(
                    label=T("query"), placeholder=T("query_placeholder"), max_lines=1, elem_id="query"
                )
                text_button = gr.Button(T("search"), variant="primary", elem_id="search-text")
                examples = gr.Dataset(
                    components=[query], samples=[[e] for e in ui_text.EXAMPLES], label=T("examples")
                )
            with gr.Tab(T("tab_image"), id="image"):
                image = lenient_upload(
                    gr.Image(
                        label=T("image"),
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "webcam", "clipboard"],
                        elem_id="query-image",
                    )
                )
                image_button = gr.Button(T("search"), variant="primary", elem_id="search-image")
        status = gr.Markdown(elem_id="status")
        share = gr.Markdown(elem_id="share")
        gallery = gr.Gallery(
            label=T("results"),
            columns=4,
            height="auto",
            object_fit="contain",
            allow_preview=True,
            elem_id="results",
        )
        with gr.Row():
            # The clicked result's id. Hidden (the gallery highlights the pick) and -1 until a click:
            # an empty gr.Number shows and sends 0, which would silently mean image #0.
            selected = gr.Number(value=-1, label=T("selected"), visible=False)
            # Enabled by a click on a result: an error here would hide the results behind
            # Gradio's error overlay, just when the visitor needs to click one.
            like_button = gr.Button(T("more_like_this"), interactive=False, elem_id="more-like-this")
        gr.Markdown(T("scores_note"))
        with gr.Accordion(T("json"), open=False):
            results = gr.JSON(elem_id="results-json")

        controls = [k, min_score]
        outputs = [gallery, results, status, share]
        gr.on(
            [text_button.click, query.submit],
            h.search_text,
            [query, *controls],
            outputs,
            api_name="search_text",
        )
        examples.click(lambda sample: sample[0], examples, query, api_visibility="private").then(
            h.search_text, [query, *controls], outputs, api_visibility="private"
        )
        image_button.click(h.search_image, [image, *controls], outputs, api_name="search_image")
        like_button.click(h.search_similar, [selected, *controls], outputs, api_name="search_similar")
        gallery.select(h.pick, results, [selected, like_button], api_visibility="private")
        gallery.change(  # new results: nothing of them is picked yet
            lambda: (-1, gr.update(interactive=False)),
            None,
            [selected, like_button],
            api_visibility="private",
        )
        link_outputs = [query, k, *outputs, selected]

        def open_link(request: gr.Request) -> tuple[Any, ...]:
            found = h.open_link(request)
            return found if found is not None else (gr.update(),) * len(link_outputs)

        demo.load(open_link, None, link_outputs, api_visibility="private")
    demo.queue(default_concurrency_limit=2, max_size=64)
    return demo


def launch(demo: gr.Blocks, **kwargs: Any) -> None:
    """Serve on 127.0.0.1:7860 by default, on all interfaces inside a Hugging Face Space."""
    if config.in_space() and not config.server_name_set():
        kwargs.setdefault("server_name", "0.0.0.0")
    demo.launch(i18n=T, show_error=True, **kwargs)


def main() -> None:
    launch(build_ui(start()))


if __name__ == "__main__":
    main()
