"""Buscador Visual's web app: Gradio UI and API over the search engine (deployable as an HF Space).

Only the page's layout and wiring live here; the handlers are in `ui.handlers`, the start-up in
`ui.startup`, the extra HTTP routes in `ui.routes`, the words in `ui.text`.
Endpoints: /search_text, /search_image, /search_similar (gallery, hits, status, link) and
/hits_text, /hits_image, /hits_similar (the hits JSON alone). A link with ?q=…&k=… (or ?like=ID)
opens the app and runs that search.

Configuration: CLIP_MODEL, INDEX_DIR, INDEX_REPO (+ INDEX_REVISION), GRADIO_SERVER_NAME/PORT
(all read by `indexing.config`).
"""

from __future__ import annotations

import hmac
import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gradio as gr
from gradio import utils as gr_utils
from gradio.components.gallery import GalleryData, GalleryImage
from gradio.data_classes import ImageData
from starlette.middleware import Middleware

from indexing import config
from indexing.errors import BuscadorError
from indexing.places import country_name, town_name
from indexing.sources import folder_roots
from ui import page, uploads
from ui import text as ui_text
from ui.handlers import Handlers, visitor_language
from ui.routes import ServingMiddleware, health_route, photo_route, thumbnail_route, video_route
from ui.startup import APP_MAX_K, Engine, start

# Searches that may run at once: most of them wait for a shared batch of the model, so many can.
CONCURRENT_SEARCHES = 48
# Searches that may wait beyond those; past this, a visitor is told to try again in a moment.
QUEUE_SIZE = 256
# An open page asks this often (seconds) how many images the served index has, so that a new build
# the app swapped in (ui.refresh) shows without a reload.
STATUS_SECONDS = 30.0

T = gr.I18n(**ui_text.labels())  # T("key"): a label the browser shows in its language


def lenient_upload(image: gr.Image) -> gr.Image:
    """Let every upload reach the handler as a file path, even one Pillow cannot open.

    gr.Image's own preprocessing opens the file with every format Pillow knows (its header read)
    and fails with an internal message on a corrupt or truncated upload; passed on unopened, the
    file meets our decoder alone, which opens the formats it reads (`images.PILLOW_FORMATS`) and
    says what is wrong with the rest. A pasted or webcam picture (a data: address) is still
    written to a file by Gradio. (Wrapped on the instance: a gr.Image subclass would make Gradio
    write a .pyi stub beside this file.)
    """
    strict = image.preprocess

    def preprocess(payload: Any) -> Any:
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        try:
            return strict(payload)
        except (OSError, ValueError, SyntaxError):
            return str(payload.path) if payload is not None and payload.path else None

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


def url_gallery(gallery: gr.Gallery) -> gr.Gallery:
    """Send (thumbnail URL, caption) pairs as they are.

    gr.Gallery's own postprocessing starts a thread pool for every answer to look at each item;
    profiled under load, that was 44% of the server's time. Our items are always URLs, which it
    would pass through unchanged. (Wrapped on the instance, as in `lenient_upload`.)
    """

    def postprocess(value: list[tuple[str, str]] | None) -> GalleryData:
        return GalleryData(
            root=[
                GalleryImage(image=ImageData(path=url, url=url, mime_type="image/jpeg"), caption=caption)
                for url, caption in value or []
            ]
        )

    gallery.postprocess = postprocess  # type: ignore[method-assign]
    return gallery


def remember(kind: str) -> Any:
    """An event that records a successful search, for "More results"."""

    def record(query: Any, k: float, min_score: float, collapse: bool, within: str | None) -> dict[str, Any]:
        return {
            "kind": kind,
            "query": query,
            "k": int(k),
            "min_score": float(min_score),
            "collapse": collapse,
            "within": within or "",
        }

    return record


def with_options(
    last: dict[str, Any] | None, k: float, min_score: float, collapse: bool, within: str | None
) -> dict[str, Any] | None:
    """The last search, with the options it has just run again with (see Handlers.again)."""
    return remember(last["kind"])(last["query"], k, min_score, collapse, within) if last else None


