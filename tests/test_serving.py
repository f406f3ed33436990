"""Serving under load: micro-batched queries, thumbnails by URL, results-only endpoints, a clear
answer when busy, and one log line per search. Everything runs on loopback, bounded in count."""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import shutil
import sqlite3
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from PIL import Image
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import app
from indexing import config
from indexing.batching import BatchingEmbedder, MicroBatcher, RecentTexts
from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.store import read_manifest
from tests.synthetic import shapes_image
from tests.test_app import HIT_KEYS, _serve
from tests.tiny_clip import DUPLICATE_THRESHOLD
from ui.routes import ServingMiddleware, health_route, photo_route
from ui.startup import APP_MAX_K, Engine, index_tag

# --- the micro-batcher --------------------------------------------------------------------------


def test_concurrent_submissions_share_batches_and_each_gets_its_own_row():
    calls: list[int] = []

    def run(items: list[int]) -> np.ndarray:
        calls.append(len(items))
        time.sleep(0.02)  # a forward pass: others queue up meanwhile
        return np.array([[i, i * i] for i in items], np.float32)

    batcher: MicroBatcher[int] = MicroBatcher(run)
    with ThreadPoolExecutor(16) as pool:
        rows = list(pool.map(lambda i: batcher.submit([i])[0], range(64)))
    assert [r.tolist() for r in rows] == [[i, i * i] for i in range(64)]
    assert sum(calls) == 64 and len(calls) < 32, calls  # batched, not one call per submission


def test_a_bad_input_in_a_batch_fails_only_its_own_caller():
    def run(items: list[str]) -> np.ndarray:
        time.sleep(0.01)
        if "bad" in items:
            raise ValueError("cannot embed 'bad'")
        return np.array([[len(i)] for i in items], np.float32)

    batcher: MicroBatcher[str] = MicroBatcher(run, window_s=0.05)
    texts = ["a", "bb", "bad", "dddd", "eeeee"]

    def ask(text: str) -> object:
        try:
            return float(batcher.submit([text])[0][0])
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(ask, texts))
    assert answers == [1.0, 2.0, "cannot embed 'bad'", 4.0, 5.0]


def test_a_full_batcher_says_busy_instead_of_queueing_forever():
    release = threading.Event()

    def run(items: list[int]) -> np.ndarray:
        release.wait(10)
        return np.zeros((len(items), 1))

    batcher: MicroBatcher[int] = MicroBatcher(run, max_batch=1, max_waiting=2)
    with ThreadPoolExecutor(4) as pool:
        waiting = [pool.submit(batcher.submit, [0])]
        time.sleep(0.2)  # 0 is running
        waiting += [pool.submit(batcher.submit, [i]) for i in (1, 2)]
        time.sleep(0.2)  # 1 and 2 are waiting
        with pytest.raises(BuscadorError, match="busy") as refused:
            batcher.submit([99])
        assert refused.value.code == "busy"
        release.set()
        assert all(f.result(5).shape == (1, 1) for f in waiting)
    assert batcher.submit([7]).shape == (1, 1)  # and it recovers


def test_texts_asked_for_again_are_answered_without_the_model():
    asked: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        asked.append(list(texts))
        return np.array([[ord(t[0]), len(t)] for t in texts], np.float32)

    recent = RecentTexts(embed, kept=3)
    assert recent(["ab", "c"]).tolist() == [[97, 2], [99, 1]]
    assert recent(["c", "de", "c", "ab"]).tolist() == [[99, 1], [100, 2], [99, 1], [97, 2]]
    assert asked == [["ab", "c"], ["de"]] and recent.answered == 3  # "de" once, though asked for twice
    recent(["fgh"])  # a fourth text: the one used longest ago ("c") goes
    recent(["c"])
    assert asked[-1] == ["c"] and recent.answered == 3


def test_the_batching_embedder_gives_what_the_model_gives(embedder, collection):
    batching = BatchingEmbedder(embedder)
    texts = ["a red circle", "a dog on the beach", "x " * 300]
    with ThreadPoolExecutor(3) as pool:
        batched = np.stack(list(pool.map(lambda t: batching.embed_texts([t])[0], texts)))
    assert np.allclose(batched, embedder.embed_texts(texts), atol=1e-5)
    runs = batching.texts.batches
    again = batching.embed_texts(texts[::-1])  # asked for again: no run of the model
    assert batching.texts.batches == runs and np.array_equal(again, batched[::-1])
    crops = np.stack([embedder.pixels(embedder.load(p)) for p in sorted(collection.iterdir())[:4]])
    assert np.allclose(batching.embed_pixels(crops), embedder.embed_pixels(crops), atol=1e-5)


