"""The Gradio app, served on a free local port: every API endpoint through gradio_client, bad input,
several visitors at once, and what a person sees in a real browser (Chromium via Playwright)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from indexing import config
from indexing.batching import BatchingEmbedder
from indexing.build import build_index
from indexing.duplicates import Member
from indexing.search import Searcher
from indexing.sources import FolderSource
from tests.synthetic import POSTSCRIPT
from tests.tiny_clip import DUPLICATE_THRESHOLD
from ui import uploads
from ui.groups import groups_html
from ui.handlers import Handlers
from ui.startup import APP_MAX_K, Engine, start

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# What the API says of each result.
HIT_KEYS = {
    "rank",
    "score",
    "id",
    "key",
    "label",
    "file",
    "thumbnail",
    "photo",
    "video",
    "seconds",
    "tags",
    "rating",
    "caption",
    "taken",
    "place",
    "folded",
    "meta",
    "link",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(engine: Engine):
    demo = app.build_ui(engine)
    port = _free_port()
    app.launch(demo, engine, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def batching(embedder):
    """The tiny CLIP behind micro-batchers, as the app serves it."""
    return BatchingEmbedder(embedder)


@pytest.fixture(scope="module")
def server(built_index, batching):
    searcher = Searcher.open(built_index, batching, max_k=APP_MAX_K)
    demo, url = _serve(Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD))
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


def test_search_image_endpoint_finds_the_image_itself(client, collection):
    gallery, results, status, link = client.predict(
        handle_file(str(collection / "img_005.png")), 5, 0.0, api_name="/search_image"
    )
    assert results[0]["key"] == "img_005.png" and results[0]["score"] > 0.999
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert len(gallery) == 5 and gallery[0]["caption"] == "#1 · 1.0000 · img_005.png"
    assert status.startswith("5 results") and link == ""


def test_search_text_endpoint_gives_k_ranked_results_and_a_link(client):
    gallery, results, _, link = client.predict("a red circle", 7, -1.0, api_name="/search_text")
    assert len(results) == len(gallery) == 7
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert results[0].keys() == HIT_KEYS
    assert "?q=a+red+circle&k=7" in link


def test_search_similar_endpoint_by_result_id(client, collection):
    first = client.predict(handle_file(str(collection / "img_009.png")), 1, 0.0, api_name="/search_image")[1][
        0
    ]
    _, results, _, link = client.predict(first["id"], 4, 0.0, api_name="/search_similar")
    assert len(results) == 4 and first["id"] not in [r["id"] for r in results]
    assert f"?like={first['id']}&k=4" in link


def test_min_score_filters_results(client, collection):
    _, results, _, _ = client.predict(
        handle_file(str(collection / "img_001.png")), 10, 0.9999, api_name="/search_image"
    )
    assert [r["key"] for r in results] == ["img_001.png"]


def _bad_files(tmp: Path) -> dict[str, Path]:
    (tmp / "notes.png").write_text("not a picture")
    good = io.BytesIO()
    Image.new("RGB", (400, 300), "red").save(good, "JPEG")
    (tmp / "truncated.jpg").write_bytes(good.getvalue()[:300])
    side = int((config.MAX_DECODED_PIXELS * 1.2) ** 0.5)
    Image.new("1", (side, side)).save(tmp / "huge.png")
    (tmp / "postscript.jpg").write_bytes(POSTSCRIPT)
    return {name: tmp / name for name in ("notes.png", "truncated.jpg", "huge.png", "postscript.jpg")}


@pytest.mark.parametrize(
    ("endpoint", "args", "message"),
    [
        ("/search_text", ["   ", 5, 0.0], "Type a description"),
        ("/search_text", ["cat", 0, 0.0], "less than minimum value 1"),
        ("/search_text", ["cat", 51, 0.0], "greater than maximum value 50"),
        ("/search_image", [None, 5, 0.0], "Upload, paste or take a picture"),
        ("/search_image", ["notes.png", 5, 0.0], "could not be used as an image: not an image"),
        ("/search_image", ["truncated.jpg", 5, 0.0], "corrupt or truncated"),
        ("/search_image", ["huge.png", 5, 0.0], "too large"),
        (
            "/search_image",
            ["postscript.jpg", 5, 0.0],
            r"a file in EPS \(PostScript\) format, which is not read here",
        ),
        ("/search_similar", [None, 5, 0.0], "Click a result"),
        ("/search_similar", [99999, 5, 0.0], "no image with id 99999"),
        ("/search_text", ["cat", 1.5, 0.0], r"K must be a whole number from 1 to 50, not 1\.5"),
        ("/search_similar", [1.5, 5, 0.0], r"image id must be a whole number .* not 1\.5"),
        ("/search_similar", [2, 2.5, 0.0], r"K must be a whole number"),
    ],
    ids=[
        "blank-text",
        "k-zero",
        "k-too-big",
        "no-image",
        "non-image",
        "truncated",
        "huge",
        "postscript",
        "no-id",
        "bad-id",
        "k-fraction",
        "id-fraction",
        "similar-k-fraction",
    ],
)
def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(client, tmp_path, endpoint, args, message):
    files = _bad_files(tmp_path)
    if isinstance(args[0], str) and args[0] in files:
        args = [handle_file(str(files[args[0]])), *args[1:]]
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=endpoint)
    assert client.predict("still there?", 1, -1.0, api_name="/search_text")[1]


def test_a_postscript_upload_is_never_handed_to_ghostscript(ghostscript, client, tmp_path):
    upload = tmp_path / "holiday.jpg"
    upload.write_bytes(POSTSCRIPT)
    with pytest.raises(AppError, match=r"could not be used as an image: a file in EPS \(PostScript\) format"):
        client.predict(handle_file(str(upload)), 5, 0.0, api_name="/search_image")
    assert not ghostscript.exists()


def test_an_iphone_heic_dropped_on_the_page_is_searched_with(client):
    # (decoded in a guard process: this one never hands libheif a visitor's file)
    heic = Path(__file__).resolve().parent / "data" / "iphone.heic"
    _, results, status, _ = client.predict(handle_file(str(heic)), 3, -1.0, api_name="/search_image")
    assert len(results) == 3 and status.startswith("3 results")


def test_an_upload_that_crashes_its_decoder_is_refused_and_the_app_keeps_serving(
    crashing_children, client, tmp_path
):
    from tests.crashing import CRASHING

    damaged = tmp_path / "IMG_0042.heic"  # as libheif crashed on some damaged HEICs
    damaged.write_bytes(CRASHING)
    with pytest.raises(
        AppError, match="could not be used as an image: a damaged image, which stopped our decoder"
    ):
        client.predict(handle_file(str(damaged)), 5, 0.0, api_name="/search_image")
    assert client.predict("still there?", 1, -1.0, api_name="/search_text")[1]


@pytest.mark.parametrize(
    ("endpoint", "args", "message"),
    [
        ("/search_text", ["  ", 5, 0.0], "Escribe primero una descripción"),
        ("/search_text", ["gato", 1.5, 0.0], "K debe ser un número entero de 1 a 50"),
        ("/search_similar", [99999, 5, 0.0], "No hay ninguna imagen con id 99999"),
        ("/search_image", ["notes.png", 5, 0.0], "Ese archivo no sirve como imagen: no es una imagen"),
        ("/search_image", ["truncated.jpg", 5, 0.0], "la imagen está dañada o incompleta"),
        (
            "/search_image",
            ["postscript.jpg", 5, 0.0],
            r"un archivo en formato EPS \(PostScript\), que aquí no se lee",
        ),
    ],
    ids=["blank-text", "k-fraction", "unknown-id", "non-image", "truncated", "postscript"],
)
def test_errors_reach_spanish_visitors_in_spanish(server, tmp_path, endpoint, args, message):
    files = _bad_files(tmp_path)
    if args[0] in files:
        args = [handle_file(str(files[args[0]])), *args[1:]]
    spanish = Client(server, verbose=False, headers={"Accept-Language": "es-ES,es;q=0.9"})
    with pytest.raises(AppError, match=message):
        spanish.predict(*args, api_name=endpoint)


def test_several_visitors_at_once_get_their_own_answers(client, server, collection):
    names = [f"img_{i:03d}.png" for i in range(8)]

    def visit(name: str) -> str:
        own = Client(server, verbose=False)
        return own.predict(handle_file(str(collection / name)), 1, 0.0, api_name="/search_image")[1][0]["key"]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(visit, names)) == names


def test_empty_index_and_missing_engine_say_so(tmp_path, embedder):
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    build_index(FolderSource(empty), tmp_path / "index", embedder, progress=False)
    demo, url = _serve(Engine(Searcher.open(tmp_path / "index", embedder)))
    try:
        with pytest.raises(AppError, match="index is empty"):
            Client(url, verbose=False).predict("cat", 3, 0.0, api_name="/search_text")
    finally:
        demo.close()
    demo, url = _serve(Engine(None, "no index at ./index (build one first)"))
    try:
        with pytest.raises(AppError, match=r"not ready: no index at \./index"):
            Client(url, verbose=False).predict("cat", 3, 0.0, api_name="/search_text")
        with pytest.raises(AppError, match=r"not ready: no index at \./index"):
            Client(url, verbose=False).predict(api_name="/info")
    finally:
        demo.close()


def test_start_builds_the_sample_collection_when_there_is_no_index(tmp_path, tiny_model, collection):
    sample = tmp_path / "sample"
    shutil.copytree(collection, sample)
    engine = start(index_dir=tmp_path / "index", model=tiny_model, sample_dir=sample)
    assert engine.problem is None and engine.searcher.store.count == 12
    nothing = start(index_dir=tmp_path / "none", model=tiny_model, sample_dir=tmp_path / "no-sample")
    assert nothing.searcher is None and "no index at" in nothing.problem
    bad_model = start(index_dir=tmp_path / "index", model=str(tmp_path / "no-model"), sample_dir=sample)
    assert bad_model.searcher is None and "no model directory" in bad_model.problem


def test_a_full_disk_while_start_builds_the_samples_is_a_message_not_a_crash(
    tmp_path, tiny_model, collection, monkeypatch
):
    import errno

    from indexing.vectors import VectorFile

    def full(self, ids, vectors):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(VectorFile, "write", full)
    engine = start(index_dir=tmp_path / "index", model=tiny_model, sample_dir=collection)
    assert engine.searcher is None
    assert engine.problem == f"No space left on device ({tmp_path / 'index' / 'vectors.f16'})"


@pytest.mark.parametrize("runtime", ["torch", "openvino"])
def test_start_runs_each_kind_of_query_through_the_model_before_the_first_visitor(
    tmp_path, tiny_model, built_index, collection, multilingual, monkeypatch, runtime
):
    from indexing import openvino_tower, precision

    if runtime == "openvino" and not openvino_tower.installed():
        pytest.skip("needs OpenVINO")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)  # so that each path is measured
    monkeypatch.setattr(openvino_tower, "has_bf16", lambda: True)
    monkeypatch.setenv("CLIP_RUNTIME", runtime)
    engine = start(index_dir=built_index, model=tiny_model, text_model=multilingual)
    embedder, text_model = engine.searcher.embedder, engine.searcher.text_encoder
    # A single text, texts that arrive together and a single image: each chose its precision; or,
    # in OpenVINO, both towers were made (converted, whatever the images a build would wait for).
    if runtime == "torch":
        assert set(embedder.precision.chosen) == {"text_one", "text_batch", "image_one"}
        assert text_model._tower is None
    else:
        assert text_model._tower is not None  # the text model for other languages too
        assert not embedder.precision.chosen  # nothing left to torch
        assert embedder.runtime_used() == "OpenVINO" and embedder._text_tower is not None
        # texts in fp32: OpenVINO's bf16 moved them more than the issue allows
        assert (embedder.precision_used("image"), embedder.precision_used("text")) == ("bf16", "fp32")
        hit = engine.searcher.by_image(collection / "img_003.png", k=1)[0]
        assert hit.key == "img_003.png" and hit.score > 0.99  # (a single image, in its tower)


# --- a real browser -------------------------------------------------------------------------------

# `browser`: a headless Chromium (tests/conftest.py).


@contextmanager
def opened(engine: Engine, browser, lang: str = "en"):
    """A page of the app serving `engine`, for a visitor speaking `lang`, and the app's address;
    both closed after."""
    demo, url = _serve(engine)
    locale = {"en": "en-US", "es": "es-ES"}[lang]
    page = browser.new_page(locale=locale, extra_http_headers={"Accept-Language": f"{locale},{lang}"})
    try:
        yield page, url
    finally:
        page.close()
        demo.close()


def _captions(page) -> list[str]:
    return page.locator("#results .caption-label").all_inner_texts()


def _follow_index_link(page, text: str, title: str) -> None:
    """Open Options (a search folds them away) and follow the link `text` of the line under them
    (a year, a country, a town): wait until the page shows the search whose title begins `title`."""
    page.locator("#options").click()
    page.locator("#index-status a", has_text=text).click()
    page.wait_for_function(f"document.title.startsWith({json.dumps(title)})", timeout=30000)


def test_browser_text_search_shows_k_results_with_scores(browser, server):
    page = browser.new_page(locale="en-US")
    page.goto(server)
    page.get_by_text("a cup of coffee", exact=True).wait_for()  # the page's start-up event ran
    page.wait_for_timeout(500)
    page.get_by_text("Options: K, minimum score").click()  # folded away by default
    k_box = page.get_by_label("Number of results (K)").first
    k_box.wait_for(state="visible")
    page.wait_for_timeout(300)  # the accordion finishes opening
    k_box.fill("6")
    page.keyboard.press("Tab")  # the number box commits its value when it loses focus
    assert k_box.input_value() == "6"
    page.locator("#query textarea, #query input").first.fill("a green square")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 6", timeout=30000)
    captions = _captions(page)
    ranks_and_scores = [re.fullmatch(r"#(\d+) · (-?[01]\.\d{4}) · img_\d{3}\.png", c) for c in captions]
    assert all(ranks_and_scores), captions
    assert [int(m.group(1)) for m in ranks_and_scores] == [1, 2, 3, 4, 5, 6]
    scores = [float(m.group(2)) for m in ranks_and_scores]
    assert scores == sorted(scores, reverse=True)
    assert page.get_by_text("Link to this search").is_visible()
    page.screenshot(path=ARTIFACTS / "text-search.png", full_page=True)
    page.close()


def test_browser_address_bar_follows_the_searches_and_back_returns_to_one(browser, server):
    page = browser.new_page(locale="en-US")
    page.goto(server)
    page.get_by_text("a cup of coffee", exact=True).wait_for()  # the page's start-up event ran
    page.locator("#status[role=status]").wait_for(state="attached")  # and its script: keys are heard
    page.locator("body").press("/")  # "/" goes to the search box
    page.keyboard.type("a red circle")
    page.keyboard.press("Enter")
    page.wait_for_function("document.title === 'a red circle · Buscador Visual'", timeout=30000)
    assert page.url == server + "?q=a+red+circle&k=12"
    page.locator("#query textarea, #query input").first.fill("a blue square")
    page.keyboard.press("Enter")
    page.wait_for_function("window.location.search === '?q=a+blue+square&k=12'", timeout=30000)
    page.go_back()  # the address of the first search, and its search run again (the page reloads)
    page.wait_for_function(
        "document.querySelector('#status')?.innerText.includes('“a red circle”')", timeout=30000
    )
    assert page.url == server + "?q=a+red+circle&k=12"
    page.close()


def _upload_query_image(page, path: Path) -> None:
    """Drop `path` on the Image tab and wait until the page shows it: uploaded, the search's input."""
    shown = (
        "(() => { const i = document.querySelector('#query-image img');"
        " return !!i && i.complete && i.naturalWidth > 0; })()"
    )
    assert not page.evaluate(shown)
    page.locator("#query-image input[type=file]").set_input_files(str(path))
    page.wait_for_function(shown, timeout=30000)


