"""Shared fixtures: a tiny CLIP (real tokenizer, random weights) and small generated collections."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.crashing import site_with_the_crash
from tests.synthetic import write_collection
from tests.tiny_clip import SHARED_MODEL, make_tiny_clip

if SHARED_MODEL.is_dir():  # everything the tests need is local: make sure nothing reaches for the Hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _temp_folder_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The code under test (and what it starts) makes its temporary files in a folder of the
    test run's, which pytest removes with its older runs, not in the system's: gradio_client leaves
    an empty folder there for every file it downloads (some 60 a run). Converted models are cached
    there too, not in the user's cache."""
    folder = str(tmp_path_factory.mktemp("tmp"))
    before = tempfile.tempdir, {name: os.environ.get(name) for name in ("TMPDIR", "BUSCADOR_CACHE")}
    tempfile.tempdir, os.environ["TMPDIR"] = folder, folder
    os.environ["BUSCADOR_CACHE"] = str(tmp_path_factory.mktemp("cache"))  # converted models
    yield
    tempfile.tempdir = before[0]
    for name, value in before[1].items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second tiny CLIP with other weights and 256-d output: its vectors do not mix with the first."""
    return str(make_tiny_clip(tmp_path_factory.mktemp("other-clip"), projection_dim=256, seed=1))


@pytest.fixture(scope="session")
def embedder(tiny_model: str):
    from indexing.embedder import Embedder

    # fp32: tests compare vectors from different paths (one text, a batch) to 1e-5.
    return Embedder(tiny_model, precision="fp32")


@pytest.fixture(scope="session")
def multilingual(tmp_path_factory: pytest.TempPathFactory, embedder) -> str:
    """A tiny text model for other languages (tests.tiny_multilingual), aligned to `embedder`'s."""
    from tests.tiny_multilingual import make_tiny_multilingual

    return str(make_tiny_multilingual(tmp_path_factory.mktemp("multilingual"), embedder.model_name))


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 generated images, read-only for tests: copy it before changing it."""
    folder = tmp_path_factory.mktemp("collection")
    write_collection(folder, 12)
    return folder


class _Host(ThreadingHTTPServer):
    request_queue_size = 64  # a build downloads many at once: Python's backlog of 5 would drop some


@pytest.fixture
def web_collection(collection: Path) -> Iterator[tuple[str, list[str]]]:
    """The collection served over HTTP on loopback: its address, and the paths asked for so far."""
    asked: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = _Host(("127.0.0.1", 0), partial(Handler, directory=str(collection)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", asked
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, collection: Path, embedder) -> Path:
    from indexing.build import build_index
    from indexing.sources import FolderSource

    out = tmp_path_factory.mktemp("index")
    build_index(FolderSource(collection), out, embedder, progress=False)
    return out


CHROMIUM = os.environ.get("BUSCADOR_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright; tests that need it are skipped where it is missing
    (failed instead with $BUSCADOR_REQUIRE_BROWSER, as CI sets)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("BUSCADOR_REQUIRE_BROWSER"):
            pytest.fail(f"no browser at {CHROMIUM} (install Debian's chromium, or set BUSCADOR_CHROMIUM)")
        pytest.skip(f"no browser at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    (Path(__file__).resolve().parent / "artifacts").mkdir(exist_ok=True)  # the screenshots
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def crashing_children(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Python processes started during the test (guard and decode processes) crash on
    tests.crashing.CRASHING; this one never loads that decoder. The guard's processes are new
    ones (those started before do not crash), ended after."""
    from indexing import guard

    monkeypatch.setenv("PYTHONPATH", str(site_with_the_crash(tmp_path / "crashing-site")))
    fresh = guard.Guard(2)
    monkeypatch.setattr(guard, "_shared", fresh)
    yield
    fresh.close()


@pytest.fixture
def ghostscript(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A stand-in `gs` (Ghostscript) first on PATH, which Pillow's EPS plug-in finds; it writes down
    each run in the file returned (never there: nothing of ours should run it)."""
    from PIL import EpsImagePlugin

    ran = tmp_path / "ghostscript-ran"
    folder = tmp_path / "ghostscript-bin"
    folder.mkdir()
    (folder / "gs").write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && {{ echo 10.0; exit 0; }}\necho "$@" >> {ran}\n'
    )
    (folder / "gs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # (found again, on this PATH)
    return ran


@pytest.fixture
def decoders_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Native decoders called in this process, not in a guard's (indexing.guard): for a test that
    replaces one (rawpy's reader) with monkeypatch, which reaches no other process."""
    from indexing import guard

    monkeypatch.setattr(guard, "_inside", True)