# --- the app --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(built_index, embedder):
    searcher = Searcher.open(built_index, BatchingEmbedder(embedder), max_k=APP_MAX_K)
    engine = Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD)
    demo, url = _serve(engine)
    yield url, engine
    demo.close()


def test_results_only_endpoints_are_listed_and_answer_hits_with_thumbnail_urls(served, collection):
    url, _ = served
    client = Client(url, verbose=False)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert endpoints.keys() == {  # and nothing else: the page's own events stay private
        "/search_text",
        "/search_image",
        "/search_similar",
        "/search",
        "/hits_text",
        "/hits_image",
        "/hits_similar",
        "/info",
    }

    hits = client.predict(handle_file(str(collection / "img_003.png")), 4, 0.0, api_name="/hits_image")
    assert [h["rank"] for h in hits] == [1, 2, 3, 4] and hits[0]["key"] == "img_003.png"
    assert hits[0].keys() == HIT_KEYS
    assert hits[0]["photo"] is None  # an engine that does not serve originals (see the photo route)
    with urllib.request.urlopen(hits[0]["thumbnail"]) as answer:
        assert answer.headers["Content-Type"] == "image/jpeg" and answer.read(2) == b"\xff\xd8"
        assert "immutable" in answer.headers["Cache-Control"]

    similar = client.predict(hits[0]["id"], 3, -1.0, api_name="/hits_similar")
    assert len(similar) == 3 and hits[0]["id"] not in [h["id"] for h in similar]
    texts = client.predict("a red circle", 5, -1.0, api_name="/hits_text")
    assert [h["rank"] for h in texts] == [1, 2, 3, 4, 5]
    with pytest.raises(AppError, match=r"K must be a whole number from 1 to 50, not 2\.5"):
        client.predict("a red circle", 2.5, 0.0, api_name="/hits_text")
    with pytest.raises(AppError, match="minimum score must be a number from -1 to 1"):
        client.predict("a red circle", 2, 3.0, api_name="/hits_text")
    with pytest.raises(AppError, match=r"near-duplicate threshold must be a number from 0 \(off\) to 1"):
        client.predict("a red circle", 2, 0.0, 1.5, api_name="/hits_text")
    assert len(client.predict("a red circle", 12, -1.0, 0, api_name="/hits_text")) == 12  # 0: not folded


def test_the_info_endpoint_describes_the_served_index(served, built_index):
    url, _ = served
    info = Client(url, verbose=False).predict(api_name="/info")
    manifest = read_manifest(built_index)
    assert info == {
        "images": 12,
        "model": manifest["model"],
        "index_type": "flat",
        "recall_at_10": 1.0,
        "built_at": manifest["built_at"],
        "source": "folder",  # not the folder's path on the server
        "videos": 0,
        "tags": None,  # nor keywords
        "ratings": None,  # nor ratings
        "captions": 0,  # nor captions
        "dates_taken": None,  # its images say nothing of when they were taken
        "places": None,  # nor of where
    }


def test_concurrent_clients_each_get_their_own_answer(served, collection, embedder, built_index):
    url, _ = served
    reference = Searcher.open(built_index, embedder, max_k=APP_MAX_K)
    names = [f"img_{i:03d}.png" for i in range(12)]
    texts = ["a red circle", "a blue square", "a green field", "two yellow dots"]
    expected_text = {t: [h.id for h in reference.by_text(t, 5)] for t in texts}

    def image_query(name: str) -> str:
        hits = Client(url, verbose=False).predict(
            handle_file(str(collection / name)), 1, 0.0, api_name="/hits_image"
        )
        return hits[0]["key"]

    def text_query(text: str) -> list[int]:
        return [h["id"] for h in Client(url, verbose=False).predict(text, 5, -1.0, api_name="/hits_text")]

    with ThreadPoolExecutor(16) as pool:
        images = pool.map(image_query, names)
        found_texts = pool.map(text_query, texts * 3)
        assert list(images) == names
        assert list(found_texts) == [expected_text[t] for t in texts * 3]