def test_browser_image_upload_finds_itself_first(browser, server, collection):
    page = browser.new_page(locale="en-US")
    page.goto(server)
    page.get_by_role("tab", name="Image").click()
    _upload_query_image(page, collection / "img_011.png")
    page.locator("#search-image").click()
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length > 0", timeout=30000)
    assert _captions(page)[0].startswith("#1 · 1.0000 · img_011.png")
    page.screenshot(path=ARTIFACTS / "image-search.png", full_page=True)
    page.close()


def test_browser_an_iphone_heic_dropped_is_shown_and_searched_with(browser, server):
    page = browser.new_page(locale="en-US")
    page.goto(server)
    page.get_by_role("tab", name="Image").click()
    # Chromium shows no HEIC: the page shows a JPEG of it, which the search takes.
    _upload_query_image(page, Path(__file__).resolve().parent / "data" / "iphone.heic")
    assert page.evaluate("document.querySelector('#query-image img').naturalWidth") == 480  # upright
    page.locator("#search-image").click()
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length > 0", timeout=30000)
    page.close()


def test_browser_shared_link_runs_its_search(browser, server):
    page = browser.new_page(locale="en-US")
    page.goto(server + "?q=a+blue+circle&k=3")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 3", timeout=30000)
    assert page.locator("#query textarea, #query input").first.input_value() == "a blue circle"
    page.screenshot(path=ARTIFACTS / "shared-link.png", full_page=True)
    page.close()


