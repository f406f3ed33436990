"""Building and searching: known answers, incremental re-builds, resume after a kill, bad files."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from PIL import Image, features

from indexing import ann
from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.changes import plan_build
from indexing.errors import BuscadorError
from indexing.images import HEIF
from indexing.search import Searcher
from indexing.sources import DatasetSource, FolderSource, source_text
from indexing.store import INDEX, VECTORS, IndexStore, read_manifest
from indexing.vectors import VectorFile
from tests.isolation import output_without
from tests.synthetic import shapes_image, write_collection

REPO = Path(__file__).resolve().parent.parent
# Files a test cannot make here: an iPhone photo (a HEIC of 640×480 held upright, its `irot` turning
# it, with a 320×240 thumbnail; three bands, yellow, blue and red, from its top once turned; taken
# 2021:08:14 19:30:00, keyword "Ana"), written by pillow-heif (libheif and x265) elsewhere.
DATA = Path(__file__).resolve().parent / "data"


def _state(index_dir: Path) -> dict[str, tuple[int, np.ndarray]]:
    """key → (id, vector) of a finished index, read from its catalog and vector file."""
    db = sqlite3.connect(index_dir / CATALOG)
    rows = db.execute("SELECT key, id FROM items").fetchall()
    db.close()
    vectors = VectorFile(index_dir / VECTORS, 512)
    return {k: (i, vectors.read([i])[0]) for k, i in rows}


def test_image_search_finds_the_image_and_a_resized_reencoded_copy(built_index, embedder, collection):
    searcher = Searcher.open(built_index, embedder)
    original = collection / "img_007.png"
    top = searcher.by_image(original, k=3)
    assert top[0].key == "img_007.png" and top[0].score > 0.999
    assert [h.rank for h in top] == [1, 2, 3] and top[0].score >= top[1].score >= top[2].score
    copy = io.BytesIO()
    Image.open(original).resize((160, 120)).save(copy, "JPEG", quality=70)
    again = searcher.by_image(copy.getvalue(), k=1)
    assert again[0].key == "img_007.png" and again[0].path == original


def test_every_image_of_the_collection_is_its_own_top_1(built_index, embedder, collection):
    searcher = Searcher.open(built_index, embedder)
    for path in sorted(collection.iterdir()):
        assert searcher.by_image(path, k=1)[0].key == path.name


def test_text_search_scores_are_the_cosine_with_the_text_vector(built_index, embedder):
    searcher = Searcher.open(built_index, embedder)
    hits = searcher.by_text("a red square", k=5)
    store = searcher.store
    q = embedder.embed_texts(["a red square"])[0]
    expected = sorted((float(store.vector(i) @ q) for i in store.catalog.ids()), reverse=True)[:5]
    assert np.allclose([h.score for h in hits], expected, atol=1e-5)


def test_more_like_this_leaves_the_image_itself_out(built_index, embedder):
    searcher = Searcher.open(built_index, embedder)
    hits = searcher.by_id(7, k=4)
    assert len(hits) == 4 and 7 not in [h.id for h in hits]
    assert hits[0].score >= hits[-1].score


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.by_text("   "), "empty"),
        (lambda s: s.by_text("cat", k=0), "from 1 to"),
        (lambda s: s.by_text("cat", k=1001), "from 1 to 1000"),
        (lambda s: s.by_text("cat", k=1.5), r"K must be a whole number from 1 to 1000, not 1\.5"),
        (lambda s: s.by_text("cat", k="3"), "K must be a whole number"),
        (lambda s: s.by_text("cat", k=True), "K must be a whole number"),
        (lambda s: s.by_image(None), "no image"),
        (lambda s: s.by_image(b"not an image"), "not an image"),
        (lambda s: s.by_id(10_000), "no image with id"),
        (lambda s: s.by_id(1.5), r"ID must be a whole number .* not 1\.5"),
        (lambda s: s.by_id(-2), "ID must be a whole number"),
    ],
    ids=[
        "blank-text",
        "k-zero",
        "k-too-big",
        "k-fraction",
        "k-string",
        "k-bool",
        "no-image",
        "bad-image",
        "unknown-id",
        "id-fraction",
        "id-negative",
    ],
)
def test_bad_queries_get_clear_errors(built_index, embedder, call, message):
    with pytest.raises(BuscadorError, match=message):
        call(Searcher.open(built_index, embedder))


def test_incremental_rebuild_changes_exactly_the_right_rows(tmp_path, collection, embedder):
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    out = tmp_path / "index"
    build_index(FolderSource(folder), out, embedder, progress=False)
    before = _state(out)

    (folder / "img_002.png").unlink()
    shapes_image(99).save(folder / "img_005.png")  # same name, new content
    os.utime(folder / "img_005.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    write_collection(folder / "new", 2, start=50)
    plan = plan_build(FolderSource(folder), out, progress=False)  # what it would do, first
    assert (plan.new, plan.changed, plan.removed, plan.unchanged) == (
        ["new/img_050.png", "new/img_051.png"],
        ["img_005.png"],
        ["img_002.png"],
        10,
    )
    assert _state(out).keys() == before.keys()  # nothing written
    summary = build_index(FolderSource(folder), out, embedder, progress=False)
    after = _state(out)

    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (2, 1, 1, 10)
    assert set(before) - set(after) == {"img_002.png"}
    assert set(after) - set(before) == {"new/img_050.png", "new/img_051.png"}
    for key in set(before) & set(after) - {"img_005.png"}:
        assert before[key][0] == after[key][0], "unchanged images keep their ids"
        assert np.array_equal(before[key][1], after[key][1])
    # New content under an old name is a new image (a grown HNSW index leaves the old id out).
    assert after["img_005.png"][0] == 12
    assert not np.array_equal(before["img_005.png"][1], after["img_005.png"][1])
    assert {after[k][0] for k in ("new/img_050.png", "new/img_051.png")} == {13, 14}
    assert IndexStore(out).count == 13
    assert Searcher.open(out, embedder).by_image(folder / "img_005.png", k=1)[0].key == "img_005.png"


def test_a_build_killed_with_sigkill_resumes_to_what_a_clean_build_gives(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(60):  # large PNGs: slow enough to decode that the kill lands mid-way
        shapes_image(seed, (1200, 900)).save(folder / f"{seed:03d}.png")
    env = os.environ | {"CLIP_MODEL": tiny_model}
    cmd = [sys.executable, "-m", "indexing", "build", str(folder), "--batch-size", "2", "--no-progress"]

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    done_when_killed = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            db = sqlite3.connect(f"file:{killed / CATALOG}?mode=ro", uri=True, timeout=0.05)
            done_when_killed = db.execute("SELECT count(*) FROM items").fetchone()[0]
            db.close()
        except sqlite3.Error:
            pass
        if done_when_killed >= 10:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
    assert 10 <= done_when_killed < 60
    assert not (killed / INDEX).exists()
    with pytest.raises(BuscadorError, match="interrupted"):
        read_manifest(killed)

    subprocess.run([*cmd, "--out", str(killed)], cwd=REPO, env=env, check=True, capture_output=True)
    clean = tmp_path / "clean"
    subprocess.run([*cmd, "--out", str(clean)], cwd=REPO, env=env, check=True, capture_output=True)

    resumed, fresh = _state(killed), _state(clean)
    assert len(resumed) == 60 and resumed.keys() == fresh.keys()
    for key, (item_id, vector) in fresh.items():
        assert resumed[key][0] == item_id
        # Batches form in the order decoding finishes, and bf16 results depend a little on a batch's
        # other rows: the same image, not the same bits.
        assert float(resumed[key][1] @ vector) > 0.999
    a, b = faiss.read_index(str(killed / INDEX)), faiss.read_index(str(clean / INDEX))
    assert a.ntotal == b.ntotal == 60
    assert np.array_equal(np.sort(faiss.vector_to_array(a.id_map)), np.arange(60))


def test_a_vector_file_cut_short_from_outside_is_mended_by_the_next_build(tmp_path, collection, embedder):
    index = tmp_path / "index"
    build_index(FolderSource(collection), index, embedder, progress=False)
    vectors = index / VECTORS
    vectors.write_bytes(vectors.read_bytes()[: 5 * 512 * 2])  # an rsync stopped after 5 rows
    warnings: list[str] = []
    summary = build_index(FolderSource(collection), index, embedder, progress=False, warn=warnings.append)
    assert warnings == [
        "7 images had no vector in vectors.f16 (the file was cut short: a copy or sync stopped halfway?): "
        "embedding them again"
    ]
    assert (summary.count, summary.added, summary.unchanged) == (12, 7, 5)
    searcher = Searcher.open(index, embedder)
    for name in ("img_002.png", "img_009.png"):  # one kept, one embedded again
        hit = searcher.by_image(collection / name, k=1)[0]
        assert hit.key == name and hit.score > 0.999


def test_a_thumbnail_shard_damaged_from_outside_is_mended_by_the_next_build(tmp_path, collection, embedder):
    folder, index, shard = (
        tmp_path / "photos",
        tmp_path / "index",
        tmp_path / "index" / "thumbs" / "00000.sqlite",
    )
    shutil.copytree(collection, folder)
    build_index(FolderSource(folder), index, embedder, progress=False)
    shard.write_bytes(shard.read_bytes()[: len(shard.read_bytes()) // 2])  # a copy stopped halfway
    warnings: list[str] = []
    summary = build_index(FolderSource(folder), index, embedder, progress=False, warn=warnings.append)
    assert warnings == [
        "thumbs/00000.sqlite is gone or damaged (a copy or sync stopped halfway?): "
        "embedding its 12 images again"
    ]
    assert (summary.count, summary.added) == (12, 12)
    searcher = Searcher.open(index, embedder)
    assert all(searcher.thumbnail(hit.id)[:2] == b"\xff\xd8" for hit in searcher.by_text("a shape", k=12))
    # Damaged where its size stays: a build that writes there says what to do, which mends it.
    data = bytearray(shard.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)
    shard.write_bytes(bytes(data))
    shapes_image(99).save(folder / "new.png")
    with pytest.raises(BuscadorError, match=r"00000.sqlite is damaged \(.*\): delete it and build again"):
        build_index(FolderSource(folder), index, embedder, progress=False)
    shard.unlink()
    assert build_index(FolderSource(folder), index, embedder, progress=False).count == 13
    searcher = Searcher.open(index, embedder)
    assert all(searcher.thumbnail(hit.id)[:2] == b"\xff\xd8" for hit in searcher.by_text("a shape", k=13))


def test_bad_files_are_skipped_reported_and_the_rest_indexed(tmp_path, collection, embedder):
    folder = tmp_path / "mixed"
    shutil.copytree(collection, folder)
    (folder / "corrupt.jpg").write_bytes(os.urandom(2000))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    good = io.BytesIO()
    shapes_image(3).save(good, "JPEG")
    (folder / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    (folder / "readme.txt").write_text("ignored: not an image extension")
    warnings: list[str] = []
    summary = build_index(
        FolderSource(folder), tmp_path / "index", embedder, progress=False, warn=warnings.append
    )
    assert sorted(name for name, _ in summary.skipped) == [
        "corrupt.jpg",
        "empty.png",
        "notes.jpg",
        "truncated.jpg",
    ]
    assert len(warnings) == 4 and all(w.startswith("skipped ") for w in warnings)
    assert summary.count == 12
    assert "4 skipped" in summary.report()


def test_hidden_files_and_symlinks_leaving_the_root_are_skipped(tmp_path, collection):
    folder = tmp_path / "root"
    write_collection(folder, 2)
    write_collection(folder / ".hidden", 1)
    (folder / ".dot.png").write_bytes((folder / "img_000.png").read_bytes())
    (folder / "outside").symlink_to(collection)
    (folder / "outside.png").symlink_to(collection / "img_005.png")
    (folder / "inside.png").symlink_to(folder / "img_000.png")
    (folder / "loop").symlink_to(folder)
    keys = [item.key for item in FolderSource(folder).items()]
    assert keys == ["img_000.png", "img_001.png", "inside.png"]


def test_nas_housekeeping_folders_and_excluded_patterns_are_left_out(tmp_path, collection, embedder):
    folder = tmp_path / "root"
    write_collection(folder, 2)
    write_collection(folder / "@eaDir" / "img_000.png", 1)  # a Synology NAS's thumbnails of it
    write_collection(folder / "$RECYCLE.BIN", 1)
    write_collection(folder / "Exports", 1)
    write_collection(folder / "raw", 2)
    (folder / "raw" / "keep.jpg").write_bytes(b"")
    assert [item.key for item in FolderSource(folder).items()] == [
        "Exports/img_000.png",
        "img_000.png",
        "img_001.png",
        "raw/img_000.png",
        "raw/img_001.png",
        "raw/keep.jpg",
    ]
    source = FolderSource(folder, exclude=["Exports", "raw/*.png"])
    assert [item.key for item in source.items()] == ["img_000.png", "img_001.png", "raw/keep.jpg"]
    assert source.describe()["exclude"] == ["Exports", "raw/*.png"]
    assert source_text(source.describe()) == f"folder {folder} (leaving out Exports, raw/*.png)"

    out = tmp_path / "index"
    build_index(FolderSource(folder), out, embedder, progress=False)
    summary = build_index(FolderSource(folder, exclude=["Exports"]), out, embedder, progress=False)
    assert summary.removed == 1 and IndexStore(out).count == 4  # an excluded folder's images go


def test_an_index_from_another_model_is_refused(built_index, other_model, tmp_path, collection):
    from indexing.embedder import Embedder

    other = Embedder(other_model)
    with pytest.raises(BuscadorError, match=r"built with model .* not comparable"):
        Searcher.open(built_index, other)
    with pytest.raises(BuscadorError, match="holds an index built with model"):
        build_index(FolderSource(collection), built_index, other, progress=False)


def test_a_build_of_another_folder_into_an_index_is_refused_unless_it_replaces_it(
    tmp_path, collection, embedder
):
    moved = tmp_path / "moved"
    shutil.copytree(collection, moved)
    (moved / "img_005.png").rename(moved / "five.png")
    out = tmp_path / "index"
    build_index(FolderSource(collection), out, embedder, progress=False)
    refusal = (
        rf"{out} is the index of folder {collection.resolve()} \(12 images\); a build of folder "
        rf"{moved.resolve()} into it would remove them\. Build into another folder .* or add --replace"
    )
    with pytest.raises(BuscadorError, match=refusal):
        build_index(FolderSource(moved), out, embedder, progress=False)
    with pytest.raises(BuscadorError, match=refusal):
        plan_build(FolderSource(moved), out, progress=False)
    # An index built before its catalog recorded its folder: the manifest says which.
    db = sqlite3.connect(out / CATALOG)
    with db:
        db.execute("DELETE FROM meta WHERE name = 'source'")
    db.close()
    with pytest.raises(BuscadorError, match=refusal):
        build_index(FolderSource(moved), out, embedder, progress=False)
    assert IndexStore(out).count == 12
    # A --replace whose source cannot be opened (a misspelt dataset) leaves the index the folder's.
    with pytest.raises(BuscadorError, match="cannot load dataset"):
        build_index(
            DatasetSource(str(tmp_path / "no-such-dataset")), out, embedder, progress=False, replace=True
        )
    # The same folder with other options is the same index; --replace makes it the other folder's.
    assert (
        build_index(FolderSource(collection, exclude=["img_000.png"]), out, embedder, progress=False).removed
        == 1
    )
    replaced = build_index(FolderSource(moved), out, embedder, progress=False, replace=True)
    counts = (replaced.added, replaced.moved, replaced.unchanged, replaced.removed, replaced.count)
    assert counts == (1, 1, 10, 0, 12)  # img_000 embedded again (left out above), img_005 renamed five.png
    assert read_manifest(out)["source"]["root"] == str(moved.resolve())
    build_index(FolderSource(moved), out, embedder, progress=False)  # now its own


def test_an_index_is_not_written_among_other_files(tmp_path, collection, embedder):
    """`--out ~/Documents`, or the photos' own folder: refused; an empty folder, or one holding an
    index or only hidden files, is fine."""
    for folder in (collection, tmp_path / "docs"):
        if not folder.exists():
            folder.mkdir()
            for name in ("a.txt", "b.pdf", "c.odt", "d.md"):
                (folder / name).write_text("mine")
        before = sorted(folder.iterdir())
        with pytest.raises(
            BuscadorError, match=rf"{folder} holds other files \(.* and no index: give the index"
        ):
            build_index(FolderSource(collection), folder, embedder, progress=False)
        with pytest.raises(BuscadorError, match=rf"{folder} holds other files"):
            plan_build(FolderSource(collection), folder, progress=False)  # a dry run says it too
        assert sorted(folder.iterdir()) == before
    with pytest.raises(BuscadorError, match=r"\(a\.txt, b\.pdf, c\.odt and 1 more\)"):
        build_index(FolderSource(collection), tmp_path / "docs", embedder, progress=False)
    (tmp_path / "mac").mkdir()
    (tmp_path / "mac" / ".DS_Store").write_bytes(b"")
    assert build_index(FolderSource(collection), tmp_path / "mac", embedder, progress=False).count == 12


def test_manifest_records_what_the_index_is(built_index, embedder, collection):
    manifest = read_manifest(built_index)
    assert manifest["model"] == embedder.model_name and manifest["embedding_dim"] == 512
    assert manifest["count"] == 12 and manifest["index_type"] == "flat"
    assert manifest["source"] == {"kind": "folder", "root": str(collection.resolve())}
    assert set(manifest["files"]) == {INDEX, CATALOG, VECTORS}
    assert set(manifest["thumbnails"]) == {"thumbs/00000.sqlite"}  # 12 images: one shard
    assert manifest["vectors"] == {"file": VECTORS, "dtype": "float16", "rows": 12}
    assert not list(built_index.glob("*.tmp")) and not list(built_index.glob(".*tmp"))


def test_missing_or_broken_index_files_give_clear_errors(tmp_path, built_index):
    with pytest.raises(BuscadorError, match="no index at"):
        IndexStore(tmp_path / "nothing")
    broken = tmp_path / "broken"
    shutil.copytree(built_index, broken)
    (broken / INDEX).write_bytes(b"garbage")
    with pytest.raises(BuscadorError, match="cannot read"):
        IndexStore(broken)
    faiss.write_index(faiss.IndexFlatIP(512), str(broken / INDEX))  # a FAISS file, but not ours
    with pytest.raises(BuscadorError, match="cannot read"):
        IndexStore(broken)
    other = faiss.IndexIDMap2(faiss.IndexFlatIP(512))  # ours, but not of this catalog
    other.add_with_ids(np.eye(12, 512, dtype=np.float32), np.arange(1, 13))
    faiss.write_index(other, str(broken / INDEX))
    with pytest.raises(BuscadorError, match="inconsistent"):
        IndexStore(broken)


def test_catalog_write_assigns_ids_in_order_and_keeps_them_on_update(tmp_path):
    from indexing.catalog import Row
    from indexing.store import Writer, open_for_build

    catalog = open_for_build(tmp_path, "m", 4)
    writer = Writer(tmp_path, catalog, 4)
    vec = np.ones(4, np.float32)
    writer.write([Row("a", "a", "1", vec, b""), Row("b", "b", "1", vec, b"")])
    writer.write([Row("b", "b", "2", vec * 2, b""), Row("c", "c", "1", vec, b"")])
    assert catalog.ids().tolist() == [0, 1, 2]
    assert writer.vectors.read([1])[0].tolist() == [2, 2, 2, 2]
    assert catalog.fingerprints() == {"a": "1", "b": "2", "c": "1"}


def test_an_hnsw_index_measures_and_records_its_recall(tmp_path, collection, embedder):
    summary = build_index(
        FolderSource(collection), tmp_path / "index", embedder, progress=False, index_type="hnsw"
    )
    manifest = read_manifest(tmp_path / "index")
    assert manifest["index_type"] == "hnsw" and summary.index_type == "hnsw"
    assert manifest["recall_at_10"] == summary.recall_at_10 >= 0.95
    assert manifest["search"]["ef_search"] in ann.EF_SEARCH  # the tuned setting, kept
    assert "recall@10" in summary.report()
    store = IndexStore(tmp_path / "index")
    assert faiss.downcast_index(store.index.index).hnsw.efSearch == manifest["search"]["ef_search"]
    hit = Searcher.open(tmp_path / "index", embedder).by_image(collection / "img_002.png", k=1)[0]
    assert hit.key == "img_002.png"


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The kind of each FAISS index built from scratch (not kept, not grown) from now on."""
    import indexing.store

    kinds: list[str] = []
    build = indexing.store.ann.build
    monkeypatch.setattr(indexing.store.ann, "build", lambda *a, **k: kinds.append(a[0]) or build(*a, **k))
    return kinds