def _get(url: str, raw_path: str) -> int:
    """Status of GET raw_path, sent as is (no client-side '..' clean-up)."""
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.putrequest("GET", raw_path, skip_accept_encoding=True)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_the_thumbnail_route_serves_only_thumbnails_of_the_served_index(served):
    url, _ = served
    hit = Client(url, verbose=False).predict("anything", 1, -1.0, api_name="/hits_text")[0]
    good = urlparse(hit["thumbnail"]).path
    tag = good.split("/")[2]
    assert _get(url, good) == 200
    assert _get(url, "/healthz") == 200  # the app's own routes are reachable beside Gradio's
    for path in [
        f"/thumb/{tag}/99999.jpg",  # unknown id
        f"/thumb/{tag}/{'9' * 30}.jpg",
        f"/thumb/{tag}/-1.jpg",
        f"/thumb/{tag}/1.png",
        f"/thumb/0000000000000000/{hit['id']}.jpg",  # another build
        f"/thumb/{tag}/../../../../etc/passwd",
        f"/thumb/{tag}/..%2F..%2F..%2Fetc%2Fpasswd",
        f"/thumb/{tag}/%2e%2e/%2e%2e/app.py",
        "/thumb/../app.py",
        f"/gradio_api/file=http://x/thumb/{tag}/../../app.py",
        "/gradio_api/file=/etc/passwd",
    ]:
        assert _get(url, path) in (400, 403, 404), path


def test_with_a_password_nothing_is_shown_before_it_is_given(built_index, embedder, monkeypatch):
    import httpx

    monkeypatch.setenv("APP_PASSWORD", "s3cret")
    searcher = Searcher.open(built_index, embedder, max_k=APP_MAX_K)
    engine = Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD)
    engine.originals = True
    demo, url = _serve(engine)
    try:
        tag = index_tag(searcher)
        pictures = [f"{url}thumb/{tag}/3.jpg", f"{url}photo/{tag}/3.jpg"]
        with httpx.Client() as stranger:
            assert [stranger.get(u).status_code for u in pictures] == [401, 401]
            assert stranger.get(f"{url}gradio_api/info").status_code == 401
            assert (
                stranger.post(f"{url}login", data={"username": "x", "password": "guess"}).status_code == 400
            )
            assert [stranger.get(u).status_code for u in pictures] == [401, 401]
        with httpx.Client() as owner:
            assert (
                owner.post(f"{url}login", data={"username": "ana", "password": "s3cret"}).status_code == 200
            )
            answers = [owner.get(u) for u in pictures]
            assert [a.status_code for a in answers] == [200, 200]
            assert answers[0].headers["cache-control"].startswith("private")  # no shared cache keeps it
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        client = Client(url, auth=("ana", "s3cret"), verbose=False)
        gallery, hits, _, _ = client.predict(
            handle_file(str(searcher.original(3))), 1, 0.0, api_name="/search_image"
        )
        assert (
            hits[0]["id"] == 3 and Path(gallery[0]["image"]).read_bytes()[:2] == b"\xff\xd8"
        )  # fetched, signed in
        assert _get(url, "/healthz") == 200  # for a container's health check, without a password
    finally:
        demo.close()