def test_browser_speaks_spanish_to_spanish_visitors(browser, server):
    page = browser.new_page(locale="es-ES", extra_http_headers={"Accept-Language": "es-ES,es;q=0.9"})
    page.goto(server + "?q=un+gato&k=2")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 2", timeout=30000)
    assert page.get_by_text("Opciones: K, puntuación mínima").first.is_visible()
    page.get_by_text("2 resultados para «un gato»").wait_for(timeout=10000)  # visible, or it fails
    page.screenshot(path=ARTIFACTS / "spanish.png", full_page=True)
    page.close()


def test_browser_more_like_this_searches_by_the_clicked_result(browser, server, client):
    clicked = client.predict("anything", 4, 0.0, api_name="/search_text")[1][1]["id"]  # result #2
    page = browser.new_page(locale="en-US")
    page.goto(server + "?q=anything&k=4")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 4", timeout=30000)
    assert page.locator("#more-like-this").is_disabled()  # nothing picked yet
    page.locator("#results .thumbnail-item").nth(1).click()
    page.wait_for_function("!document.querySelector('#more-like-this').disabled", timeout=30000)
    page.locator("#more-like-this").click()
    page.wait_for_function(
        f"document.querySelector('#status').innerText.includes('image #{clicked}')", timeout=30000
    )
    assert f"?like={clicked}&k=4" in page.locator("#share a").get_attribute("href")
    page.wait_for_function("document.querySelector('#more-like-this').disabled", timeout=30000)  # new results
    page.screenshot(path=ARTIFACTS / "more-like-this.png", full_page=True)
    page.close()