def test_a_build_that_changes_nothing_keeps_the_index_new_images_grow_it_and_other_changes_rebuild_it(
    tmp_path, collection, embedder, builds
):
    folder, out = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(collection, folder)

    def run(**options):
        summary = build_index(
            FolderSource(folder), out, embedder, progress=False, index_type="hnsw", **options
        )
        return summary, read_manifest(out)

    _, manifest = run()
    assert builds == ["hnsw"]
    again, kept = run()
    assert builds == ["hnsw"] and again.unchanged == 12  # nothing changed: the index is kept
    assert (kept["search"], kept["recall_at_10"]) == (manifest["search"], manifest["recall_at_10"])
    assert kept["files"][INDEX] == manifest["files"][INDEX] and kept["last_build"]["added"] == 0
    assert Searcher.open(out, embedder).by_image(folder / "img_005.png", k=1)[0].key == "img_005.png"

    shutil.copy(folder / "img_001.png", folder / "copy.png")  # a new image (reusing a vector)
    grown, manifest = run()
    assert builds == ["hnsw"] and (grown.added, manifest["count"]) == (1, 13)  # grown, not built
    assert (manifest["search"], manifest["recall_at_10"]) == (kept["search"], kept["recall_at_10"])
    hits = Searcher.open(out, embedder).by_image(folder / "img_001.png", k=2)
    assert {hit.key for hit in hits} == {"img_001.png", "copy.png"}
    store = IndexStore(out)
    removed = next(i for i, item in store.items(store.catalog.ids()).items() if item.key == "img_003.png")
    (folder / "img_003.png").unlink()  # a graph cannot take a vector out: it stays, as a ghost
    shrunk, manifest = run()
    assert builds == ["hnsw"] and shrunk.removed == 1 and manifest["ghosts"] == [removed]
    assert IndexStore(out).count == manifest["count"] == 12
    hits = Searcher.open(out, embedder).by_image(collection / "img_003.png", k=12)
    assert len(hits) == 12 and "img_003.png" not in {hit.key for hit in hits}
    _, kept = run()
    assert builds == ["hnsw"] and kept["ghosts"] == manifest["ghosts"]  # nothing changed: kept
    (folder / "img_004.png").unlink()
    (folder / "img_005.png").unlink()  # 3 ghosts of 13: over GHOST_SHARE, built again
    _, manifest = run()
    assert builds == ["hnsw", "hnsw"] and "ghosts" not in manifest
    run(memory_budget_mb=512)  # another choice of index
    assert len(builds) == 3
    with (out / VECTORS).open("r+b") as f:  # the vectors are not those the index was built from
        f.write(b"\x00\x3c")
    shutil.copy(folder / "img_002.png", folder / "copy2.png")
    run(memory_budget_mb=512)
    assert len(builds) == 4
    run(memory_budget_mb=512)
    assert len(builds) == 4