def test_the_photo_route_serves_the_originals_of_a_folder_index_on_this_machine(
    tmp_path, collection, embedder
):
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    shapes_image(99, (3000, 1200)).save(folder / "wide.jpg", quality=90)
    shutil.copy(folder / "img_001.png", folder / "playa niña.png")
    out = tmp_path / "index"
    build_index(FolderSource(folder), out, embedder, progress=False)
    searcher = Searcher.open(out, embedder)
    engine = Engine(searcher, originals=True)
    http = TestClient(Starlette(routes=[photo_route(engine)]))
    ids = {hit.key: hit.id for hit in searcher.by_text("anything", k=14)}
    tag = index_tag(searcher)

    answer = http.get(f"/photo/{tag}/{ids['img_003.png']}.jpg")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.headers["cache-control"] == "private, max-age=3600"
    assert answer.headers["content-disposition"] == "inline; filename*=UTF-8''img_003.jpg"  # to save it
    named = http.get(f"/photo/{tag}/{ids['playa niña.png']}.jpg").headers["content-disposition"]
    assert named == "inline; filename*=UTF-8''playa%20ni%C3%B1a.jpg"
    shown = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"), np.float32)
    original = np.asarray(Image.open(folder / "img_003.png").convert("RGB"), np.float32)
    assert shown.shape == original.shape and np.abs(shown - original).mean() < 3  # JPEG's error only
    wide = Image.open(io.BytesIO(http.get(f"/photo/{tag}/{ids['wide.jpg']}.jpg").content))
    assert wide.size == (config.PHOTO_SIDE, round(config.PHOTO_SIDE * 1200 / 3000))

    (folder / "img_004.png").unlink()  # gone since the build
    (folder / "img_005.png").write_bytes(b"not a picture any more")
    for path, lang, words in [
        (f"/photo/{tag}/{ids['img_004.png']}.jpg", "en", "not available here"),
        (f"/photo/{tag}/{ids['img_004.png']}.jpg", "es", "no está disponible aquí"),
        (f"/photo/{tag}/{ids['img_005.png']}.jpg", "en", "not an image"),  # changed since the build
        (f"/photo/{tag}/99999.jpg", "en", "not available here"),
        (f"/photo/{tag}/{'9' * 30}.jpg", "en", "not available here"),  # more than an id can be
        (f"/photo/{tag}/{chr(0x663)}.jpg", "en", "not available here"),  # an Arabic-Indic 3: no id
        (f"/photo/0000000000000000/{ids['img_003.png']}.jpg", "en", "not available here"),  # another build
        (f"/photo/{tag}/{ids['img_003.png']}.png", "en", "not available here"),
    ]:
        answer = http.get(path, headers={"Accept-Language": lang})
        assert answer.status_code == 404 and words in answer.text, (path, answer.text)

    with sqlite3.connect(out / CATALOG) as db:  # a catalog that names a file outside its folder
        db.execute("UPDATE items SET key = '../outside.png' WHERE id = ?", (ids["img_003.png"],))
    (tmp_path / "outside.png").write_bytes((folder / "img_006.png").read_bytes())
    assert searcher.original(ids["img_003.png"]) is None
    assert http.get(f"/photo/{tag}/{ids['img_003.png']}.jpg").status_code == 404

    (folder / "img_006.png").rename(tmp_path / "elsewhere.png")  # a link made since leads out
    (folder / "img_006.png").symlink_to(tmp_path / "elsewhere.png")
    assert http.get(f"/photo/{tag}/{ids['img_006.png']}.jpg").status_code == 404
    assert http.get(f"/photo/{tag}/{ids['img_007.png']}.jpg").status_code == 200
    engine.originals = False  # a pulled index: its catalog names files on another machine
    assert http.get(f"/photo/{tag}/{ids['img_007.png']}.jpg").status_code == 404


def test_the_health_check_says_whether_the_app_can_search(built_index, embedder):
    waiting = Engine(None, "no index at ./index (build one first)")
    http = TestClient(Starlette(routes=[health_route(waiting)]))
    answer = http.get("/healthz")
    assert answer.status_code == 503 and answer.json() == {"ready": False, "problem": waiting.problem}
    waiting.searcher = Searcher.open(built_index, embedder)  # the index came in (ui.refresh)
    answer = http.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"ready": True, "images": 12, "build": index_tag(waiting.searcher)}


def test_a_full_queue_says_busy_in_the_visitors_language_and_recovers(built_index, embedder, monkeypatch):
    class Slow:
        """The tiny CLIP, 0.4 s a text query: a burst fills the queue."""

        def __init__(self) -> None:
            self.model_name, self.dim, self.device = embedder.model_name, embedder.dim, "cpu"

        def embed_texts(self, texts):
            time.sleep(0.4)
            return embedder.embed_texts(texts)

    monkeypatch.setattr(app, "CONCURRENT_SEARCHES", 1)
    monkeypatch.setattr(app, "QUEUE_SIZE", 1)
    demo, url = _serve(Engine(Searcher.open(built_index, Slow(), max_k=APP_MAX_K)))
    try:

        def call(lang: str) -> tuple[int, str]:
            body = json.dumps({"data": ["a cat", 2, 0.0, None, ""]}).encode()
            request = urllib.request.Request(
                url + "gradio_api/call/hits_text",
                data=body,
                headers={"Content-Type": "application/json", "Accept-Language": lang},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    event = json.loads(answer.read())["event_id"]
                with urllib.request.urlopen(f"{url}gradio_api/call/hits_text/{event}", timeout=30) as done:
                    return 200, done.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())["detail"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, ["es-ES", "en-US"] * 4))
        busy = [(code, text) for code, text in answers if code == 503]
        assert busy and len(busy) < len(answers)
        assert all(
            text
            in (
                "Many people are searching right now: try again in a moment.",
                "Ahora mismo hay mucha gente buscando: inténtalo de nuevo en un momento.",
            )
            for _, text in busy
        )
        assert any("Ahora mismo" in text for _, text in busy) or all("Many" in t for _, t in busy)
        code, text = call("en-US")  # the burst is over
        assert code == 200 and "event: complete" in text
    finally:
        demo.close()