def test_browser_shows_why_the_engine_is_not_ready(browser):
    demo, url = _serve(Engine(None, "cannot download the index owner/gone: 404 Repository Not Found"))
    try:
        page = browser.new_page(locale="en-US")
        page.goto(url)
        page.wait_for_selector("#problem")
        assert "cannot download the index owner/gone" in page.locator("#problem").inner_text()
        page.screenshot(path=ARTIFACTS / "not-ready.png", full_page=True)
        page.close()
    finally:
        demo.close()


# --- the page as visitors see it: phone and desktop, language, accessibility, sharing ------------


@pytest.mark.parametrize(
    ("device", "viewport"),
    [("phone", {"width": 390, "height": 844}), ("desktop", {"width": 1280, "height": 900})],
)
def test_browser_results_arrive_in_view_without_scrolling(browser, server, device, viewport):
    context = browser.new_context(viewport=viewport, locale="en-US", is_mobile=device == "phone")
    page = context.new_page()
    page.goto(server)
    page.locator("#query textarea, #query input").first.fill("a red circle")
    page.keyboard.press("Enter")  # no click, no scroll: as a visitor on a phone keyboard would
    page.wait_for_function("document.querySelectorAll('#results .thumbnail-item').length > 0", timeout=30000)
    page.wait_for_timeout(500)  # the scroll to the results
    box = page.locator("#results .thumbnail-item").first.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
    boxes = [item.bounding_box() for item in page.locator("#results .thumbnail-item").all()]
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= viewport["width"] for b in boxes), boxes  # none cut off
    alts = page.locator("#results img").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert alts and all(re.fullmatch(r"#\d+ · -?[01]\.\d{4} · img_\d{3}\.png", a) for a in alts), alts
    assert page.locator("#status").get_attribute("aria-live") == "polite"
    page.screenshot(path=ARTIFACTS / f"results-{device}.png")
    context.close()


def test_browser_spanish_page_has_spanish_examples(browser, server):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        locale="es-ES",
        extra_http_headers={"Accept-Language": "es-ES,es;q=0.9"},
        is_mobile=True,
    )
    page = context.new_page()
    page.goto(server)
    page.get_by_text("un gato", exact=True).wait_for(timeout=30000)
    assert page.get_by_text("una taza de café", exact=True).is_visible()
    assert page.get_by_text("a cup of coffee", exact=True).count() == 0
    page.get_by_text("un astronauta", exact=True).click()
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('«un astronauta»')", timeout=30000
    )
    page.screenshot(path=ARTIFACTS / "spanish-phone.png")
    context.close()