def _hnsw_index_of_a_copy(tmp_path: Path, collection: Path, embedder) -> tuple[Path, Path, int]:
    """A copy of the collection, its HNSW index, and the id img_005.png has in it."""
    folder, out = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(collection, folder)
    build_index(FolderSource(folder), out, embedder, progress=False, index_type="hnsw")
    return folder, out, _state(out)["img_005.png"][0]


def test_a_changed_image_grows_an_hnsw_index_under_a_new_id_with_its_old_picture_left_out(
    tmp_path, collection, embedder, builds
):
    folder, out, old = _hnsw_index_of_a_copy(tmp_path, collection, embedder)
    shapes_image(99).save(folder / "img_005.png")  # same name, new content
    os.utime(folder / "img_005.png", ns=(time.time_ns(), time.time_ns() + 10**9))
    summary = build_index(FolderSource(folder), out, embedder, progress=False, index_type="hnsw")

    manifest = read_manifest(out)
    new = _state(out)["img_005.png"][0]
    assert builds == ["hnsw"] and summary.updated == 1  # grown, not built again
    assert new != old and manifest["ghosts"] == [old] and manifest["count"] == IndexStore(out).count == 12
    hits = Searcher.open(out, embedder).by_image(folder / "img_005.png", k=12)
    assert hits[0].key == "img_005.png" and hits[0].id == new
    assert old not in {hit.id for hit in hits} and len(hits) == 12
    store = IndexStore(out)
    assert store.thumbnail(new) and not store.thumbnail(old)  # the old picture's thumbnail went