def remember_combined(  # noqa: PLR0917 (Gradio passes an event's inputs in order)
    image: str | None,
    words: str,
    weight: float,
    k: float,
    min_score: float,
    collapse: bool,
    within: str | None,
) -> dict[str, Any]:
    """Records a successful image (and words) search, for "More results"."""
    asked = {"image": image, "words": words, "weight": weight}
    return remember("image")(asked, k, min_score, collapse, within)


def index_status(engine: Engine, lang: str = "en") -> str:
    """The served index in a few words: how many images, which model, how many videos (a link that
    lists them, and how to search them), and when and where its photos were taken, where they say:
    the span of dates, how to search a period in `lang` (`taken:2019`, `fecha:2019`), each year
    with its count, a link that lists that year's photos; how many say where, how to search a place
    (`near:Spain`, `cerca:España`), the countries with the most, named in `lang`, and the towns
    with the most, each a link that lists its photos; how many are rated, with a link for each
    least number of stars; the keywords the most photos have, each a link."""
    store = engine.searcher.store if engine.searcher else None
    if store is None:
        return ""
    line = f"🖼️ {store.count} · `{Path(store.model).name}`"
    if videos := store.manifest.get("videos"):
        word = ui_text.message(lang, "videos_word")
        line += f" · 🎞️ [{ui_text.message(lang, 'videos', n=videos)}](?q={quote(word, safe='')}): `{word}`"
    if dates := store.manifest.get("dates_taken"):
        word = ui_text.message(lang, "period_word")
        first, last = dates["first"][:10], dates["last"][:10]
        line += f" · 📅 {first if first == last else f'{first} – {last}'}: `{word}:{last[:4]}`"
        years = dates.get("years") or {}  # (not in indexes built before it was recorded)
        line += "".join(f" · [{year}](?q={word}%3A{year}) ({n})" for year, n in years.items())
    if places := store.manifest.get("places"):
        word = ui_text.message(lang, "place_word")
        countries = list(places["countries"].items())
        line += f" · 📍 {places['count']}: `{word}:{country_name(countries[0][0], lang)}`"
        line += "".join(
            f" · [{country_name(code, lang)}](?q={word}%3A{code}) ({n})" for code, n in countries[:5]
        )
        if towns := list((places.get("towns") or {}).items())[:5]:  # (not in older indexes)
            asked = {town: quote(word + ':"' + town + '"', safe="") for town, _ in towns}  # near:"Paris, FR"
            named = {town: town_name(*town.rsplit(", ", 1), lang) for town, _ in towns}  # "Londres"
            line += " · 🏙️ " + " · ".join(f"[{named[town]}](?q={asked[town]}) ({n})" for town, n in towns)
    if ratings := store.manifest.get("ratings"):
        word = ui_text.message(lang, "rating_word")
        rated, counted = 0, []  # each least rating with how many have it or more: 5★ (12) · 4★+ (40)
        for stars in sorted(ratings, key=int, reverse=True):
            rated += ratings[stars]
            counted.append(f"[{stars}★{'+' if stars != '5' else ''}](?q={word}%3A{stars}) ({rated})")
        line += f" · ⭐ {rated}: `{word}:4` · " + " · ".join(counted)
    if captions := store.manifest.get("captions"):  # how many; no words to list: the syntax
        line += f" · 💬 {captions}: `{ui_text.message(lang, 'caption_word')}:…`"
    if tags := store.manifest.get("tags"):
        word = ui_text.message(lang, "tag_word")
        asked = {tag: quote(f'{word}:"{tag}"', safe="") for tag in tags["top"]}  # tag:"Ana María"
        line += f" · 🏷️ {tags['count']}: `{word}:{next(iter(tags['top']))}` · "
        line += " · ".join(f"[{tag}](?q={asked[tag]}) ({n})" for tag, n in list(tags["top"].items())[:5])
    return line


def problem_note(engine: Engine) -> str:
    """Why there is nothing to search, or nothing once there is."""
    return f"⚠️ **{engine.problem}**" if engine.searcher is None else ""


def folder_hint(engine: Engine, lang: str) -> str:
    """What the folder option suggests in `lang`: the folders of an index of several ("Photos,
    Pictures, or a folder in one of them"), else an example."""
    store = engine.searcher.store if engine.searcher else None
    names = [name for name in folder_roots(store.manifest.get("source") or {}) if name] if store else []
    if names:
        return ui_text.message(lang, "within_folders", folders=", ".join(names))
    return ui_text.labels()[lang]["within_placeholder"]