def test_browser_copy_link_reproduces_the_search(browser, server):
    context = browser.new_context(locale="en-US")
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(server)
    page.locator("#copy-link").wait_for(state="hidden", timeout=10000)  # no search, no link
    page.locator("#query textarea, #query input").first.fill("a blue square")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length > 0", timeout=30000)
    page.locator("#copy-link").click()
    page.wait_for_function("document.querySelector('#copy-link').classList.contains('copied')", timeout=5000)
    url = page.evaluate("navigator.clipboard.readText()")
    assert url.startswith(server) and "q=a+blue+square" in url and "k=12" in url
    opened = context.new_page()
    opened.goto(url)
    opened.wait_for_function(
        "document.querySelectorAll('#results .caption-label').length === 12", timeout=30000
    )
    assert opened.locator("#query textarea, #query input").first.input_value() == "a blue square"
    assert _captions(opened) == _captions(page)
    context.close()


def test_browser_more_results_appends_the_next_k(browser, server):
    page = browser.new_page(locale="en-US")
    page.goto(server + "?q=a+red+circle&k=4")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 4", timeout=30000)
    first = _captions(page)
    page.locator("#more-results").click()
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length > 4", timeout=30000)
    captions = _captions(page)  # up to 4 more: those above the link's minimum score (0)
    n = len(captions)
    assert captions[:4] == first and [c.split(" · ")[0] for c in captions] == [
        f"#{i}" for i in range(1, n + 1)
    ]
    assert len({c.split(" · ")[2] for c in captions}) == n  # no repeats
    assert f"{n - 4} more results, {n} in all." in page.locator("#status").inner_text()
    page.screenshot(path=ARTIFACTS / "more-results.png", full_page=True)
    page.close()


def test_browser_a_refused_search_says_why_on_the_status_line_and_keeps_the_results(browser, server):
    page = browser.new_page(locale="en-US")
    page.goto(server + "?q=a+red+circle&k=4")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 4", timeout=30000)
    shown = _captions(page)
    page.locator("#query textarea, #query input").first.fill("a red circle taken:2019")  # no dates here
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#status').innerText.includes('⚠️')", timeout=30000)
    assert "No image of this index says when it was taken" in page.locator("#status").inner_text()
    assert _captions(page) == shown  # the last results stay, not covered by an error badge
    assert page.locator("#results").get_by_text("Error", exact=True).count() == 0
    page.screenshot(path=ARTIFACTS / "refused-search.png", full_page=True)
    page.close()


def test_browser_combined_query_weighs_the_image_and_the_words(browser, server, client, collection):
    words_only = client.predict("a blue square", 3, 0.0, api_name="/search_text")[1][0]["key"]
    page = browser.new_page(locale="en-US")
    page.goto(server)
    page.get_by_role("tab", name="Image").click()
    _upload_query_image(page, collection / "img_011.png")
    page.locator("#image-words textarea, #image-words input").first.fill("a blue square")
    share = page.get_by_label("Image's share (0: words only, 1: image only)").first
    share.wait_for(state="visible")
    page.wait_for_timeout(300)
    share.fill("0")
    page.keyboard.press("Tab")
    assert share.input_value() == "0"
    page.locator("#search-image").click()
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('your image and “a blue square”')",
        timeout=30000,
    )
    assert _captions(page)[0].endswith(f" · {words_only}")  # all words: what the words alone find
    share.fill("1")
    page.keyboard.press("Tab")
    page.locator("#image-words textarea, #image-words input").first.press("Enter")  # as the button
    page.wait_for_function(
        "document.querySelector('#results .caption-label').innerText.includes('1.0000 · img_011.png')",
        timeout=30000,
    )  # all image: the image itself first
    page.screenshot(path=ARTIFACTS / "combined-query.png", full_page=True)
    page.close()


# --- searching one folder -------------------------------------------------------------------------


def _albums(collection: Path, folder: Path) -> Path:
    """The collection in two folders of `folder`: a/ (images 0 to 5) and b/ (6 to 11)."""
    for image in sorted(collection.glob("*.png")):
        album = folder / ("a" if int(image.stem[-3:]) < 6 else "b")
        album.mkdir(exist_ok=True)
        shutil.copy(image, album / image.name)
    return folder


@pytest.fixture(scope="module")
def albums_server(tmp_path_factory, collection, batching):
    """An index of two folders, a/ (images 0 to 5) and b/ (6 to 11), served."""
    folder = _albums(collection, tmp_path_factory.mktemp("albums"))
    out = tmp_path_factory.mktemp("albums-index")
    build_index(FolderSource(folder), out, batching.embedder, progress=False)
    searcher = Searcher.open(out, batching, max_k=APP_MAX_K)
    demo, url = _serve(Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD, originals=True))
    yield url
    demo.close()