def test_a_moved_image_keeps_its_id_and_leaves_an_hnsw_index_without_ghosts(
    tmp_path, collection, embedder, builds
):
    folder, out, old = _hnsw_index_of_a_copy(tmp_path, collection, embedder)
    (folder / "2019").mkdir()
    (folder / "img_005.png").rename(folder / "2019" / "beach.png")  # sorted into an album
    plan = plan_build(FolderSource(folder), out, progress=False)  # by its size and time
    assert (plan.moved, plan.new, plan.removed) == ([("img_005.png", "2019/beach.png")], [], [])
    graph = (out / INDEX).stat().st_ino
    summary = build_index(FolderSource(folder), out, embedder, progress=False, index_type="hnsw")
    assert (summary.moved, summary.added, summary.removed) == (1, 0, 0)
    manifest = read_manifest(out)
    assert builds == ["hnsw"] and "ghosts" not in manifest  # the same graph, its ids the same
    assert (out / INDEX).stat().st_ino == graph  # kept as it was: not even written again
    hit = Searcher.open(out, embedder).by_image(folder / "2019" / "beach.png", k=1)[0]
    assert (hit.key, hit.id) == ("2019/beach.png", old)
    assert manifest["vectors"]["rows"] == 12  # no row left unused


def test_manifest_records_what_the_last_build_changed(tmp_path, collection, embedder):
    build_index(FolderSource(collection), tmp_path / "index", embedder, progress=False)
    assert read_manifest(tmp_path / "index")["last_build"] == {
        "added": 12,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "skipped": 0,
        "reused": 0,
        "moved": 0,
    }


