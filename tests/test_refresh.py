"""A running app serves a newer build of its index without a restart: a local folder built again,
or a newer commit of the Hub repository it pulled from. A build still being written, or one that
cannot be opened, leaves the served index answering."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from gradio_client import Client, handle_file

import app
from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.sources import FolderSource
from indexing.store import MANIFEST, _hold_build_lock
from tests.test_app import _serve
from tests.test_hub import REPO, FakeHub, _run, index_files
from ui import startup
from ui.refresh import HubWatch
from ui.startup import Engine, index_tag, start


def _photos(collection: Path, folder: Path, names: range) -> Path:
    folder.mkdir(exist_ok=True)
    for i in names:
        shutil.copy(collection / f"img_{i:03d}.png", folder)
    return folder


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _shows_images(page, count: int, timeout: float = 5000) -> bool:
    """Whether `page` shows an index of `count` images (under Options) within `timeout` ms: the
    page is first drawn with the size the app started with, and a load event sets it."""
    page.wait_for_function(
        "text => document.querySelector('#index-status')?.innerText.includes(text)",
        arg=f"🖼️ {count} ·",
        timeout=timeout,
    )
    return True


def _new_page_shows_images(browser, url: str, count: int) -> bool:
    page = browser.new_page()
    try:
        page.goto(url)
        page.locator("#options").click()
        return _shows_images(page, count)
    finally:
        page.close()


def test_the_app_serves_a_build_written_into_its_folder_without_a_restart(
    tmp_path, tiny_model, collection, embedder, monkeypatch, browser
):
    photos, index = _photos(collection, tmp_path / "photos", range(8)), tmp_path / "index"
    build_index(FolderSource(photos), index, embedder, progress=False)
    engine = start(index_dir=index, model=tiny_model, sample_dir=tmp_path / "none")
    assert engine.searcher is not None and engine.refresh() is False  # nothing newer yet
    monkeypatch.setattr(app, "STATUS_SECONDS", 0.5)
    demo, url = _serve(engine)
    open_page = browser.new_page()
    try:
        client = Client(url, verbose=False)
        new_photo = handle_file(str(collection / "img_010.png"))
        before = client.predict(new_photo, 1, -1.0, api_name="/hits_image")[0]
        assert client.predict(api_name="/info")["images"] == 8 and _new_page_shows_images(browser, url, 8)
        open_page.goto(url)
        open_page.locator("#options").click()
        assert _shows_images(open_page, 8)
        assert before["key"] != "img_010.png"  # not indexed yet

        build_index(FolderSource(_photos(collection, photos, range(8, 12))), index, embedder, progress=False)
        lock = _hold_build_lock(index)  # while a build holds the folder, it is not opened
        assert engine.refresh() is False and engine.searcher.store.count == 8
        lock.close()
        assert engine.refresh() is True
        assert engine.searcher.store.count == 12 and app.index_status(engine).startswith("🖼️ 12 ·")

        assert client.predict(api_name="/info")["images"] == 12 and _new_page_shows_images(browser, url, 12)
        # A page opened before the new build shows its size too, without a reload.
        assert _shows_images(open_page, 12)
        after = client.predict(new_photo, 1, -1.0, api_name="/hits_image")[0]
        assert after["key"] == "img_010.png"
        assert (
            after["thumbnail"].split("/")[-2]
            == index_tag(engine.searcher)
            != before["thumbnail"].split("/")[-2]
        )
        assert _status(after["thumbnail"]) == 200
        assert _status(before["thumbnail"]) == 200, "a page answered just before still gets its thumbnails"
        assert engine.refresh() is False  # nothing newer again

        monkeypatch.setattr(startup, "RETIRED_SECONDS", 0.0)
        time.sleep(0.01)
        engine.refresh()
        assert _status(before["thumbnail"]) == 404 and _status(after["thumbnail"]) == 200
    finally:
        open_page.close()
        demo.close()


def test_a_build_that_cannot_be_served_leaves_the_served_index_answering(
    tmp_path, tiny_model, collection, embedder, caplog
):
    photos, index = _photos(collection, tmp_path / "photos", range(6)), tmp_path / "index"
    build_index(FolderSource(photos), index, embedder, progress=False)
    engine = start(index_dir=index, model=tiny_model, sample_dir=tmp_path / "none")
    served = engine.searcher
    manifest = json.loads((index / MANIFEST).read_text())
    (index / MANIFEST).write_text(json.dumps(manifest | {"count": 99}))  # files that do not agree

    with caplog.at_level(logging.WARNING, logger="ui.refresh"):
        assert engine.refresh() is False
        assert engine.refresh() is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, "reported once, not at every look"
    assert (
        "could not be opened, still serving the one before" in warnings[0] and "inconsistent" in warnings[0]
    )
    assert engine.searcher is served
    assert engine.searcher.by_image(collection / "img_004.png", 1)[0].key == "img_004.png"


def test_start_up_with_follow_builds_picks_up_a_new_build_by_itself(
    tmp_path, tiny_model, collection, embedder, monkeypatch
):
    photos, index = _photos(collection, tmp_path / "photos", range(4)), tmp_path / "index"
    build_index(FolderSource(photos), index, embedder, progress=False)
    monkeypatch.setenv("INDEX_CHECK_SECONDS", "0.1")
    engine = start(index_dir=index, model=tiny_model, sample_dir=tmp_path / "none", follow_builds=True)
    try:
        assert engine.searcher.store.count == 4
        build_index(FolderSource(_photos(collection, photos, range(4, 7))), index, embedder, progress=False)
        deadline = time.monotonic() + 20
        while engine.searcher.store.count != 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.searcher.store.count == 7
    finally:
        engine.close()


@pytest.mark.parametrize("value", ["soon", "-5"])
def test_a_bad_check_interval_is_a_clear_message(tmp_path, tiny_model, built_index, monkeypatch, value):
    monkeypatch.setenv("INDEX_CHECK_SECONDS", value)
    engine = start(index_dir=built_index, model=tiny_model, follow_builds=True)
    assert engine.searcher is None
    assert (
        f"INDEX_CHECK_SECONDS must be a number of seconds (0: never look for a newer index), not {value!r}"
        in (engine.problem or "")
    )


_HUB_SCRIPT = """
import os, sys
from pathlib import Path
from ui import startup
startup.RETIRED_SECONDS = 0.0  # a replaced commit is let go at the next look
engine = startup.start()
print(engine.problem, flush=True)
snapshots = Path(os.environ["HF_HOME"]) / "hub" / "datasets--owner--images-index" / "snapshots"
for line in sys.stdin:
    fresh = engine.refresh()
    searcher = engine.searcher
    thumbnail = searcher.thumbnail(int(line)) is not None
    print(fresh, searcher.store.count, thumbnail, engine.problem, len(list(snapshots.iterdir())), flush=True)