def test_every_endpoint_searches_one_folder_when_asked(albums_server, collection):
    client = Client(albums_server, verbose=False)
    everywhere = client.predict("a red circle", 12, -1.0, api_name="/hits_text")
    assert {hit["key"][0] for hit in everywhere} == {"a", "b"}
    hits = client.predict("a red circle", 12, -1.0, None, "a", api_name="/hits_text")
    assert [hit["key"] for hit in hits] == [hit["key"] for hit in everywhere if hit["key"].startswith("a/")]
    image = handle_file(str(collection / "img_008.png"))
    assert client.predict(image, 1, -1.0, None, "/b/", api_name="/hits_image")[0]["key"] == "b/img_008.png"
    assert client.predict(image, 1, -1.0, None, "a", api_name="/hits_image")[0]["key"].startswith("a/")
    similar = client.predict(hits[0]["id"], 5, -1.0, None, "b", api_name="/hits_similar")
    assert len(similar) == 5 and all(hit["key"].startswith("b/") for hit in similar)
    general = client.predict("a red circle", None, "", 0.5, 3, 0, -1.0, None, "b", api_name="/search")
    assert len(general) == 3 and all(hit["key"].startswith("b/") for hit in general)
    _, results, status, link = client.predict("a red circle", 4, -1.0, True, "a", api_name="/search_text")
    assert all(hit["key"].startswith("a/") for hit in results) and "in=a" in link
    assert status == "4 results for “a red circle” in a."
    with pytest.raises(AppError, match="No image of this index is in a folder “c”"):
        client.predict("a red circle", 4, -1.0, True, "c", api_name="/search_text")


def test_browser_link_to_a_folder_search_fills_the_box_and_more_results_stay_in_it(browser, albums_server):
    page = browser.new_page(locale="en-US")
    page.goto(albums_server + "?q=a+red+circle&k=2&in=b")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 2", timeout=30000)
    assert all(" · b/" in caption for caption in _captions(page))
    assert "2 results for “a red circle” in b." in page.locator("#status").inner_text()
    page.get_by_text("Options: K, minimum score").click()  # folded away by default
    assert page.locator("#within textarea, #within input").first.input_value() == "b"
    page.locator("#more-results").click()
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 4", timeout=30000)
    assert all(" · b/" in caption for caption in _captions(page))
    page.close()


def test_browser_opens_the_clicked_results_original_photo(browser, albums_server, server):
    page = browser.new_page(locale="en-US")
    page.goto(albums_server + "?q=a+red+circle&k=3")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 3", timeout=30000)
    assert not page.locator("#open-photo").is_visible()  # nothing picked yet
    page.locator("#results .thumbnail-item").nth(1).click()
    page.wait_for_selector("#open-photo", state="visible", timeout=30000)
    href = page.locator("#open-photo").evaluate("e => e.closest('a') ? e.closest('a').href : e.href")
    assert re.search(r"/photo/[0-9a-f]+/\d+\.jpg$", href), href
    shown = page.request.get(href)
    assert shown.ok and shown.headers["content-type"] == "image/jpeg"
    original = Image.open(io.BytesIO(shown.body()))
    assert original.size == (320, 240)  # the collection's own size, not the 256-pixel thumbnail
    page.screenshot(path=ARTIFACTS / "open-photo.png", full_page=True)
    page.locator("#more-results").click()  # new results: nothing picked, nothing to open
    page.wait_for_selector("#open-photo", state="hidden", timeout=30000)
    page.close()
    page = browser.new_page(locale="en-US")  # an engine that does not serve originals
    page.goto(server + "?q=anything&k=3")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 3", timeout=30000)
    page.locator("#results .thumbnail-item").nth(1).click()
    page.wait_for_function("!document.querySelector('#more-like-this').disabled", timeout=30000)
    assert not page.locator("#open-photo").is_visible()
    page.close()


def test_browser_a_changed_option_runs_the_last_search_again(browser, albums_server):
    page = browser.new_page(locale="en-US")
    page.goto(albums_server + "?q=a+red+circle&k=2")
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 2", timeout=30000)
    page.get_by_text("Options: K, minimum score").click()
    page.locator("#within textarea, #within input").first.fill("b")
    page.locator("#within textarea, #within input").first.press("Enter")
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('“a red circle” in b.')", timeout=30000
    )
    assert len(_captions(page)) == 2 and all(" · b/" in caption for caption in _captions(page))
    assert "in=b" in page.locator("#share a").get_attribute("href")
    page.locator("#collapse input").uncheck()
    page.wait_for_function("document.querySelector('#share a').href.includes('collapse=0')", timeout=30000)
    page.locator("#top-k input[type=number]").fill("3")
    page.locator("#top-k input[type=number]").press("Tab")  # a slider's box applies when left
    page.wait_for_function("document.querySelectorAll('#results .caption-label').length === 3", timeout=30000)
    assert "k=3" in page.locator("#share a").get_attribute("href")
    page.locator("#more-results").click()  # the search as it is now: K 3, in b, not folded
    page.wait_for_function(
        "/more results?,/i.test(document.querySelector('#status').innerText)", timeout=30000
    )
    assert len(_captions(page)) > 3 and all(" · b/" in caption for caption in _captions(page))
    page.close()
    page = browser.new_page(locale="en-US")  # no search yet: a changed option searches nothing
    page.goto(albums_server)
    page.get_by_text("Options: K, minimum score").click()
    page.locator("#collapse input").uncheck()
    page.wait_for_timeout(1000)
    assert page.locator("#results .caption-label").count() == 0
    assert page.locator("#status").inner_text().strip() == ""
    page.close()


def test_a_description_too_long_for_the_model_says_where_it_stopped_reading(
    built_index, embedder, collection
):
    handlers = Handlers(Engine(Searcher.open(built_index, embedder, max_k=APP_MAX_K)))
    long = "a red circle on a white square " * 20 + "and a blue triangle"
    _, hits, status, _ = handlers.search_text(long, 3, -1.0, False, "", gr.Request())
    assert len(hits) == 3
    assert status == (
        f"3 results for “{long[:79]}…” (too long for the model: it read up to “…square a red circle on a”)."
    )
    spanish = gr.Request(headers={"accept-language": "es"})
    status = handlers.search_combined(
        str(collection / "img_004.png"), long, 0.5, 3, -1.0, False, "", spanish
    )[2]
    assert status.endswith("(demasiado larga para el modelo: leyó hasta «…square a red circle on a»).")
    assert "too long" not in handlers.search_text("a red circle", 3, -1.0, False, "", gr.Request())[2]


