"""Hub sync, without the network: pull runs the real huggingface_hub client against a local fake Hub
(HF_ENDPOINT); push is checked at huggingface_hub's create_commit boundary."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from indexing.errors import BuscadorError
from indexing.hub import commit_message, push_index
from indexing.search import Searcher
from indexing.store import SEARCH_FILES

REPO = Path(__file__).resolve().parent.parent


class FakeHub(ThreadingHTTPServer):
    """Serves dataset repos {repo_id: {filename: bytes}} the way the Hub's HTTP API does."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.repos = repos
        self.downloads: list[str] = []
        self.unavailable: set[str] = set()  # files whose downloads fail, as in a network hiccup

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(BaseHTTPRequestHandler):
    server: FakeHub

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head: bool) -> None:
        path = unquote(urlparse(self.path).path)
        parts = path.strip("/").split("/")
        repo = "/".join(parts[2:4]) if parts[0] == "api" else "/".join(parts[1:3])
        files = self.server.repos.get(repo)
        if files is None:
            self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, head)
            return
        commit = _commit(files)
        if parts[0] == "api" and parts[4] == "revision":
            info = {"id": repo, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        elif parts[0] == "api" and parts[4] == "tree":
            tree = [
                {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for f, b in files.items()
            ]
            self._send(200, json.dumps(tree).encode(), {"Content-Type": "application/json"}, head)
        elif parts[0] == "datasets" and parts[3] == "resolve":
            name = "/".join(parts[5:])
            if name not in files or name in self.server.unavailable:
                self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, head)
                return
            body = files[name]
            if not head:
                self.server.downloads.append(name)
            etag = f'"{hashlib.sha1(body).hexdigest()}"'
            self._send(200, body, {"X-Repo-Commit": commit, "ETag": etag}, head)
        else:
            self._send(404, b"", {}, head)

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)


def _commit(files: dict[str, bytes]) -> str:
    """A repository's commit: changes with its files, as a push makes a new one."""
    digest = hashlib.sha1()
    for name, body in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha1(body).digest())
    return digest.hexdigest()


