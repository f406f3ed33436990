"""The command line: build, search and info print what a person needs; problems exit 2 with one line."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from indexing.cli import main
from indexing.store import IndexStore


def test_build_search_info(tmp_path, collection, tiny_model, capsys, monkeypatch):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    monkeypatch.setenv("CLIP_PRECISION", "fp32")  # so the image finds itself with score 1.0000
    out = tmp_path / "index"
    assert main(["build", str(collection), "--out", str(out), "--no-progress"]) == 0
    assert "12 images indexed (flat)" in capsys.readouterr().out

    assert main(["search", str(out), "--image", str(collection / "img_004.png"), "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].split()[:3] == ["1", "1.0000", str(collection / "img_004.png")]

    assert main(["search", str(out), "--text", "a blue circle", "-k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [h["rank"] for h in hits] == [1, 2]
    assert {"score", "id", "key", "label", "path", "folded"} <= hits[0].keys()
    assert main(["search", str(out), "--image", str(collection / "img_004.png"), "-k", "2", "--paths"]) == 0
    paths = capsys.readouterr().out.splitlines()
    assert len(paths) == 2 and paths[0] == str(collection / "img_004.png") and Path(paths[1]).is_file()
    assert main(["search", str(out), "--text", "a cat", "--min-score", "1", "--paths"]) == 0
    empty = capsys.readouterr()
    assert empty.out == "" and "no results above the minimum score" in empty.err
    assert main(["search", str(out), "--text", "a blue circle", "--within", "holidays"]) == 2
    assert "error: no image of this index is in a folder 'holidays'" in capsys.readouterr().err

    assert main(["info", str(out)]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert {k: v.strip() for k, v in info.items() if k != "built at"} == {
        "index": f"{out.resolve()} (format 5)",
        "images": "12",
        "model": f"{tiny_model} (512-d)",
        "index type": "flat (inner_product, exact)",
        "precision": "fp32 (image embeddings)",
        "source": f"folder {collection.resolve()}",
        "size": info["size"].strip(),
    }
    assert info["size"].strip().endswith(" MB of thumbnails in 1 shard")
    assert info["built at"].strip().startswith("20")


def test_a_build_says_what_ran_its_model_and_takes_the_runtime_asked(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    monkeypatch.setenv("CLIP_PRECISION", "fp32")
    out = str(tmp_path / "index")
    assert main(["build", str(collection), "--out", out, "--no-progress", "--runtime", "torch"]) == 0
    assert "(threads decoding, model fp32 in torch): decode" in capsys.readouterr().out
    monkeypatch.setenv("CLIP_RUNTIME", "onnx")
    assert main(["build", str(collection), "--out", out, "--no-progress"]) == 2
    assert "error: unknown runtime 'onnx': use auto, torch, openvino" in capsys.readouterr().err


def test_the_description_may_follow_the_index_or_stand_alone(
    built_index, collection, tiny_model, capsys, monkeypatch
):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    assert main(["search", str(built_index), "--text", "a blue circle", "-k", "3", "--json"]) == 0
    asked = [hit["id"] for hit in json.loads(capsys.readouterr().out)]
    assert main(["search", str(built_index), "a", "blue", "circle", "-k", "3", "--json"]) == 0
    assert [hit["id"] for hit in json.loads(capsys.readouterr().out)] == asked
    monkeypatch.setenv("INDEX_DIR", str(built_index))  # the default index
    assert main(["search", "a blue circle", "-k", "3", "--json"]) == 0
    assert [hit["id"] for hit in json.loads(capsys.readouterr().out)] == asked
    assert main(["search", "a", "blue", "circle", "-k", "3", "--json"]) == 0
    assert [hit["id"] for hit in json.loads(capsys.readouterr().out)] == asked
    assert main(["search", str(built_index), "a cat", "--text", "a dog"]) == 2
    assert "error: give the description once: after the index, or with --text" in capsys.readouterr().err
    assert main(["search", "no-such-index", "--text", "a dog"]) == 2  # with --text, a missing index
    assert "error: no index at no-such-index" in capsys.readouterr().err
    assert main(["search", "./no-such-index", "--image", str(collection / "img_004.png")]) == 2  # a path
    assert "error: no index at no-such-index" in capsys.readouterr().err


def test_info_shows_an_approximate_index_s_recall_and_search_settings(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    out = tmp_path / "index"
    assert main(["build", str(collection), "--out", str(out), "--no-progress", "--index-type", "hnsw"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    manifest = json.loads((out / "manifest.json").read_text())
    recall = manifest["recall_at_10"]
    assert info["index type"].strip() == f"hnsw (inner_product, approximate, recall@10 {recall:.3f} measured)"
    assert info["search"].strip() == f"ef_search {manifest['search']['ef_search']}"
    assert "unused" not in info


def test_info_says_how_many_vector_rows_removed_images_left(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    import shutil

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    folder, out = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(collection, folder)
    assert main(["build", str(folder), "--out", str(out), "--no-progress"]) == 0
    for name in ("img_000.png", "img_005.png"):
        (folder / name).unlink()
    assert main(["build", str(folder), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert info["images"].strip() == "10"
    assert info["unused"].strip().startswith("2 vector rows of removed or changed images")


def test_info_says_how_many_removed_images_a_grown_graph_still_holds(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    import shutil

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    folder, out = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(collection, folder)
    build = ["build", str(folder), "--out", str(out), "--no-progress", "--index-type", "hnsw"]
    assert main(build) == 0
    (folder / "img_004.png").unlink()
    assert main(build) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert info["images"].strip() == "11"
    assert info["removed"].strip() == (
        "1 removed image still in the index, left out of every search (built again past 10% of it)"
    )


def test_problems_exit_2_with_a_single_error_line(
    tmp_path, tiny_model, built_index, collection, capsys, monkeypatch
):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    assert main(["search", str(tmp_path / "none"), "--text", "cat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no index at") and err.count("\n") == 1
    assert main(["search", str(collection), "--text", "cat"]) == 2  # the photos, not their index
    assert capsys.readouterr().err == (
        f"error: no index at {collection} (it is a folder of images: index it first, python -m indexing "
        f"build {collection} --out index, and use the index folder instead)\n"
    )
    (tmp_path / "bad.jpg").write_text("not a picture")
    assert main(["search", str(built_index), "--image", str(tmp_path / "bad.jpg")]) == 2
    assert f"error: {tmp_path / 'bad.jpg'}: not an image" in capsys.readouterr().err
    assert main(["build", str(tmp_path / "missing-folder"), "--out", str(tmp_path / "i")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["build", "--out", str(tmp_path / "i")]) == 2
    assert "give a folder of images or --dataset" in capsys.readouterr().err
    assert main(["search", str(built_index), "--text", "cat", "-k", "1001"]) == 2
    assert "K must be a whole number from 1 to 1000" in capsys.readouterr().err


def test_a_search_loads_the_model_when_it_needs_it_and_refuses_another(built_index, other_model, capsys):
    assert main(["search", str(built_index), "--like", "3", "-k", "2", "--model", other_model]) == 0
    listed = capsys.readouterr().out.splitlines()  # by its stored vector: no model loaded, none refused
    assert len(listed) == 2 and not any("(id 3," in line for line in listed)
    assert main(["search", str(built_index), "--text", "cat", "--model", other_model]) == 2
    assert re.search(r"built with model .* not comparable", capsys.readouterr().err)


def test_info_a_listing_and_a_dry_run_load_neither_torch_nor_transformers(built_index, collection):
    """They answer in a quarter of a second, where importing the models' libraries takes four."""
    script = (
        "import sys\n"
        "from indexing.cli import main\n"
        f"codes = [main(['info', {str(built_index)!r}]),\n"
        f"         main(['search', {str(built_index)!r}, '--like', '3', '-k', '2']),\n"
        f"         main(['build', {str(collection)!r}, '--out', {str(built_index)!r},\n"
        "               '--dry-run', '--no-progress'])]\n"
        "print(codes, 'torch' in sys.modules, 'transformers' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.stderr.splitlines()[-1] == "[0, 0, 0] False False", done.stderr


def test_interactive_search_answers_one_description_after_another(
    built_index, collection, tiny_model, capsys, monkeypatch
):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    dropped = shlex.quote(str(collection / "img_007.png"))  # a file dropped on the terminal: its path
    lines = f"a red circle\nbeach taken:summer\n-people\na blue square\n{dropped}\n\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["search", str(built_index), "-i", "-k", "2", "--paths"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 6  # three searches answered, two results each, paths alone
    assert out.splitlines()[4] == str(collection / "img_007.png")  # the image itself first
    assert err.count("search> ") == 6  # asked for each line, the empty one that ends too
    assert "error: 'summer' is not a period" in err and "only says what to leave out" in err
    assert main(["search", str(built_index), "-i", "--text", "a cat"]) == 2
    assert "--interactive reads the descriptions as you type them" in capsys.readouterr().err


def test_duplicates_groups_copies_and_not_distinct_images(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    import io
    import shutil

    from PIL import Image

    from tests.tiny_clip import DUPLICATE_THRESHOLD

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    shutil.copy(folder / "img_001.png", folder / "copy_of_001.png")  # the same bytes
    again = io.BytesIO()
    Image.open(folder / "img_002.png").resize((300, 225)).save(again, "JPEG", quality=85)
    (folder / "img_002_small.jpg").write_bytes(again.getvalue())  # resized and re-encoded
    out = tmp_path / "index"
    assert main(["build", str(folder), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()

    # With the tiny random model distinct images score up to about 0.994 (DUPLICATE_THRESHOLD's note).
    assert main(["duplicates", str(out), "--threshold", str(DUPLICATE_THRESHOLD), "--json"]) == 0
    printed = capsys.readouterr()
    groups = json.loads(printed.out)  # the progress bar goes to stderr, the JSON alone to stdout
    assert "near-duplicates: 100%" in printed.err and "14/14" in printed.err
    assert [sorted(m["key"] for m in g["members"]) for g in groups] == [
        ["copy_of_001.png", "img_001.png"],
        ["img_002.png", "img_002_small.jpg"],
    ]
    assert all(g["size"] == 2 and g["members"][1]["similarity"] >= DUPLICATE_THRESHOLD for g in groups)

    assert main(["duplicates", str(out), "--threshold", str(DUPLICATE_THRESHOLD)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 groups of near-duplicates (cosine ≥ 0.999), 4 images, among 14")

    for bad in ("-0.5", "1.5", "0"):
        assert main(["duplicates", str(out), "--threshold", bad]) == 2
        assert "near-duplicate threshold must be" in capsys.readouterr().err

    (folder / "album").mkdir()  # one folder's near-duplicates alone: a pair in it, none across it
    shutil.copy(folder / "img_003.png", folder / "album" / "a.png")
    shutil.copy(folder / "img_003.png", folder / "album" / "b.png")
    shutil.copy(folder / "img_001.png", folder / "album" / "c.png")
    assert main(["build", str(folder), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    threshold = str(DUPLICATE_THRESHOLD)
    assert main(["duplicates", str(out), "--threshold", threshold, "--within", "album", "--json"]) == 0
    assert [sorted(m["key"] for m in g["members"]) for g in json.loads(capsys.readouterr().out)] == [
        ["album/a.png", "album/b.png"]
    ]
    assert main(["duplicates", str(out), "--threshold", threshold, "--within", "album/"]) == 0
    assert capsys.readouterr().out.startswith(
        "1 group of near-duplicates (cosine ≥ 0.999), 2 images, among 3"
    )
    assert main(["duplicates", str(out), "--threshold", threshold, "--within", "nope"]) == 2
    assert "no image of this index is in a folder 'nope'" in capsys.readouterr().err
    assert main(["info", str(out)]) == 0
    assert "folders:     album (3) (search one alone with --within)" in capsys.readouterr().out


def test_a_full_disk_mid_build_is_one_line_and_the_next_build_finishes(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    import errno

    from indexing.vectors import VectorFile

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    out = tmp_path / "index"
    write = VectorFile.write
    calls = []

    def fills_up(self, ids, vectors):
        calls.append(len(ids))
        if len(calls) > 1:  # the first batch goes in, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        write(self, ids, vectors)

    monkeypatch.setattr(VectorFile, "write", fills_up)
    build = ["build", str(collection), "--out", str(out), "--no-progress", "--batch-size", "4"]
    assert main(build) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: No space left on device ({out / 'vectors.f16'}); what was done so far")
    assert err.count("\n") == 1 and "run the same command again" in err
    monkeypatch.setattr(VectorFile, "write", write)
    assert main(build) == 0
    assert "12 images indexed (flat)" in capsys.readouterr().out


def test_building_into_a_folder_this_user_cannot_write_is_refused_clearly(
    tmp_path, built_index, tiny_model, capsys, monkeypatch
):
    import indexing.store

    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    monkeypatch.setattr(indexing.store.os, "access", lambda path, mode: False)  # as for another user
    assert main(["build", str(tmp_path), "--out", str(built_index), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write to {built_index} (read-only for this user)")
    assert err.count("\n") == 1 and "build into a folder you can write to (--out)" in err


def test_build_watch_indexes_what_comes_into_the_folder_until_ctrl_c(tmp_path, tiny_model, collection):
    folder, staging, out = tmp_path / "photos", tmp_path / "staging", tmp_path / "index"
    folder.mkdir()
    staging.mkdir()
    for i in range(4):
        shutil.copy(collection / f"img_{i:03d}.png", folder)
    command = ["build", str(folder), "--out", str(out), "--watch", "0.2", "--no-progress"]
    watcher = subprocess.Popen(
        [sys.executable, "-m", "indexing", *command],
        cwd=Path(__file__).resolve().parent.parent,
        env=os.environ | {"CLIP_MODEL": tiny_model},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, watcher.kill)
    watchdog.start()
    reports: list[str] = []

    def until_watching() -> None:
        for line in watcher.stdout:
            if line.startswith("watching "):
                return
            if " images indexed " in line:
                reports.append(line)
        pytest.fail(f"the watcher ended: {watcher.stderr.read()[-2000:]}")

    try:
        until_watching()
        assert len(reports) == 1 and reports[0].startswith("4 images indexed")
        for i in (4, 5):  # photos arrive (each whole, as a finished copy does), one goes
            shutil.copy(collection / f"img_{i:03d}.png", staging)
            os.replace(staging / f"img_{i:03d}.png", folder / f"img_{i:03d}.png")
        (folder / "img_000.png").unlink()
        while not reports[-1].startswith("5 images indexed"):
            until_watching()
        later = reports[1:]
        assert sum(int(re.search(r"(\d+) new", r)[1]) for r in later) == 2
        assert sum(int(re.search(r"(\d+) removed", r)[1]) for r in later) == 1

        folder.rename(tmp_path / "away")  # the disk is unplugged: nothing is removed
        for line in watcher.stdout:
            if line.startswith(f"{folder} is not there now: still watching"):
                break
        shutil.copy(collection / "img_006.png", tmp_path / "away")
        (tmp_path / "away").rename(folder)  # and back, with one more photo
        while not reports[-1].startswith("6 images indexed"):
            until_watching()
        assert re.search(r"1 new, 0 changed, 5 unchanged, 0 removed", reports[-1])
        watcher.send_signal(signal.SIGINT)
        rest, _ = watcher.communicate(timeout=30)
    finally:
        watchdog.cancel()
        watcher.kill()
    assert watcher.returncode == 0 and "stopped watching: the index holds what was built" in rest
    store = IndexStore(out)
    assert sorted(item.key for item in store.items(store.catalog.ids().tolist()).values()) == [
        f"img_{i:03d}.png" for i in range(1, 7)
    ]


def test_exclude_is_for_folders(capsys):
    assert main(["build", "--dataset", "x/y", "--exclude", "raw"]) == 2
    assert "--exclude is for folders" in capsys.readouterr().err


def test_watch_is_for_folders(capsys):
    assert main(["build", "--dataset", "x/y", "--watch"]) == 2
    assert main(["build", "folder", "--watch", "0"]) == 2
    assert (
        capsys.readouterr().err.count("--watch takes a number of seconds above 0, and works with a folder")
        == 2
    )


def test_a_dry_run_says_what_a_build_would_do_and_writes_nothing(
    tmp_path, collection, tiny_model, capsys, monkeypatch
):
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    out = tmp_path / "index"
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    assert main(["build", str(folder), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    (folder / "img_002.png").unlink()
    shutil.copy(collection / "img_003.png", folder / "copy.png")
    monkeypatch.setenv("CLIP_MODEL", str(tmp_path / "no-model"))  # a dry run loads no model
    manifest = (out / "manifest.json").read_bytes()
    assert main(["build", str(folder), "--out", str(out), "--dry-run", "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "dry run, nothing written: 1 new, 0 changed, 1 removed, 11 unchanged",
        "new: copy.png",
        "removed: img_002.png",
        "(files that turn out unreadable are found, and skipped, when the build decodes them)",
    ]
    assert (out / "manifest.json").read_bytes() == manifest
    assert main(["build", str(folder), "--out", str(tmp_path / "none"), "--dry-run", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("dry run, nothing written: 12 new, 0 changed, 0 removed")
    assert not (tmp_path / "none").exists()


def test_the_index_folder_may_follow_the_source(tmp_path, collection, built_index, capsys):
    """`build photos my-index` and `build --dataset NAME my-index`, as `search my-index` reads it."""
    assert main(["build", str(collection), str(tmp_path / "a"), "--dry-run", "--no-progress"]) == 0
    assert (
        main(["build", "--dataset", str(collection), str(tmp_path / "b"), "--dry-run", "--no-progress"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out if line.startswith("dry run")] == [
        "dry run, nothing written"
    ] * 2
    assert "12 new" in out[0]
    assert (
        main(["build", "--dataset", str(collection), str(tmp_path / "a"), "--out", str(tmp_path / "c")]) == 2
    )
    assert f"two index folders given, {tmp_path / 'a'} and --out {tmp_path / 'c'}" in capsys.readouterr().err
    # With --out, the positionals are folders to index: one not there is a typing slip
    assert main(["build", str(collection), str(tmp_path / "a"), "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'a'} is not a folder\n"
    assert not (tmp_path / "c").exists()
    # A folder of images taken for the index, and an index taken for a folder of images
    photos = tmp_path / "more photos"
    shutil.copytree(collection, photos)
    assert main(["build", str(collection), str(photos)]) == 2
    assert capsys.readouterr().err == (
        f"error: {photos} is a folder of images, taken for the index: to index it too, name the index "
        f"with --out (build {collection} '{photos}' --out INDEX)\n"
    )
    assert main(["build", str(built_index), "--out", str(tmp_path / "d")]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {built_index} is an index, not a folder of images: give the folders to index\n"
    )


def test_an_image_on_the_web_is_searched_by_its_address(
    built_index, collection, web_collection, tiny_model, capsys, monkeypatch
):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    monkeypatch.setenv("CLIP_PRECISION", "fp32")
    site, _ = web_collection
    assert main(["search", str(built_index), "--image", f"{site}/img_004.png", "-k", "1", "--paths"]) == 0
    assert capsys.readouterr().out == f"{collection / 'img_004.png'}\n"
    assert main(["search", str(built_index), "--image", f"{site}/nope.png"]) == 2
    assert (
        capsys.readouterr().err
        == f"error: {site}/nope.png: could not download it (HTTP 404 File not found)\n"
    )
    assert (
        main(["search", str(built_index), "--image", "http://127.0.0.1:9/img_004.png"]) == 2
    )  # nobody there
    assert (
        capsys.readouterr().err
        == "error: http://127.0.0.1:9/img_004.png: could not download it (Connection refused)\n"
    )


def test_output_to_a_reader_that_left_ends_quietly(built_index):
    """`info index | head -1`: no "error: Broken pipe" when head has gone."""
    command = [sys.executable, "-m", "indexing", "info", str(built_index)]
    info = subprocess.Popen(
        command, cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    info.stdout.close()  # the reader left before a line came
    _, err = info.communicate(timeout=60)
    assert (info.returncode, err) == (141, b"")