def test_a_changed_option_runs_each_kind_of_last_search_again(built_index, embedder, collection):
    handlers = Handlers(Engine(Searcher.open(built_index, embedder, max_k=APP_MAX_K)))
    request = gr.Request()
    assert all(isinstance(out, type(gr.skip())) for out in handlers.again(None, 3, -1.0, True, "", request))
    image = str(collection / "img_004.png")
    searches = {
        "text": {"kind": "text", "query": "a red circle"},
        "image": {"kind": "image", "query": {"image": image, "words": "", "weight": 1.0}},
        "similar": {"kind": "similar", "query": 4},
    }
    found = {kind: handlers.again(last, 3, -1.0, False, "", request)[1] for kind, last in searches.items()}
    assert all(len(hits) == 3 for hits in found.values())
    assert found["text"] == handlers.search_text("a red circle", 3, -1.0, False, "", request)[1]
    assert found["image"][0]["key"] == "img_004.png"
    assert 4 not in [hit["id"] for hit in found["similar"]]
    assert app.with_options(searches["similar"], 3, -1.0, False, "") == {
        "kind": "similar",
        "query": 4,
        "k": 3,
        "min_score": -1.0,
        "collapse": False,
        "within": "",
    }


def test_a_visitors_picture_is_deleted_a_while_after_it_came(
    built_index, batching, collection, tmp_path, monkeypatch
):
    monkeypatch.setattr(config, "UPLOADS_KEPT_S", 1)
    monkeypatch.setattr(config, "UPLOADS_CHECK_S", 1)
    demo, url = _serve(Engine(Searcher.open(built_index, batching, max_k=APP_MAX_K)))
    try:
        picture = tmp_path / "visitor-7f3a.png"
        shutil.copy(collection / "img_004.png", picture)
        hits = Client(url, verbose=False).predict(handle_file(str(picture)), 1, 0.0, api_name="/hits_image")
        assert hits[0]["key"] == "img_004.png"
        kept = list(Path(gr.utils.get_upload_folder()).rglob(picture.name))
        assert kept  # the app has it, for the visitor's next searches...
        deadline = time.monotonic() + 20
        while any(path.exists() for path in kept) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(path.exists() for path in kept)  # ...a while, not for ever
        assert "upload-folders" in [thread.name for thread in threading.enumerate()]  # and their folders
    finally:
        demo.close()


def test_a_search_by_a_picture_the_app_has_deleted_says_to_upload_it_again(built_index, embedder, tmp_path):
    handlers = Handlers(Engine(Searcher.open(built_index, embedder, max_k=APP_MAX_K)))
    gone = str(tmp_path / "gone.png")  # as the app's upload folder had it, an hour ago
    minutes = config.UPLOADS_KEPT_S // 60
    english, spanish = gr.Request(), gr.Request(headers={"accept-language": "es-ES,es;q=0.9"})
    said = (
        f"Your picture is no longer here \\(a picture is deleted {minutes} minutes after it was uploaded\\)"
    )
    with pytest.raises(gr.Error, match=said):
        handlers.search_combined(gone, "", 1.0, 3, -1.0, False, "", english)
    with pytest.raises(gr.Error, match="vuelve a subirla"):
        handlers.search_combined(gone, "", 1.0, 3, -1.0, False, "", spanish)
    asked = {"image": gone, "words": "", "weight": 1.0}
    last = {"kind": "image", "query": asked, "k": 3, "min_score": -1.0, "collapse": False}
    with pytest.raises(gr.Error, match="upload it again"):  # "More results", later
        handlers.more_results(last, [{"id": 0}], english)
    with pytest.raises(gr.Error, match="upload it again"):  # the API
        handlers.hits_image({"path": gone}, 3, 0.0, english)


def test_a_clicked_result_offers_its_original_or_its_page_where_there_is_one(built_index, embedder):
    handlers = Handlers(Engine(Searcher.open(built_index, embedder)))
    results = [
        {"id": 3, "photo": "http://x/photo/t/3.jpg", "link": None},
        {"id": 5, "photo": None, "link": "https://example.org/photo/5"},
        {"id": 7, "photo": None, "link": None},
        {"id": 9, "photo": "http://x/photo/t/9.jpg", "video": "http://x/video/t/9.mp4", "link": None},
    ]
    shown = []
    for index in range(4):
        item_id, like, photo, page = handlers.pick(
            results, gr.SelectData(None, {"index": index, "value": None}), gr.Request()
        )
        assert item_id == results[index]["id"] and like["interactive"]
        shown.append((photo["visible"] and (photo["value"], photo["link"]), page["visible"] and page["link"]))
    assert shown == [
        (("Open the photo ↗", "http://x/photo/t/3.jpg"), False),
        (False, "https://example.org/photo/5"),
        (False, False),
        (("Play the video ↗", "http://x/video/t/9.mp4"), False),  # a video: played
    ]
    spanish = gr.Request(headers={"accept-language": "es-ES,es;q=0.9"})
    _, _, photo, _ = handlers.pick(results, gr.SelectData(None, {"index": 3, "value": None}), spanish)
    assert photo["value"] == "Ver el vídeo ↗"


