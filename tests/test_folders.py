"""An index of several folders (a laptop's and a NAS's): keys start with each folder's name, its
originals are found, a folder whose disk is away keeps its images, a typing slip is refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import app
from indexing.build import build_index
from indexing.changes import plan_build
from indexing.cli import main
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.sources import FolderSource, source_text
from indexing.store import read_manifest
from ui.startup import Engine


def _folders(tmp_path: Path, collection: Path, *names: str) -> list[Path]:
    """Folders at `names` (paths under tmp_path), each with 4 of the collection's images."""
    made = []
    for n, name in enumerate(names):
        folder = tmp_path / name
        folder.mkdir(parents=True)
        for i in range(4 * n, 4 * n + 4):
            shutil.copy(collection / f"img_{i:03d}.png", folder)
        made.append(folder)
    return made


def test_several_folders_make_one_index_searched_and_opened_as_one(tmp_path, collection, embedder):
    laptop, nas = _folders(tmp_path, collection, "home/Pictures", "nas/Photos")
    (nas / "2019").mkdir()
    shutil.move(nas / "img_007.png", nas / "2019")
    (nas / "img_006.png").rename(nas / "IMG_20190714_182205.png")  # a phone's name says when
    source = FolderSource(laptop, nas, exclude=["2019/*.png"])  # each folder's own paths
    assert [item.key for item in source.items()] == [
        *(f"Pictures/img_{i:03d}.png" for i in range(4)),
        *("Photos/IMG_20190714_182205.png", "Photos/img_004.png", "Photos/img_005.png"),
    ]
    source = FolderSource(laptop, nas)
    summary = build_index(source, tmp_path / "index", embedder, progress=False)
    assert summary.count == 8
    described = read_manifest(tmp_path / "index")["source"]
    assert described == {"kind": "folder", "roots": {"Pictures": str(laptop), "Photos": str(nas)}}
    assert source_text(described) == f"folders {laptop}, {nas}"
    searcher = Searcher.open(tmp_path / "index", embedder)
    hit = searcher.by_image(collection / "img_007.png", k=1)[0]
    assert (hit.key, hit.path) == ("Photos/2019/img_007.png", nas / "2019" / "img_007.png")
    assert searcher.original(hit.id) == nas / "2019" / "img_007.png"  # "Open the photo"
    dated = searcher.by_image(collection / "img_006.png", k=1)[0]  # its header read by path
    assert (dated.key, dated.taken) == ("Photos/IMG_20190714_182205.png", "2019-07-14T18:22:05")
    hint = app.folder_hint(Engine(searcher), "es")  # the page's folder option names them
    assert hint == "Pictures, Photos, o una carpeta dentro de ellas (vacío: toda la colección)"
    within = searcher.by_image(collection / "img_001.png", k=8, within="Photos")
    assert {h.key.split("/")[0] for h in within} == {"Photos"}
    again = build_index(FolderSource(laptop, nas), tmp_path / "index", embedder, progress=False)
    assert (again.added, again.unchanged, again.removed) == (0, 8, 0)


def test_folders_of_one_name_are_told_apart_and_nested_ones_refused(tmp_path, collection):
    ana, nas = _folders(tmp_path, collection, "ana/Photos", "nas/Photos")
    assert FolderSource(ana, nas).describe()["roots"] == {"ana/Photos": str(ana), "nas/Photos": str(nas)}
    assert FolderSource(ana, ana).describe() == {"kind": "folder", "root": str(ana)}  # the same one twice
    (ana / "2019").mkdir()
    with pytest.raises(
        BuscadorError, match=f"{ana / '2019'} is inside {ana}, whose images it would give twice"
    ):
        FolderSource(ana, ana / "2019")


def test_a_folder_whose_disk_is_away_keeps_its_images_and_a_typing_slip_is_refused(
    tmp_path, collection, embedder
):
    laptop, nas = _folders(tmp_path, collection, "home/Pictures", "mnt/nas")
    index = tmp_path / "index"
    assert build_index(FolderSource(laptop, nas), index, embedder, progress=False).count == 8
    nas.rename(tmp_path / "away")  # unmounted, and its mount point gone with it
    lines: list[str] = []
    summary = build_index(FolderSource(laptop, nas), index, embedder, progress=False, warn=lines.append)
    assert (summary.removed, summary.count) == (0, 8)
    assert lines == [
        f"skipped {nas}: not there now (a disk not mounted?)",
        "kept 4 indexed images as they were: where they are could not be read this time",
    ]
    nas.mkdir()  # its mount point back, empty: the disk is still away
    summary = build_index(FolderSource(laptop, nas), index, embedder, progress=False)
    assert (summary.removed, summary.count) == (0, 8)
    slip = tmp_path / "mnt/nsa"
    with pytest.raises(BuscadorError, match=f"{slip} is not a folder"):
        build_index(FolderSource(laptop, slip), tmp_path / "other", embedder, progress=False)
    with pytest.raises(BuscadorError, match=f"{slip} is not a folder"):
        plan_build(FolderSource(laptop, slip), tmp_path / "other", progress=False)
    assert not (tmp_path / "other").exists()
    with pytest.raises(BuscadorError, match=r"none of .* is there now"):
        FolderSource(slip, tmp_path / "nowhere")


def test_a_folder_is_added_to_an_index_embedding_nothing_again_and_one_left_out_only_with_replace(
    tmp_path, collection, embedder, capsys
):
    laptop, nas = _folders(tmp_path, collection, "home/Pictures", "nas/Photos")
    index = tmp_path / "index"
    build_index(FolderSource(laptop), index, embedder, progress=False)
    assert main(["build", str(laptop), str(nas), "--out", str(index), "--dry-run", "--no-progress"]) == 0
    planned = capsys.readouterr().out  # the laptop's photos under their new keys, keeping their ids
    assert (
        "4 new, 0 changed, 4 moved, 0 removed" in planned and "img_000.png → Pictures/img_000.png" in planned
    )
    before = {hit.key: hit.id for hit in Searcher.open(index, embedder).by_image(laptop / "img_000.png", k=4)}
    summary = build_index(FolderSource(laptop, nas), index, embedder, progress=False)
    assert (summary.count, summary.added, summary.moved, summary.removed) == (8, 4, 4, 0)
    after = {hit.key: hit.id for hit in Searcher.open(index, embedder).by_image(laptop / "img_000.png", k=8)}
    assert {f"Pictures/{key}": i for key, i in before.items()}.items() <= after.items()  # the same ids
    with pytest.raises(BuscadorError, match=re.escape(f"is the index of folders {nas}, {laptop} (8 images)")):
        build_index(FolderSource(nas), index, embedder, progress=False)  # would remove the laptop's
    summary = build_index(FolderSource(nas), index, embedder, progress=False, replace=True)
    assert (summary.count, summary.moved, summary.removed) == (4, 4, 4)