def test_an_indexed_file_that_becomes_unreadable_leaves_the_index(tmp_path, collection, embedder):
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    out = tmp_path / "index"
    build_index(FolderSource(folder), out, embedder, progress=False)
    (folder / "img_004.png").write_bytes(b"half-written by a sync client")
    summary = build_index(FolderSource(folder), out, embedder, progress=False, warn=lambda _: None)
    assert (summary.removed, len(summary.skipped), summary.count) == (1, 1, 11)
    assert "img_004.png" not in _state(out)


def test_a_copied_or_renamed_image_reuses_its_vector_instead_of_the_model(tmp_path, collection, tiny_model):
    from indexing.embedder import Embedder

    counting = Embedder(tiny_model, precision="fp32")
    embedded: list[int] = []
    model = counting.embed_pixels
    counting.embed_pixels = lambda batch: (embedded.append(len(batch)), model(batch))[1]
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    out = tmp_path / "index"
    build_index(FolderSource(folder), out, counting, progress=False)
    assert sum(embedded) == 12
    before = _state(out)

    (folder / "img_003.png").rename(folder / "renamed.png")
    (folder / "copies").mkdir()
    for name in ("a.png", "b.png"):  # two copies of one image, new in the same build
        shutil.copy(folder / "img_004.png", folder / "copies" / name)
    embedded.clear()
    summary = build_index(FolderSource(folder), out, counting, progress=False)
    assert sum(embedded) == 0, "no image was embedded again"
    assert (summary.added, summary.moved, summary.removed, summary.reused, summary.count) == (2, 1, 0, 2, 14)
    assert "2 new, 0 changed, 11 unchanged, 1 moved, 0 removed, 0 skipped, 2 reused" in summary.report()
    after = _state(out)
    assert after["renamed.png"][0] == before["img_003.png"][0]  # its id: a rename is no new image
    assert np.array_equal(after["renamed.png"][1], before["img_003.png"][1])
    assert read_manifest(out)["vectors"]["rows"] == 14  # no row left unused
    assert np.array_equal(after["copies/a.png"][1], before["img_004.png"][1])

    shapes_image(77).save(folder / "copies" / "c.png")  # new content, and a copy of it
    shapes_image(77).save(folder / "copies" / "d.png")
    embedded.clear()
    summary = build_index(FolderSource(folder), out, counting, progress=False)
    assert sum(embedded) == 1 and summary.reused == 1  # embedded once for both


def test_a_slow_file_holds_up_its_own_place_not_its_batch():
    from indexing.build import _decoded

    def prepare(item):
        if item == 1:
            time.sleep(1.0)  # a huge PNG: no reduced-size decoding
        return item

    from concurrent.futures import ThreadPoolExecutor

    from indexing.build import _Decoders

    started = time.perf_counter()
    pool = ThreadPoolExecutor(2)
    decoders = _Decoders(
        "threads",
        lambda group: pool.submit(lambda: [prepare(n) for n in group]),
        lambda _, done: done,
        workers=2,
    )
    batches = _decoded(range(12), decoders, batch_size=4)
    first = next(batches)
    assert time.perf_counter() - started < 0.5, "the first batch did not wait for the slow file"
    assert 1 not in [n for n, _ in first] and len(first) == 4
    rest = [n for batch in batches for n, _ in batch]
    assert sorted([n for n, _ in first] + rest) == list(range(12))
    pool.shutdown()


def test_ids_follow_the_source_order_whatever_order_decoding_finishes_in(
    tmp_path, collection, tiny_model, embedder
):
    from indexing.embedder import Embedder

    slow = Embedder(tiny_model, precision="fp32")
    load = slow.load

    def load_slowly(data):
        image = load(data)
        if image.getpixel((0, 0)) == load(collection / "img_001.png").getpixel((0, 0)):
            time.sleep(0.5)
        return image

    slow.load = load_slowly
    build_index(FolderSource(collection), tmp_path / "slow", slow, progress=False, batch_size=4)
    build_index(FolderSource(collection), tmp_path / "plain", embedder, progress=False)
    assert {k: i for k, (i, _) in _state(tmp_path / "slow").items()} == {
        k: i for k, (i, _) in _state(tmp_path / "plain").items()
    }