# --- the Duplicates tab ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copies_index(tmp_path_factory, collection, embedder):
    """The collection in a/ and b/, with copies: img_003 twice more (one in b/), img_007 once."""
    folder = _albums(collection, tmp_path_factory.mktemp("copies"))
    shutil.copy(collection / "img_003.png", folder / "a" / "img_003 copy.png")
    shutil.copy(collection / "img_003.png", folder / "b" / "moved.png")
    shutil.copy(collection / "img_007.png", folder / "b" / "img_007 (1).png")
    out = tmp_path_factory.mktemp("copies-index")
    build_index(FolderSource(folder), out, embedder, progress=False)
    return out


def test_the_duplicates_tab_shows_each_group_once_found(copies_index, embedder, monkeypatch):
    engine = Engine(
        Searcher.open(copies_index, embedder), duplicate_threshold=DUPLICATE_THRESHOLD, originals=True
    )
    handlers = Handlers(engine)
    status, found = handlers.duplicates("", gr.Request())
    assert status.startswith("2 groups of near-duplicates (cosine ≥ 0.999), 5 images, among 15 (")
    first, second = found.split("Group 2 · 2 images")
    assert "Group 1 · 3 images" in first
    assert all(f"{name}</span>" in first for name in ("a/img_003.png", "a/img_003 copy.png", "b/moved.png"))
    assert all(f"{name}</span>" in second for name in ("b/img_007.png", "b/img_007 (1).png"))
    assert found.count("/photo/") == 5 and found.count("/thumb/") == 5  # each opens its original
    assert handlers.duplicates("", gr.Request()) == (status, found)  # kept: found once per build
    assert len(handlers.groups._found) == 1
    status, found = handlers.duplicates("b", gr.Request())
    assert status.startswith("1 group of near-duplicates (cosine ≥ 0.999), 2 images, among 8 (")
    assert "<span>a/" not in found and "b/moved.png" not in found  # its copies are in a/ (not the tag)
    status, found = handlers.duplicates("c", gr.Request())  # says why on its status line
    assert status.startswith("⚠️ No image of this index is in a folder “c”") and found == ""
    monkeypatch.setattr("ui.groups.MOST_IMAGES", 10)
    status, _ = Handlers(engine).duplicates("", gr.Request())  # a new app: nothing kept
    assert "15 images are too many to look for near-duplicates from the page" in status


def test_duplicate_groups_are_written_as_safe_html():
    group = [
        Member(1, "<b>.png", '<script>alert("x")</script>.png', 1.0),
        Member(2, "x.png", "x.png", 0.99, 3),
    ]
    found = groups_html(
        [group] * 101, lambda i: f"/thumb/t/{i}.jpg", lambda i: None, title="Group {}, {}".format, more="more"
    )
    assert "<script>" not in found and "&lt;script&gt;" in found
    assert found.count('<div class="dup-group">') == 100 and found.endswith("<p>more</p>")
    assert "/photo/" not in found and 'class="dup-item">' in found  # no original: nothing to open
    assert "<span>0.9900 ★★★</span>" in found  # its rating: which of a burst to keep


def test_browser_duplicates_tab_lists_groups_of_a_folder_index(browser, copies_index, batching, server):
    searcher = Searcher.open(copies_index, batching, max_k=APP_MAX_K)
    demo, url = _serve(Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD, originals=True))
    try:
        page = browser.new_page(locale="es-ES")
        page.goto(url)
        page.get_by_role("tab", name="Duplicados").click()
        for hidden in ("#results", "#examples"):  # the tab's script runs after the click returns
            page.wait_for_selector(hidden, state="hidden", timeout=10000)
        page.locator("#find-duplicates").click()
        page.wait_for_function(
            "document.querySelectorAll('#duplicates .dup-item').length === 5", timeout=30000
        )
        assert page.locator("#duplicates-status").inner_text().startswith("2 grupos de casi duplicados")
        href = page.locator("#duplicates a.dup-item").first.get_attribute("href")
        assert page.request.get(href).headers["content-type"] == "image/jpeg"
        page.screenshot(path=ARTIFACTS / "duplicates.png", full_page=True)
        page.get_by_role("tab", name="Texto").click()  # back to searching: its results show again
        page.wait_for_selector("#results", state="visible", timeout=10000)
        page.close()
    finally:
        demo.close()
    page = browser.new_page(locale="en-US")  # an index pulled from elsewhere: no such tab
    page.goto(server)
    page.wait_for_selector("#query")
    assert page.get_by_role("tab", name="Duplicates").count() == 0
    page.close()


def test_the_folders_uploaded_pictures_leave_are_removed_once_empty_for_a_while(tmp_path):
    picture = "a" * 64  # Gradio's: a folder a picture, named after its hash
    (tmp_path / picture).mkdir()
    (tmp_path / picture / "cat.png").write_bytes(b"...")
    emptied, just_made, other = tmp_path / ("b" * 64), tmp_path / ("c" * 40), tmp_path / "vibe_edit_history"
    for folder in (emptied, just_made, other):
        folder.mkdir()
    an_hour_ago = time.time() - 3600
    for folder in (tmp_path / picture, emptied, other):
        os.utime(folder, (an_hour_ago, an_hour_ago))
    assert uploads.remove_emptied(tmp_path, 300) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([picture, "c" * 40, "vibe_edit_history"])
    assert uploads.remove_emptied(tmp_path / "none yet", 300) == 0