def of_folders(engine: Engine) -> bool:
    """Whether the served index was built from a folder (whose subfolders one may search alone)."""
    store = engine.searcher.store if engine.searcher else None
    return bool(store) and (store.manifest.get("source") or {}).get("kind") == "folder"


def build_ui(engine: Engine) -> gr.Blocks:
    """The Blocks app for `engine`; tests call this with their own engine.

    The search box comes first and the rarely changed controls (K, minimum score) are folded
    under "Options", so that on a phone the results land on the first screen after a search.
    """
    h = Handlers(engine)
    uploads_deleted = (config.UPLOADS_CHECK_S, config.UPLOADS_KEPT_S)
    with gr.Blocks(title="Buscador Visual", delete_cache=uploads_deleted) as demo:
        gr.Markdown("# 🔎 Buscador Visual")
        gr.Markdown(T("intro"), elem_id="intro")
        # The problem and the index's size are set again at each page load (below): the index may
        # have come in, or a newer build, since the app started (ui.refresh).
        problem = gr.Markdown(problem_note(engine), elem_id="problem", visible=engine.searcher is None)
        with gr.Tabs():
            with gr.Tab(T("tab_text"), id="text") as text_tab, gr.Row(equal_height=True):
                query = gr.Textbox(
                    label=T("query"),
                    placeholder=T("query_placeholder"),
                    max_lines=1,
                    elem_id="query",
                    scale=4,
                )
                text_button = gr.Button(
                    T("search"), variant="primary", elem_id="search-text", scale=1, min_width=90
                )
            with gr.Tab(T("tab_image"), id="image") as image_tab:
                image = lenient_upload(
                    gr.Image(
                        label=T("image"),
                        # Gradio shows an I18n label as "[object Object]" once an image is in;
                        # the tab already says "Image", and the drop area says what to do.
                        show_label=False,
                        type="filepath",
                        image_mode=None,
                        sources=["upload", "webcam", "clipboard"],
                        elem_id="query-image",
                        height=240,
                    )
                )
                with gr.Row():
                    words = gr.Textbox(
                        label=T("image_words"),
                        placeholder=T("image_words_placeholder"),
                        max_lines=1,
                        elem_id="image-words",
                        scale=3,
                    )
                    weight = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=T("image_weight"), scale=2)
                image_button = gr.Button(T("search"), variant="primary", elem_id="search-image")
                # The API's /search_image (an image alone), as documented; the page's button also
                # takes the words and weight above.
                image_only = gr.Button(visible=False)
            # An index on this machine (its owner's): finding groups takes every core for a while.
            with gr.Tab(T("tab_duplicates"), id="duplicates", visible=engine.originals) as duplicates_tab:
                gr.Markdown(T("duplicates_intro"))
                duplicates_button = gr.Button(
                    T("find_duplicates"), variant="primary", elem_id="find-duplicates"
                )
                duplicates_status = gr.Markdown(elem_id="duplicates-status")
                duplicates_found = gr.HTML(elem_id="duplicates")
        examples = gr.Dataset(
            components=[query],
            samples=[[e] for e in ui_text.examples(ui_text.DEFAULT)],  # replaced by the visitor's language
            label=T("examples"),
            elem_id="examples",
        )
        with gr.Accordion(T("options"), open=False, elem_id="options"):
            with gr.Row():
                k = gr.Slider(
                    1, APP_MAX_K, value=config.TOP_K_DEFAULT, step=1, label=T("top_k"), elem_id="top-k"
                )
                min_score = gr.Slider(
                    -1.0, 1.0, value=0.0, step=0.01, label=T("min_score"), elem_id="min-score"
                )
            collapse = gr.Checkbox(value=True, label=T("collapse"), elem_id="collapse")
            # Shown for an index of a folder (a dataset's rows have no folders): see page_status.
            within = gr.Textbox(
                "",
                label=T("within"),
                placeholder=T("within_placeholder"),
                max_lines=1,
                elem_id="within",
                visible=of_folders(engine),
            )
            served = gr.Markdown(index_status(engine), elem_id="index-status")
        # The search's results: out of sight while the Duplicates tab is open (page.DUPLICATES_MODE).
        with gr.Column(elem_id="search-results"):
            status = gr.Markdown(elem_id="status")
            with gr.Row(equal_height=True):
                share = gr.Markdown(elem_id="share")
                copy_link = gr.Button(T("copy_link"), size="sm", elem_id="copy-link", visible=True)
            gallery = url_gallery(
                gr.Gallery(
                    label=T("results"),
                    columns=4,
                    height="auto",
                    object_fit="contain",
                    allow_preview=True,
                    elem_id="results",
                )
            )
            with gr.Row():
                # The clicked result's id. Hidden (the gallery highlights the pick) and -1 until a click:
                # an empty gr.Number shows and sends 0, which would silently mean image #0.
                selected = gr.Number(value=-1, label=T("selected"), visible=False)
                # Enabled by a click on a result: an error here would hide the results behind
                # Gradio's error overlay, just when the visitor needs to click one.
                like_button = gr.Button(T("more_like_this"), interactive=False, elem_id="more-like-this")
                # Shown for a clicked result whose original the app serves (ui.routes): the
                # gallery's own preview enlarges the 256-pixel thumbnail.
                photo_button = gr.Button(
                    T("open_photo"), link_target="_blank", visible=False, elem_id="open-photo"
                )
                # Shown for a clicked result of a dataset whose rows name a web page (--meta-columns).
                page_button = gr.Button(
                    T("open_page"), link_target="_blank", visible=False, elem_id="open-page"
                )
                more_button = gr.Button(T("more_results"), elem_id="more-results")
            last = gr.State(None)  # the last search, for "More results"
            gr.Markdown(T("scores_note"))
            with gr.Accordion(T("json"), open=False):
                results = gr.JSON(elem_id="results-json")

        controls = [k, min_score, collapse, within]
        outputs = [gallery, results, status, share]
        # Every search shares one limit of searches at once (the rest wait in the queue).
        searching: dict[str, Any] = {"concurrency_id": "search", "concurrency_limit": CONCURRENT_SEARCHES}
        # A search shows its progress, and a refused one its error, on the status line alone: the
        # results shown stay as they are instead of each output being covered by an "Error" badge.
        searching_page = searching | {"show_progress_on": [status]}
        text_search = gr.on(
            [text_button.click, query.submit],
            h.search_text,
            [query, *controls],
            outputs,
            api_name="search_text",
            **searching_page,
        )
        text_search.success(remember("text"), [query, *controls], last, api_visibility="private")
        example_search = examples.click(
            lambda sample: sample[0], examples, query, api_visibility="private"
        ).then(
            h.search_text, [query, *controls], outputs, api_visibility="private", show_progress_on=[status]
        )
        example_search.success(remember("text"), [query, *controls], last, api_visibility="private")
        image_search = gr.on(
            [image_button.click, words.submit],
            h.search_combined,
            [image, words, weight, *controls],
            outputs,
            api_visibility="private",
            **searching_page,
        )
        image_search.success(
            remember_combined, [image, words, weight, *controls], last, api_visibility="private"
        )
        # A picture the browser may not show (an iPhone's HEIC in Chrome) is shown as a JPEG of it.
        image.upload(h.shown, image, image, api_visibility="private", show_progress="hidden")
        # The API's /search_image: the page never clicks this button, so nothing to remember.
        image_only.click(h.search_image, [image, *controls], outputs, api_name="search_image", **searching)
        like_search = like_button.click(
            h.search_similar, [selected, *controls], outputs, api_name="search_similar", **searching_page
        )
        like_search.success(remember("similar"), [selected, *controls], last, api_visibility="private")
        # Options apply at once: a changed one runs the last search again (the visitor's own
        # changes only: a shared link that sets them runs its search once).
        search_again = gr.on(
            [k.release, min_score.release, collapse.input, within.submit],
            h.again,
            [last, *controls],
            outputs,
            api_visibility="private",
            **searching_page,
        )
        search_again.success(with_options, [last, *controls], last, api_visibility="private")
        more_search = more_button.click(
            h.more_results,
            [last, results],
            [gallery, results, status],
            js=page.BEFORE_MORE,
            api_visibility="private",
            **searching_page,
        )
        for search in (text_search, example_search, image_search, like_search, search_again, more_search):
            # A refused search: its status line says why (Gradio's notice goes away by itself).
            search.failure(h.refusal, None, status, api_visibility="private", show_progress="hidden")
        duplicates_button.click(
            h.duplicates,
            within,
            [duplicates_status, duplicates_found],
            api_visibility="private",
            concurrency_id="duplicates",
            concurrency_limit=1,
        )
        picked = [selected, like_button, photo_button, page_button]
        gallery.select(h.pick, results, picked, api_visibility="private")
        gallery.change(  # new results: nothing of them is picked yet; bring them into view
            lambda: (-1, gr.update(interactive=False), gr.update(visible=False), gr.update(visible=False)),
            None,
            picked,
            js=page.ON_RESULTS,
            api_visibility="private",
        )
        copy_link.click(None, js=page.COPY_LINK, api_visibility="private")
        for tab, duplicates_mode in [(text_tab, False), (image_tab, False), (duplicates_tab, True)]:
            tab.select(None, js=page.duplicates_mode(duplicates_mode), api_visibility="private")
        link_outputs = [query, k, collapse, within, *outputs, selected, last]

        def open_page(request: gr.Request) -> tuple[Any, ...]:
            """The examples in the visitor's language, and the search a shared link names, if any."""
            found = h.open_link(request)
            words = gr.Dataset(samples=[[e] for e in ui_text.examples(visitor_language(request))])
            return (words, *(found if found is not None else (gr.update(),) * len(link_outputs)))

        demo.load(open_page, None, [examples, *link_outputs], api_visibility="private")

        def page_status(request: gr.Request) -> tuple[Any, ...]:
            lang = visitor_language(request)
            return (
                problem_note(engine),
                index_status(engine, lang),
                gr.update(visible=of_folders(engine), placeholder=folder_hint(engine, lang)),
            )

        status_outputs = [problem, served, within]
        demo.load(page_status, None, status_outputs, api_visibility="private", show_progress="hidden")
        gr.Timer(STATUS_SECONDS).tick(
            page_status,
            None,
            status_outputs,
            api_visibility="private",
            show_progress="hidden",
            queue=False,
        )

        for fn in (h.search, h.hits_text, h.hits_image, h.hits_similar):
            gr.api(fn, api_name=fn.__name__, **searching)
        gr.api(h.info, api_name="info")
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_SIZE)
    return demo