def index_files(index_dir: Path) -> dict[str, bytes]:
    """Every file of an index folder (search files and thumbnail shards) by its name in a repo."""
    return {
        str(path.relative_to(index_dir)): path.read_bytes()
        for path in sorted(index_dir.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@pytest.fixture
def fake_hub(built_index):
    hub = FakeHub({"owner/images-index": index_files(built_index)})
    thread = threading.Thread(target=hub.serve_forever, daemon=True)
    thread.start()
    yield hub
    hub.shutdown()


def _run(args: list[str], hub: FakeHub, home: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = os.environ | {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(home), "HF_HUB_OFFLINE": "0"} | env
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True, check=False
    )


def test_pull_downloads_verifies_and_searches_like_the_original(
    fake_hub, tmp_path, built_index, embedder, collection
):
    home = tmp_path / "hf-home"
    out = tmp_path / "pulled"
    result = _run(["-m", "indexing", "pull", "owner/images-index", "--out", str(out)], fake_hub, home)
    assert result.returncode == 0, result.stderr
    assert sorted(fake_hub.downloads) == sorted(index_files(built_index)) == sorted(index_files(out))
    assert list((home / "hub").glob("datasets--owner--images-index/snapshots/*/manifest.json"))
    original = Searcher.open(built_index, embedder).by_image(collection / "img_006.png", k=5)
    pulled = Searcher.open(out, embedder).by_image(collection / "img_006.png", k=5)
    assert [(h.id, h.score) for h in pulled] == [(h.id, h.score) for h in original]

    again = _run(["-m", "indexing", "pull", "owner/images-index"], fake_hub, home)
    assert again.returncode == 0, again.stderr
    assert len(fake_hub.downloads) == len(index_files(built_index)), "a warm cache downloads nothing again"


def test_pull_refuses_files_that_do_not_match_the_manifest(fake_hub, tmp_path):
    files = fake_hub.repos["owner/images-index"]
    files["catalog.sqlite"] = files["catalog.sqlite"][:-10] + b"0123456789"
    result = _run(["-m", "indexing", "pull", "owner/images-index"], fake_hub, tmp_path / "home")
    assert result.returncode == 2 and "does not match its manifest" in result.stderr


def test_pull_into_a_folder_of_other_files_is_refused_before_downloading(fake_hub, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = _run(
        ["-m", "indexing", "pull", "owner/images-index", "--out", str(tmp_path)], fake_hub, tmp_path / ".h"
    )
    assert result.returncode == 2 and fake_hub.downloads == []
    assert result.stderr.startswith(f"error: {tmp_path} holds other files (notes.txt) and no index")


def test_pull_of_a_missing_repo_is_a_clear_error(fake_hub, tmp_path):
    result = _run(["-m", "indexing", "pull", "owner/nothing-here"], fake_hub, tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr == (
        "error: cannot download the index owner/nothing-here: there is no dataset repository "
        "owner/nothing-here that anyone can read (a private one needs HF_TOKEN set to a token that "
        "can read it)\n"
    )


def test_a_hub_that_cannot_be_reached_is_one_clear_line(fake_hub, built_index, tmp_path):
    closed = socket.socket()  # a port nothing listens on: a network down, a name that does not resolve
    closed.bind(("127.0.0.1", 0))
    nowhere = {"HF_ENDPOINT": f"http://127.0.0.1:{closed.getsockname()[1]}", "HF_TOKEN": "hf_test"}
    try:
        pushed = _run(
            ["-m", "indexing", "push", str(built_index), "--repo", "o/i"], fake_hub, tmp_path, **nowhere
        )
        asked = _run(
            ["-c", "from indexing.hub import latest_commit\nlatest_commit('o/i')"],
            fake_hub,
            tmp_path,
            **nowhere,
        )
    finally:
        closed.close()
    assert pushed.returncode == 2 and pushed.stderr.startswith(
        "error: cannot push to o/i: the Hub is unreachable ("
    )
    assert len(pushed.stderr.splitlines()) == 1  # no traceback
    assert "BuscadorError: cannot ask the Hub about the index o/i: the Hub is unreachable (" in asked.stderr


def test_app_start_up_pulls_the_index_named_by_index_repo(fake_hub, tmp_path, tiny_model):
    script = (
        "from ui.startup import start; e = start(); "
        "print(e.searcher.store.count if e.searcher else 'PROBLEM: ' + e.problem)"
    )
    env = {"CLIP_MODEL": tiny_model, "INDEX_DIR": str(tmp_path / "unused")}
    ok = _run(["-c", script], fake_hub, tmp_path / "home", INDEX_REPO="owner/images-index", **env)
    assert ok.stdout.strip().splitlines()[-1] == "12", ok.stderr
    assert sorted(fake_hub.downloads) == sorted(SEARCH_FILES), "thumbnails are not downloaded at start-up"
    failed = _run(["-c", script], fake_hub, tmp_path / "home", INDEX_REPO="owner/gone", **env)
    assert "PROBLEM: cannot download the index owner/gone" in failed.stdout


def test_a_pulled_index_fetches_a_thumbnail_shard_when_one_of_its_images_is_shown(
    fake_hub, tmp_path, tiny_model, built_index
):
    from indexing.store import IndexStore

    script = (
        "from ui.startup import start; s = start().searcher; "
        "print((s.store.dir / 'thumbs' / '00000.sqlite').exists()); "
        "t = s.thumbnail(3); print(t.hex() if t else 'none')"
    )
    env = {"CLIP_MODEL": tiny_model, "INDEX_REPO": "owner/images-index"}
    result = _run(["-c", script], fake_hub, tmp_path / "home", **env)
    before, thumbnail = result.stdout.strip().splitlines()[-2:]
    assert before == "False", result.stderr  # not there at start-up
    assert bytes.fromhex(thumbnail) == IndexStore(built_index).thumbnail(3)
    assert fake_hub.downloads.count("thumbs/00000.sqlite") == 1

    fake_hub.repos["owner/images-index"]["thumbs/00000.sqlite"] = b"not the shard the manifest names"
    tampered = _run(["-c", script], fake_hub, tmp_path / "other-home", **env)
    assert tampered.stdout.strip().splitlines()[-1] == "none", tampered.stderr  # refused, not shown
    assert "does not match its manifest" in tampered.stderr


def _nothing_there(self, *args, **kwargs):
    raise OSError("no manifest in the repository")  # as the Hub answers for a new one, without trying


def test_push_sends_the_index_files_to_a_dataset_repo_with_a_telling_message(built_index, monkeypatch):
    from huggingface_hub import CommitInfo, HfApi

    sent: dict = {}

    def create_repo(self, repo_id, **kwargs):
        sent["repo"] = (repo_id, kwargs)

    def create_commit(self, repo_id, operations, *, commit_message, repo_type=None, **kwargs):
        sent["commit"] = {
            "repo_id": repo_id,
            "repo_type": repo_type,
            "message": commit_message,
            "files": {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations},
        }
        return CommitInfo(
            commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/abc",
            commit_message=commit_message,
            commit_description="",
            oid="abc",
        )

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr("huggingface_hub.hf_api.is_xet_available", lambda: False, raising=False)
    monkeypatch.setattr(HfApi, "hf_hub_download", _nothing_there)  # no index in the repository yet
    url = push_index(built_index, "owner/images-index", token="hf_test")
    assert url.endswith("/commit/abc")
    assert sent["repo"][0] == "owner/images-index" and sent["repo"][1]["repo_type"] == "dataset"
    assert sent["repo"][1]["private"] is True  # an index of a folder: someone's photos
    commit = sent["commit"]
    assert commit["repo_type"] == "dataset"
    assert commit["files"] == index_files(built_index)
    assert commit["message"].startswith("Index 12 images from folder") and "tiny-clip" in commit["message"]
    push_index(built_index, "owner/images-index", token="hf_test", private=False)
    assert sent["repo"][1]["private"] is False


def test_push_from_the_command_line_says_a_folder_s_index_goes_to_a_private_repository(
    built_index, monkeypatch, capsys
):
    from huggingface_hub import CommitInfo, HfApi

    from indexing.cli import main

    made: list[bool] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: made.append(kwargs["private"]))
    monkeypatch.setattr(
        HfApi,
        "create_commit",
        lambda self, repo_id, operations, *, commit_message, **kwargs: CommitInfo(
            commit_url="https://huggingface.co/datasets/o/i/commit/abc",
            commit_message=commit_message,
            commit_description="",
            oid="abc",
        ),
    )
    monkeypatch.setattr("huggingface_hub.hf_api.is_xet_available", lambda: False, raising=False)
    monkeypatch.setattr(HfApi, "hf_hub_download", _nothing_there)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    assert main(["push", str(built_index), "--repo", "o/i"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"pushed {built_index} to https://huggingface.co/datasets/o/i/commit/abc"
    assert out[1].startswith("(an index of a folder holds its photos' thumbnails, names, dates and towns")
    assert main(["push", str(built_index), "--repo", "o/i", "--public"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 and made == [True, False]


def test_commit_message_names_dataset_model_and_count():
    manifest = {
        "count": 500,
        "model": "openai/clip-vit-base-patch32",
        "source": {"kind": "dataset", "dataset": "user/photos", "split": "train"},
    }
    assert commit_message(manifest) == (
        "Index 500 images from dataset user/photos [train] with openai/clip-vit-base-patch32"
    )


def test_push_refuses_an_unfinished_index(tmp_path):
    with pytest.raises(BuscadorError, match="no index at"):
        push_index(tmp_path, "owner/x", api=object())


def _pull_into(out: Path, files: dict[str, bytes], home: Path) -> None:
    """`python -m indexing pull --out OUT` of a repository holding `files`, on a fake Hub of its own."""
    hub = _serve_hub({"owner/an-index": files})
    try:
        result = _run(["-m", "indexing", "pull", "owner/an-index", "--out", str(out)], hub, home)
        assert result.returncode == 0, result.stderr
    finally:
        hub.shutdown()


def _serve_hub(repos: dict[str, dict[str, bytes]]) -> FakeHub:
    hub = FakeHub(repos)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    return hub


def test_a_build_on_a_pulled_index_embeds_only_the_rows_added_since(tmp_path, collection, tiny_model):
    import datasets

    from indexing.build import build_index
    from indexing.embedder import Embedder
    from indexing.sources import DatasetSource

    paths = sorted(collection.iterdir())
    datasets.Dataset.from_dict({"img": [p.read_bytes() for p in paths[:8]]}).save_to_disk(tmp_path / "v1")
    datasets.Dataset.from_dict({"img": [p.read_bytes() for p in paths]}).save_to_disk(tmp_path / "v2")
    counting = Embedder(tiny_model, precision="fp32")
    embedded: list[int] = []
    model = counting.embed_pixels
    counting.embed_pixels = lambda batch: (embedded.append(len(batch)), model(batch))[1]
    first = tmp_path / "ci-run-1"
    build_index(DatasetSource(str(tmp_path / "v1"), image_column="img"), first, counting, progress=False)
    pulled = (
        tmp_path / "ci-run-2"
    )  # the next CI run starts from an empty folder and pulls what the last one pushed
    _pull_into(pulled, index_files(first), tmp_path / "home")
    embedded.clear()
    v2 = DatasetSource(str(tmp_path / "v2"), image_column="img")  # the dataset grown, saved apart
    summary = build_index(v2, pulled, counting, progress=False, replace=True)
    assert sum(embedded) == 4 and (summary.added, summary.unchanged, summary.count) == (4, 8, 12)


@pytest.fixture()
def commits(monkeypatch) -> list[str]:
    """The messages of the commits pushes make (to nowhere); the repositories are read from a
    FakeHub (_serve_hub)."""
    import huggingface_hub
    from huggingface_hub import CommitInfo, HfApi

    made: list[str] = []

    def create_commit(self, repo_id, operations, *, commit_message, **kwargs):
        made.append(commit_message)
        return CommitInfo(
            commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/abc",
            commit_message=commit_message,
            commit_description="",
            oid="abc",
        )

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    monkeypatch.setattr("huggingface_hub.hf_api.is_xet_available", lambda: False, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return made


def test_push_sends_nothing_when_the_repo_already_holds_the_same_index(
    tmp_path, built_index, collection, embedder, commits
):
    import shutil

    from huggingface_hub import HfApi

    from indexing.build import build_index
    from indexing.sources import FolderSource
    from tests.synthetic import shapes_image

    hub = _serve_hub({"owner/images-index": index_files(built_index)})
    try:
        api = HfApi(endpoint=hub.endpoint, token="hf_test")
        rebuilt = tmp_path / "rebuilt"  # the same collection built again: other file bytes, same content
        build_index(FolderSource(collection), rebuilt, embedder, progress=False)
        assert push_index(rebuilt, "owner/images-index", api=api) is None and commits == []
        grown = tmp_path / "grown"
        shutil.copytree(collection, grown)
        shapes_image(123).save(grown / "new.png")
        build_index(FolderSource(grown), rebuilt, embedder, progress=False, replace=True)  # a copy, grown
        assert (
            push_index(rebuilt, "owner/images-index", api=api)
            == "https://huggingface.co/datasets/owner/images-index/commit/abc"
        )
        assert len(commits) == 1 and commits[0].startswith("Index 13 images")
    finally:
        hub.shutdown()


def test_push_sends_an_index_whose_dates_taken_were_read_since_the_repo_got_it(tmp_path, commits):
    from huggingface_hub import HfApi
    from PIL import Image

    from indexing.build import build_index
    from indexing.sources import FolderSource
    from tests.colour_embedder import ColourEmbedder, colour_image

    folder = tmp_path / "photos"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0132] = "2019:07:14 18:22:05"
    colour_image("red").save(folder / "red.jpg", exif=exif)
    colour_image("blue").save(folder / "blue.jpg")
    build_index(FolderSource(folder), tmp_path / "index", ColourEmbedder(), progress=False)
    files = index_files(tmp_path / "index")
    undated = json.loads(files["manifest.json"])
    del undated["dates_taken"]  # as a version from before dates pushed the same images
    remote = {"owner/same": files, "owner/undated": files | {"manifest.json": json.dumps(undated).encode()}}
    hub = _serve_hub(remote)
    try:
        api = HfApi(endpoint=hub.endpoint, token="hf_test")
        assert push_index(tmp_path / "index", "owner/same", api=api) is None and commits == []
        assert push_index(tmp_path / "index", "owner/undated", api=api).endswith("/commit/abc")
        assert len(commits) == 1
    finally:
        hub.shutdown()


def test_an_index_pushed_by_an_older_version_is_pulled_and_migrated(
    tmp_path, built_index, embedder, collection
):
    import shutil

    from tests.test_store import _as_format_1

    old = tmp_path / "old"
    shutil.copytree(built_index, old)
    _as_format_1(old)  # vectors and thumbnails inside the catalog, no vectors.f16, no thumbs/
    out = tmp_path / "pulled"
    _pull_into(out, index_files(old), tmp_path / "home")
    searcher = Searcher.open(out, embedder)  # migrated to the current format on open
    hit = searcher.by_image(collection / "img_002.png", k=1)[0]
    assert hit.key == "img_002.png" and searcher.thumbnail(hit.id)[:2] == b"\xff\xd8"