"""


def test_the_app_serves_its_hub_repository_once_there_and_each_newer_commit(
    tmp_path, tiny_model, collection, embedder, built_index
):
    small = tmp_path / "small-index"
    build_index(
        FolderSource(_photos(collection, tmp_path / "photos", range(5))), small, embedder, progress=False
    )
    hub = FakeHub({})  # the Space starts before the workflow first pushed its index
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    env = os.environ | {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "0",
        "CLIP_MODEL": tiny_model,
        "INDEX_REPO": "owner/images-index",
    }
    app_process = subprocess.Popen(
        [sys.executable, "-c", _HUB_SCRIPT],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, app_process.kill)  # a hung app fails the test instead of CI
    watchdog.start()
    try:
        assert app_process.stdout.readline().startswith("cannot download the index owner/images-index")

        def ask(item: int) -> str:
            app_process.stdin.write(f"{item}\n")
            app_process.stdin.flush()
            answer = app_process.stdout.readline().strip()
            if not answer:
                app_process.stdin.close()
                pytest.fail(app_process.stderr.read()[-3000:])
            return answer

        hub.repos["owner/images-index"] = index_files(small)  # the first push
        assert ask(0) == "True 5 True None 1"
        assert ask(0) == "False 5 True None 1"  # the same commit: nothing to do
        hub.unavailable = {CATALOG}  # a bigger build pushed, but its download fails ...
        hub.repos["owner/images-index"] = index_files(built_index)
        assert ask(10).startswith("False 5 False None")
        hub.unavailable = set()  # ... and works at the next look, for the same commit
        assert ask(10) == "True 12 True None 2"  # pulled, opened, its thumbnails fetched when shown
        assert ask(10) == "False 12 True None 1", "the replaced commit leaves the Hub cache"
        del hub.repos["owner/images-index"]  # the Hub answers no more: the app keeps serving
        assert ask(10) == "False 12 True None 1"
    finally:
        app_process.stdin.close()
        app_process.wait(timeout=30)
        watchdog.cancel()
        hub.shutdown()
    assert "cannot ask the Hub about the index owner/images-index" in app_process.stderr.read()


def test_an_app_started_before_its_index_was_built_serves_it_once_built(
    tmp_path, tiny_model, collection, embedder, monkeypatch
):
    index = tmp_path / "index"
    monkeypatch.setenv("INDEX_CHECK_SECONDS", "3600")  # the test looks itself
    engine = start(index_dir=index, model=tiny_model, sample_dir=tmp_path / "none", follow_builds=True)
    assert engine.searcher is None and engine.problem == (
        f"no index at {index} (build one first: python -m indexing build FOLDER --out {index}) "
        "(this page will serve the index as soon as there is one it can open)"
    )
    assert engine.refresh() is False and app.index_status(engine) == ""
    build_index(
        FolderSource(_photos(collection, tmp_path / "photos", range(5))), index, embedder, progress=False
    )
    assert engine.refresh() is True
    assert engine.problem is None and app.index_status(engine).startswith("🖼️ 5 ·")
    assert engine.searcher.by_image(collection / "img_003.png", 1)[0].key == "img_003.png"
    engine.close()


def test_an_index_pinned_to_a_commit_never_asks_the_hub_for_a_newer_one():
    pinned = "0123456789abcdef0123456789abcdef01234567"
    watch = HubWatch("owner/images-index", pinned, lambda folder, fetch: pytest.fail("nothing to open"))
    watch.commit = pinned
    assert watch() is None  # no call to the Hub (which these tests cannot reach)


def _build(name: str) -> SimpleNamespace:
    """Stands in for a Searcher of the build in folder `name`, as much as the engine looks at it."""
    manifest = {"files": {CATALOG: {"sha256": name * 16}}}
    return SimpleNamespace(store=SimpleNamespace(dir=Path(name), count=1, manifest=manifest))


def test_each_replaced_build_is_let_go_once_no_page_can_still_need_it(monkeypatch):
    first, second, third = _build("a"), _build("b"), _build("c")
    builds = iter([second, third])
    dropped: list[Path] = []
    engine = Engine(first, newer=lambda: next(builds, None), drop_folder=dropped.append)  # type: ignore[arg-type]

    assert engine.refresh() is True and dropped == []
    assert engine.searcher_for("a" * 16) is first  # the page it answered a moment ago
    assert engine.refresh() is True and dropped == [Path("a")]  # a second swap: the oldest goes now
    assert engine.searcher_for("a" * 16) is None and engine.searcher_for("b" * 16) is second
    monkeypatch.setattr(startup, "RETIRED_SECONDS", 0.0)
    time.sleep(0.01)
    assert engine.refresh() is False and dropped == [Path("a"), Path("b")]
    assert engine.searcher_for("c" * 16) is third and engine.searcher_for("b" * 16) is None


def test_a_restart_leaves_only_the_commit_it_serves_in_a_lasting_cache(
    tmp_path, tiny_model, collection, embedder, built_index
):
    small = tmp_path / "small-index"
    build_index(
        FolderSource(_photos(collection, tmp_path / "photos", range(5))), small, embedder, progress=False
    )
    hub = FakeHub({"owner/images-index": index_files(small)})
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    script = "from ui.startup import start; e = start(); print(e.searcher.store.count if e.searcher else 0)"
    env = {"CLIP_MODEL": tiny_model, "INDEX_REPO": "owner/images-index"}
    snapshots = tmp_path / "home" / "hub" / "datasets--owner--images-index" / "snapshots"
    try:
        first = _run(["-c", script], hub, tmp_path / "home", **env)
        assert first.stdout.split()[-1] == "5", first.stderr
        (served_first,) = snapshots.iterdir()
        hub.repos["owner/images-index"] = index_files(built_index)  # pushed while the app was down
        second = _run(["-c", script], hub, tmp_path / "home", **env)
        served_now = next(p for p in snapshots.iterdir() if p.name != served_first.name)
        assert second.stdout.split()[-1] == "12", second.stderr
        assert [p.name for p in snapshots.iterdir()] == [served_now.name], "the one served before is gone"
    finally:
        hub.shutdown()


@pytest.mark.parametrize(
    "problem", [OSError(28, "No space left on device"), sqlite3.OperationalError("disk I/O error")]
)
def test_a_disk_problem_while_opening_a_newer_build_leaves_the_served_one(problem, caplog):
    served = _build("a")

    def newer():
        raise problem

    engine = Engine(served, newer=newer)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="ui.refresh"):
        assert engine.refresh() is False
    assert engine.searcher is served
    assert "still serving the one before" in caplog.text


def test_a_grown_hnsw_build_is_served_without_the_images_it_removed(
    tmp_path, tiny_model, collection, embedder
):
    from indexing.store import read_manifest

    photos, index = _photos(collection, tmp_path / "photos", range(12)), tmp_path / "index"
    build_index(FolderSource(photos), index, embedder, progress=False, index_type="hnsw")
    engine = start(index_dir=index, model=tiny_model, sample_dir=tmp_path / "none")
    (photos / "img_004.png").unlink()
    build_index(FolderSource(photos), index, embedder, progress=False, index_type="hnsw")
    assert len(read_manifest(index)["ghosts"]) == 1  # grown, not built again
    assert engine.refresh() is True and engine.searcher.store.count == 11
    hits = engine.searcher.by_image(collection / "img_004.png", k=11)
    assert len(hits) == 11 and "img_004.png" not in {hit.key for hit in hits}
    assert app.index_status(engine).startswith("🖼️ 11 ·")