def launch(demo: gr.Blocks, engine: Engine, **kwargs: Any) -> None:
    """Serve `demo` (built for `engine`) with the thumbnail, photo and health routes and the busy message of
    `ui.routes`: on 127.0.0.1:7860 by default, on all interfaces inside a Hugging Face Space; behind
    a password page with $APP_PASSWORD (any name; the pictures' routes ask for it too). The folders
    uploaded pictures leave are removed as they empty (ui.uploads)."""
    if config.in_space() and not config.server_name_set():
        kwargs.setdefault("server_name", "0.0.0.0")
    if password := config.app_password():
        kwargs.setdefault("auth", lambda _name, given: hmac.compare_digest(given.encode(), password.encode()))
        kwargs.setdefault("auth_message", ui_text.login())
    app_kwargs = {
        "routes": [thumbnail_route(engine), photo_route(engine), video_route(engine), health_route(engine)],
        "middleware": [Middleware(ServingMiddleware)],
    }
    # Gradio deletes uploaded pictures (build_ui's delete_cache), not their folders.
    uploads.keep_tidy(Path(gr_utils.get_upload_folder()), config.UPLOADS_CHECK_S, config.UPLOADS_CHECK_S)
    demo.launch(
        i18n=T,
        css=page.CSS,
        js=page.ON_LOAD,
        show_error=True,
        app_kwargs=app_kwargs,
        max_threads=CONCURRENT_SEARCHES + 16,
        **kwargs,
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config.video_copies_room()  # a setting that is wrong is said before anything loads
    except BuscadorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    engine = start(batch_queries=True, follow_builds=True)
    launch(build_ui(engine), engine)


if __name__ == "__main__":
    main()