def test_decoding_in_processes_gives_the_index_threads_give(tmp_path, collection, tiny_model):
    from indexing.embedder import Embedder

    embedder = Embedder(tiny_model, precision="fp32")
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    (folder / "broken.jpg").write_bytes(b"not an image")
    shutil.copy(folder / "img_003.png", folder / "copy.png")
    summaries = {}
    for decode in ("threads", "processes"):
        summaries[decode] = build_index(
            FolderSource(folder),
            tmp_path / decode,
            embedder,
            progress=False,
            decode=decode,
            workers=2,
            warn=print,
        )
    assert summaries["processes"].count == summaries["threads"].count == 13
    assert len(summaries["processes"].skipped) == 1
    a, b = _state(tmp_path / "threads"), _state(tmp_path / "processes")
    assert {k: i for k, (i, _) in a.items()} == {k: i for k, (i, _) in b.items()}
    assert all(float(a[k][1] @ b[k][1]) > 0.9999 for k in a)
    thumbnails = {d: IndexStore(tmp_path / d) for d in ("threads", "processes")}
    for i, _ in a.values():  # the same crop's resize makes each thumbnail, whichever decoded it
        assert thumbnails["threads"].thumbnail(i) == thumbnails["processes"].thumbnail(i)
    assert thumbnails["processes"].thumbnail(0)[:2] == b"\xff\xd8"

    shutil.copy(folder / "img_004.png", folder / "later_copy.png")  # a copy of an indexed image
    again = build_index(
        FolderSource(folder), tmp_path / "processes", embedder, progress=False, decode="processes", workers=2
    )
    assert (again.added, again.reused) == (1, 1)
    after = _state(tmp_path / "processes")
    assert np.array_equal(after["later_copy.png"][1], after["img_004.png"][1])


def test_commits_run_beside_the_model_in_order_and_their_errors_surface():
    import threading

    from indexing.build import _Committer

    class Disk:
        """Holds each write until released, as a slow disk would."""

        def __init__(self) -> None:
            self.written: list[list[str]] = []
            self.busy = threading.Event()
            self.release = threading.Event()

        def write(self, rows):
            self.busy.set()
            assert self.release.wait(5), "the caller waited for its own commit"
            if rows == ["bad"]:
                raise OSError("disk full")
            self.written.append(rows)

    disk = Disk()
    with _Committer(disk) as commit:
        commit(["a"])  # the disk holds "a"; the caller goes on
        assert disk.busy.wait(5)
        commit(["b"])  # "a" is still being written: "b" and "c" wait for the next commit
        commit(["c"])
        assert disk.written == []
        disk.release.set()
    assert disk.written == [["a"], ["b", "c"]]

    disk = Disk()
    with _Committer(disk, most_waiting=2) as commit:
        commit(["d"])
        assert disk.busy.wait(5)
        commit(["e"])
        threading.Timer(0.2, disk.release.set).start()
        commit(["f"])  # two rows waiting: this call waits for "d", then commits "e" and "f"
        assert disk.release.is_set()
    assert disk.written == [["d"], ["e", "f"]]

    disk = Disk()
    disk.release.set()
    with pytest.raises(OSError, match="disk full"), _Committer(disk) as commit:
        commit(["bad"])
        commit(["g"])  # behind the failing commit: not written
    assert disk.written == []


@pytest.mark.parametrize("decode", ["threads", "processes"])
def test_a_postscript_file_named_jpg_is_skipped_unrun_and_the_build_goes_on(
    ghostscript, tmp_path, collection, embedder, decode
):
    from tests.synthetic import POSTSCRIPT

    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    (folder / "holiday.jpg").write_bytes(POSTSCRIPT)
    warnings: list[str] = []
    source, out = FolderSource(folder), tmp_path / decode
    summary = build_index(
        source, out, embedder, progress=False, decode=decode, workers=2, warn=warnings.append
    )
    assert warnings == [
        "skipped holiday.jpg: a file in EPS (PostScript) format, which is not read here (JPEG, PNG, "
        "WebP, GIF, TIFF, BMP, HEIC and AVIF are)"
    ]
    assert summary.count == 12 and not ghostscript.exists()  # Ghostscript never ran on it


@pytest.mark.parametrize("decode", ["threads", "processes"])
def test_a_file_that_crashes_its_decoder_is_skipped_and_the_build_goes_on(
    crashing_children, tmp_path, collection, embedder, decode
):
    from tests.crashing import CRASHING

    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    (folder / "damaged.heic").write_bytes(CRASHING)  # libheif's crash, played by tests.crashing
    warnings: list[str] = []
    source, out = FolderSource(folder), tmp_path / decode
    summary = build_index(
        source, out, embedder, progress=False, decode=decode, workers=2, warn=warnings.append
    )
    assert summary.skipped == [
        ("damaged.heic", "its decoder crashed on it (SIGSEGV): a damaged file, or too little memory")
    ]
    assert warnings == [f"skipped damaged.heic: {summary.skipped[0][1]}"]
    assert summary.count == 12  # every other photo of the task the crash lost, decoded alone
    hit = Searcher.open(out, embedder).by_image(collection / "img_005.png", k=1)[0]
    assert hit.key == "img_005.png" and hit.score > 0.999


def test_decode_workers_follow_the_cpus_the_process_may_use(monkeypatch, embedder):
    from indexing import config
    from indexing.build import _decoders

    cpu = min(os.sched_getaffinity(0))
    code = (  # pinned to one CPU, as by `taskset -c CPU` or a container's cpuset
        f"import os; os.sched_setaffinity(0, {{{cpu}}}); "
        "from indexing.config import usable_cores; print(usable_cores())"
    )
    repo = Path(__file__).resolve().parent.parent
    pinned = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert pinned.stdout.strip() == "1"
    for cores, threads in ((1, 1), (3, 3), (64, 4)):
        monkeypatch.setattr(config, "usable_cores", lambda cores=cores: cores)
        with _decoders(embedder, None, "threads", None) as decoders:
            assert (decoders.mode, decoders.workers) == ("threads", threads)


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2, docker --cpus=2
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: two threads, each busy part of the time
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),  # no limit: the affinity
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_usable_cores_keep_within_a_containers_cpu_quota(tmp_path, files, cores):
    from indexing import config

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    assert config.usable_cores(tmp_path) == (min(cores, affinity) if cores else affinity)


def test_index_files_get_the_permissions_any_new_file_gets(tmp_path, collection, embedder):
    """Built by one user, served by another (a service account, a container's user): every file
    must be as readable as the umask makes new files, not owner-only."""
    old = os.umask(0o022)
    try:
        build_index(FolderSource(collection), tmp_path / "index", embedder, progress=False)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "index").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", INDEX, CATALOG, VECTORS}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: "0o644" for p in files}
    assert not list((tmp_path / "index").glob(".*.tmp"))  # no temporary file left behind


