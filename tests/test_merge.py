"""Sharded builds: slices built apart and merged give the index one build gives."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest

from indexing.build import build_index
from indexing.catalog import CATALOG
from indexing.cli import main
from indexing.errors import BuscadorError
from indexing.merge import merge_shards
from indexing.search import Searcher
from indexing.sources import DatasetSource, Shard
from indexing.store import IndexStore, read_manifest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, collection):
    import datasets

    from tests.synthetic import shapes_image

    folder = tmp_path_factory.mktemp("dataset")
    images = [p.read_bytes() for p in sorted(collection.iterdir())]
    for n in range(8):  # 20 rows
        extra = folder / f"extra{n}.png"
        shapes_image(200 + n).save(extra)
        images.append(extra.read_bytes())
    captions = [f"picture {n}" for n in range(len(images))]
    datasets.Dataset.from_dict({"img": images, "caption": captions}).save_to_disk(folder / "ds")
    return folder / "ds"


def _source(dataset):
    return DatasetSource(str(dataset), image_column="img", label_column="caption", caption_column="caption")


def _catalog(index_dir):
    db = sqlite3.connect(index_dir / CATALOG)
    rows = db.execute(
        "SELECT id, key, label, fingerprint, content, caption FROM items ORDER BY id"
    ).fetchall()
    db.close()
    return rows


def test_three_shards_merged_equal_one_build(tmp_path, dataset, embedder, collection):
    whole = tmp_path / "whole"
    build_index(_source(dataset), whole, embedder, progress=False)
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    sizes = []
    for i, out in enumerate(shards):
        summary = build_index(_source(dataset), out, embedder, progress=False, shard=Shard(i, 3))
        sizes.append(summary.count)
        assert read_manifest(out)["source"]["shard"] == f"{i}/3"
    assert sum(sizes) == 20 and all(sizes), "every row in exactly one shard, none empty"

    merged = tmp_path / "merged"
    manifest = merge_shards(shards[::-1], merged)  # in any order
    assert manifest["count"] == 20 and manifest["source"] == read_manifest(whole)["source"] | {
        "merged_shards": 3
    }
    assert manifest["content_digest"] == read_manifest(whole)["content_digest"]
    assert _catalog(merged) == _catalog(whole), "same ids, keys, labels, fingerprints, captions"
    assert _catalog(merged)[3][-1] == "picture 3"
    a, b = IndexStore(merged), IndexStore(whole)
    ids = b.catalog.ids()
    assert np.allclose(a.vectors.read(ids), b.vectors.read(ids), atol=2e-3)
    assert a.thumbnails.get_many(ids) == b.thumbnails.get_many(ids)
    query = collection / "img_005.png"
    found = Searcher(a, embedder).by_image(query, k=5)
    expected = Searcher(b, embedder).by_image(query, k=5)
    assert [h.id for h in found] == [h.id for h in expected] and found[0].key == expected[0].key


def test_a_shard_hashes_its_own_rows_alone(dataset, monkeypatch):
    from indexing import sources

    hashed = []
    real = sources.content_hash
    monkeypatch.setattr(sources, "content_hash", lambda data: hashed.append(len(data)) or real(data))
    shard = Shard(1, 4)
    items = list(shard.items(_source(dataset)))
    images = [size for size in hashed if size > 500]  # (not the short texts of fingerprints)
    assert len(images) == len(items) > 0  # each of its images once, no other shard's
    whole = list(_source(dataset).items())
    assert [(item.id, item.key, item.fingerprint) for item in items] == [
        (position, item.key, item.fingerprint) for position, item in enumerate(whole) if shard.holds(item.key)
    ]  # the same positions and fingerprints as a listing of the whole


def test_merge_refuses_an_incomplete_or_mixed_set_of_shards(tmp_path, dataset, embedder, built_index):
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    for i, out in enumerate(shards):
        build_index(_source(dataset), out, embedder, progress=False, shard=Shard(i, 2))
    with pytest.raises(BuscadorError, match=r"needs all 2 shards once each; given shards \[0\]"):
        merge_shards(shards[:1], tmp_path / "a")
    with pytest.raises(BuscadorError, match="is not a shard build"):
        merge_shards([shards[0], built_index], tmp_path / "b")
    other = tmp_path / "other"
    shutil.copytree(shards[1], other)
    manifest = read_manifest(other)
    manifest["source"]["split"] = "test"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BuscadorError, match="is a shard of"):
        merge_shards([shards[0], other], tmp_path / "c")
    with pytest.raises(BuscadorError, match="already holds an index"):
        merge_shards(shards, built_index)


def test_shard_and_merge_from_the_command_line(tmp_path, dataset, tiny_model, capsys, monkeypatch):
    monkeypatch.setenv("CLIP_MODEL", tiny_model)
    common = ["build", "--dataset", str(dataset), "--image-column", "img", "--no-progress"]
    for i in range(2):
        assert main([*common, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")]) == 0
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    assert "20 images from 2 shards merged" in capsys.readouterr().out
    assert main([*common, "--out", str(tmp_path / "m")]) == 0  # the next run builds on the merged index
    assert ": 0 new, 0 changed, 20 unchanged, 0 removed" in capsys.readouterr().out
    assert main([*common, "--shard", "2/2", "--out", str(tmp_path / "x")]) == 2
    assert "a shard is written I/N with I from 0 to N-1" in capsys.readouterr().err