def test_the_busy_wording_replaces_only_503_answers_of_the_queue():
    def full(request):
        return JSONResponse({"detail": "Queue is full. Max size is 1 and size is 1."}, status_code=503)

    def fine(request):
        return JSONResponse({"event_id": "abc"})

    inner = Starlette(routes=[Route("/gradio_api/queue/join", full, methods=["POST"]), Route("/x", fine)])
    client = TestClient(ServingMiddleware(inner))
    answer = client.post("/gradio_api/queue/join", headers={"Accept-Language": "es"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
    assert answer.json() == {
        "detail": "Ahora mismo hay mucha gente buscando: inténtalo de nuevo en un momento."
    }
    assert client.get("/x").json() == {"event_id": "abc"}


def test_each_search_logs_one_line_with_its_stages(served, caplog):
    url, _ = served
    with caplog.at_level(logging.INFO, logger="buscador.search"):
        Client(url, verbose=False).predict("a cat", 3, -1.0, api_name="/hits_text")
    lines = [r.getMessage() for r in caplog.records if r.name == "buscador.search"]
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"search text k=3 hits=3 text_encoder=clip embed=\d+\.\dms search=\d+\.\dms answer=\d+\.\dms",
        lines[0],
    )


def test_the_page_folds_a_copy_into_its_original_unless_told_not_to(tmp_path, collection, embedder):
    import shutil

    from indexing.build import build_index
    from indexing.sources import FolderSource

    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    shutil.copy(folder / "img_001.png", folder / "zz_copy_of_001.png")
    build_index(FolderSource(folder), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder, max_k=APP_MAX_K)
    demo, url = _serve(Engine(searcher, duplicate_threshold=DUPLICATE_THRESHOLD))
    try:
        photo = handle_file(str(folder / "img_001.png"))
        gallery, hits, _, _ = Client(url, verbose=False).predict(
            photo, 3, 0.0, True, api_name="/search_image"
        )
        ids = {i.key: i.id for i in searcher.store.items(searcher.store.catalog.ids()).values()}
        pair = {ids["img_001.png"], ids["zz_copy_of_001.png"]}  # the same vector: either may lead
        assert {hits[0]["id"], *hits[0]["folded"]} == pair and len(hits[0]["folded"]) == 1
        assert gallery[0]["caption"] == f"#1 · 1.0000 · {hits[0]['key']} · +1 similar" and len(hits) == 3
        spanish = Client(url, verbose=False, headers={"Accept-Language": "es"})
        gallery, _, _, _ = spanish.predict(photo, 3, 0.0, True, api_name="/search_image")
        assert gallery[0]["caption"].endswith(" · +1 parecida")  # one, in the singular
        _, hits, _, _ = Client(url, verbose=False).predict(photo, 3, 0.0, False, api_name="/search_image")
        assert {h["key"] for h in hits[:2]} == {"img_001.png", "zz_copy_of_001.png"}
        assert all(h["folded"] == [] for h in hits)
        _, _, _, link = Client(url, verbose=False).predict("a cat", 3, -1.0, False, api_name="/search_text")
        assert "collapse=0" in link
    finally:
        demo.close()


def test_the_general_search_endpoint_combines_and_pages(served, collection):
    url, _ = served
    client = Client(url, verbose=False)
    assert "/search" in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    photo = handle_file(str(collection / "img_007.png"))
    hits = client.predict(None, photo, "", 0.5, 3, 0, -1.0, api_name="/search")
    assert hits[0]["key"] == "img_007.png" and hits[0].keys() == HIT_KEYS
    both = client.predict("a red circle", photo, "", 0.9, 1, 0, -1.0, api_name="/search")
    assert both[0]["key"] == "img_007.png"  # mostly the image
    page1 = client.predict("a red circle", None, "blue", 0.5, 4, 0, -1.0, api_name="/search")
    page2 = client.predict("a red circle", None, "blue", 0.5, 4, 4, -1.0, api_name="/search")
    assert [h["rank"] for h in page1 + page2] == list(range(1, 9))
    assert {h["id"] for h in page1}.isdisjoint(h["id"] for h in page2)
    spanish = Client(url, verbose=False, headers={"Accept-Language": "es"})
    with pytest.raises(AppError, match="La consulta solo dice qué dejar fuera"):
        spanish.predict("-people", None, "", 0.5, 3, 0, 0.0, api_name="/search")
    with pytest.raises(AppError, match="image weight must be a number from 0"):
        client.predict("a cat", photo, "", 2.0, 3, 0, 0.0, api_name="/search")