def test_a_second_build_into_the_same_folder_is_refused_while_the_first_runs(tmp_path, collection, embedder):
    """Two builds writing one folder would each give their next image the same id."""
    import fcntl

    from indexing.store import BUILD_LOCK

    out = tmp_path / "index"
    out.mkdir()
    with (out / BUILD_LOCK).open("a") as running:  # what a running build holds
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BuscadorError, match=f"another build is writing to {out}: wait for it"):
            build_index(FolderSource(collection), out, embedder, progress=False)
        assert not (out / CATALOG).exists()  # refused before touching anything
    assert build_index(FolderSource(collection), out, embedder, progress=False).count == 12
    assert build_index(FolderSource(collection), out, embedder, progress=False).unchanged == 12  # released


def test_a_file_or_folder_whose_name_is_not_utf8_is_skipped_and_named_not_fatal(
    tmp_path, collection, embedder
):
    """An old Latin-1 archive's "café.png" is b"caf\\xe9.png"; the catalog, app and console need text."""
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    os.makedirs(bytes(folder) + b"/vacaciones-\xf1")
    shutil.copy(folder / "img_001.png", bytes(folder) + b"/caf\xe9.png")
    shutil.copy(folder / "img_002.png", bytes(folder) + b"/vacaciones-\xf1/playa.png")
    lines = []
    summary = build_index(
        FolderSource(folder), tmp_path / "index", embedder, progress=False, warn=lines.append
    )
    assert summary.count == 12
    assert sorted(lines) == [
        "skipped caf\\xe9.png: its name is not valid UTF-8: rename it to index it",
        "skipped vacaciones-\\xf1: its name is not valid UTF-8: rename it to index it",
    ]
    assert len(summary.skipped) == 2 and summary.report()  # and the report prints


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF")
def test_an_avif_photo_is_indexed_and_found(tmp_path, collection, embedder):
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    Image.open(folder / "img_003.png").convert("RGB").save(folder / "scan.avif")
    assert build_index(FolderSource(folder), tmp_path / "index", embedder, progress=False).count == 13
    hits = Searcher.open(tmp_path / "index", embedder).by_image(folder / "scan.avif", k=2)
    assert {h.key for h in hits} == {"scan.avif", "img_003.png"}  # itself, and the PNG it was made from


@pytest.mark.skipif(not HEIF, reason="needs pi-heif or pillow-heif (requirements-dev.txt installs pi-heif)")
def test_an_iphone_heic_photo_is_indexed_with_its_date_and_keywords_and_found(tmp_path, collection, embedder):
    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    shutil.copy(DATA / "iphone.heic", folder / "IMG_0001.HEIC")
    assert build_index(FolderSource(folder), tmp_path / "index", embedder, progress=False).count == 13
    searcher = Searcher.open(tmp_path / "index", embedder)
    hit = searcher.by_image(DATA / "iphone.heic", k=1)[0]
    assert (hit.key, hit.taken, hit.tags) == ("IMG_0001.HEIC", "2021-08-14T19:30:00", ("Ana",))
    assert hit.score > 0.999 and searcher.thumbnail(hit.id)[:2] == b"\xff\xd8"


def test_heic_photos_this_installation_cannot_read_are_reported_not_silently_left_out(tmp_path):
    for name in ("IMG_0000.HEIC", "IMG_0001.heic", "IMG_0002.HEIC"):
        (tmp_path / name).write_bytes(b"an iPhone photo")
    (tmp_path / "renamed.jpg").write_bytes((DATA / "iphone.heic").read_bytes())  # an app's
    script = (
        "from indexing.errors import BadImage\n"
        "from indexing.images import load_image\n"
        "from indexing.sources import FolderSource\n"
        f"source = FolderSource({str(tmp_path)!r})\n"
        "print([item.key for item in source.items()], sorted(source.left_out))\n"
        "try:\n"
        f"    load_image({str(tmp_path / 'renamed.jpg')!r})\n"
        "except BadImage as exc:\n"
        "    print(exc, exc.code)\n"
        "from indexing.headers import from_file\n"  # (its boxes read by indexing.heif, not libheif)
        f"facts = from_file(Path({str(tmp_path / 'renamed.jpg')!r}))\n"
        "print(facts.taken, facts.tags)\n"
    )
    lines = output_without(("pi_heif", "pillow_heif"), "from pathlib import Path\n" + script)
    heic = ("HEIC (iPhone photo)", "pip install pi-heif to index them")
    left_out = sorted((name, *heic) for name in ("IMG_0000.HEIC", "IMG_0001.heic", "IMG_0002.HEIC"))
    assert lines[0] == f"{['renamed.jpg']} {left_out}"  # (the .jpg is listed: its content is found out later)
    assert lines[1] == "a HEIC photo (an iPhone's): pip install pi-heif to read it heic"
    assert lines[2] == "2021-08-14T19:30:00 ('Ana',)"  # its header read all the same


def test_images_in_a_folder_that_cannot_be_listed_this_time_stay_indexed(
    tmp_path, collection, embedder, monkeypatch
):
    folder, index = tmp_path / "photos", tmp_path / "index"
    for sub, names in (("a", range(6)), ("b", range(6, 12))):
        (folder / sub).mkdir(parents=True)
        for i in names:
            shutil.copy(collection / f"img_{i:03d}.png", folder / sub)
    assert build_index(FolderSource(folder), index, embedder, progress=False).count == 12

    listing = os.scandir

    def failing_disk(path):  # b/ is on a disk that fails (or the user lost access to it)
        if Path(path).name == "b":
            raise OSError(5, "Input/output error")
        return listing(path)

    monkeypatch.setattr(os, "scandir", failing_disk)
    (folder / "a" / "img_000.png").unlink()  # and one photo really removed
    lines: list[str] = []
    summary = build_index(FolderSource(folder), index, embedder, progress=False, warn=lines.append)
    monkeypatch.undo()
    assert lines == [
        "skipped b/: cannot list folder (Input/output error)",
        "kept 6 indexed images as they were: where they are could not be read this time",
    ]
    assert (summary.removed, summary.unchanged, summary.count) == (1, 11, 11)
    hits = Searcher.open(index, embedder).by_image(collection / "img_008.png", 1)
    assert hits[0].key == "b/img_008.png"

    again = build_index(FolderSource(folder), index, embedder, progress=False)  # the disk is back
    assert (again.removed, again.unchanged, again.added, again.count) == (0, 11, 0, 11)


def test_a_folder_that_lists_no_image_keeps_the_index_as_it_was(tmp_path, collection, embedder):
    folder, index = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(collection, folder)
    assert build_index(FolderSource(folder), index, embedder, progress=False).count == 12
    away = tmp_path / "away"
    folder.rename(away)
    folder.mkdir()  # a disk not mounted: its mount point is an empty folder
    said = f"no image in folder {folder} now: kept the index's 12 images as they were (is its disk mounted?)"
    plan = plan_build(FolderSource(folder), index, progress=False)
    assert (plan.removed, len(plan.kept)) == ([], 12) and plan.report().splitlines()[1].startswith(said)
    lines: list[str] = []
    summary = build_index(FolderSource(folder), index, embedder, progress=False, warn=lines.append)
    assert (summary.removed, summary.unchanged, summary.count) == (0, 12, 12)
    assert lines == [f"{said}; to empty the index, delete its folder"]
    assert Searcher.open(index, embedder).by_image(collection / "img_008.png", 1)[0].key == "img_008.png"

    folder.rmdir()
    away.rename(folder)  # mounted again, and one photo deleted since
    (folder / "img_000.png").unlink()
    again = build_index(FolderSource(folder), index, embedder, progress=False)
    assert (again.removed, again.unchanged, again.added, again.count) == (1, 11, 0, 11)


def test_a_folder_build_s_bar_counts_the_images_to_embed_alone(tmp_path, collection, embedder, monkeypatch):
    import indexing.build

    folder, index = tmp_path / "photos", tmp_path / "index"
    shutil.copytree(collection, folder)
    build_index(FolderSource(folder), index, embedder, progress=False)
    write_collection(folder, 2, start=12)
    bars = []
    made = indexing.build.progress_bar
    monkeypatch.setattr(indexing.build, "progress_bar", lambda *a, **k: bars.append(a) or made(*a, **k))
    build_index(FolderSource(folder), index, embedder, progress=False)
    assert bars[0] == (2, "indexing (12 unchanged)", "img")  # its rate and time left: the model's


def test_a_build_and_a_dry_run_list_the_folder_once(tmp_path, collection, embedder, monkeypatch):
    listings = []
    scan = FolderSource._scan
    monkeypatch.setattr(FolderSource, "_scan", lambda self: (listings.append(self.root), scan(self))[1])
    plan_build(FolderSource(collection), tmp_path / "index", progress=False)
    assert len(listings) == 1  # what total() counted is what items() gives: one listing
    build_index(FolderSource(collection), tmp_path / "index", embedder, progress=False)
    assert len(listings) == 2


def test_thumbnails_of_removed_and_changed_images_give_their_room_back(tmp_path):
    from indexing.thumbnails import shard_name
    from tests.colour_embedder import ColourEmbedder

    folder, out = tmp_path / "photos", tmp_path / "index"
    paths = write_collection(folder, 80, ext="jpg")
    build_index(FolderSource(folder), out, ColourEmbedder(), progress=False)
    shard = out / shard_name(0)
    full = shard.stat().st_size
    for path in paths[:50]:
        path.unlink()
    shapes_image(1000).save(paths[60])  # changed: a new id, its old thumbnail goes
    build_index(FolderSource(folder), out, ColourEmbedder(), progress=False)
    assert shard.stat().st_size < 0.6 * full
    with sqlite3.connect(shard) as db:
        assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    store = IndexStore(out)
    ids = {item.key: item_id for item_id, item in store.items(store.catalog.ids()).items()}
    assert len(ids) == 30 and ids[paths[60].name] == 80
    assert all(store.thumbnail(i)[:2] == b"\xff\xd8" for i in ids.values())


def test_thumbnails_that_cannot_be_compacted_now_are_deleted_all_the_same(tmp_path, monkeypatch, caplog):
    import sqlite3 as sqlite

    from indexing.thumbnails import Thumbnails, shard_name

    thumbs = Thumbnails(tmp_path)
    thumbs.write({i: b"\xff\xd8" + bytes(4000) for i in range(40)})

    class FullDisk(sqlite.Connection):
        def execute(self, sql: str, *args: object) -> sqlite.Cursor:
            if sql == "VACUUM":
                raise sqlite.OperationalError("database or disk is full")
            return super().execute(sql, *args)

    connect = sqlite.connect
    monkeypatch.setattr(sqlite, "connect", lambda *a, **k: connect(*a, **k, factory=FullDisk))
    thumbs.delete(range(30))  # would compact: the disk is full, so not now
    assert "not compacted: database or disk is full" in caplog.text
    assert sorted(thumbs.get_many(range(40))) == list(range(30, 40))
    assert (tmp_path / shard_name(0)).exists()


def test_a_build_that_finds_no_image_says_what_the_folder_held(tmp_path, embedder):
    warned: list[str] = []
    folder = tmp_path / "docs"
    folder.mkdir()
    build_index(FolderSource(folder), tmp_path / "empty", embedder, progress=False, warn=warned.append)
    assert warned == [f"no image in folder {folder}: it is empty, nothing to index"]
    (folder / "notes.txt").write_text("a list")
    (folder / "todo.txt").write_text("another")
    (folder / "Makefile").write_text("all:")
    (folder / ".hidden.png").write_bytes(b"not looked at")
    warned.clear()
    summary = build_index(
        FolderSource(folder), tmp_path / "other", embedder, progress=False, warn=warned.append
    )
    assert summary.count == 0 and len(warned) == 1
    assert warned[0].startswith(
        f"no image in folder {folder}, only files of other kinds (2 .txt, 1 without extension): nothing "
        "to index. Images are "
    )
    assert ".jpg" in warned[0]
    assert plan_build(FolderSource(folder), tmp_path / "other", progress=False).report().splitlines() == [
        "dry run, nothing written: 0 new, 0 changed, 0 removed, 0 unchanged",
        warned[0],  # --dry-run says it too
    ]
    shapes_image(0, (64, 48)).save(folder / "one.png")
    warned.clear()
    assert (
        build_index(
            FolderSource(folder), tmp_path / "other", embedder, progress=False, warn=warned.append
        ).added
        == 1
    )
    assert warned == []
