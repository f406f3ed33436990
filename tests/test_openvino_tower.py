"""The OpenVINO runtime for a CPU's image batches: chosen by `auto` where installed, its vectors
those of torch's model (a build with it finds the known image), its conversion cached and read
back, a damaged or disagreeing conversion replaced by torch, clear refusals where it cannot run."""

from __future__ import annotations

import os
import platform
import time
from types import SimpleNamespace

import numpy as np
import pytest

from indexing import openvino_tower
from indexing.build import build_index
from indexing.embedder import Embedder, runtime_for
from indexing.errors import BuscadorError
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.store import read_manifest

pytestmark = pytest.mark.skipif(not openvino_tower.installed(), reason="needs OpenVINO")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of the test's own (no conversion made by another test), and the tower
    converted at the first batch (a build waits for 100 or 1,000 images)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("BUSCADOR_CACHE", str(folder))
    monkeypatch.setattr(openvino_tower, "CONVERT_AFTER", {"bf16": 0, "fp32": 0})
    return folder / "openvino"


@pytest.fixture
def conversions(monkeypatch) -> list[int]:
    """Counts the tower's conversions from torch."""
    made: list[int] = []
    convert = openvino_tower._convert

    def counted(*args, **kwargs):
        made.append(1)
        return convert(*args, **kwargs)

    monkeypatch.setattr(openvino_tower, "_convert", counted)
    return made


def _crops(embedder: Embedder, collection, n: int = 6) -> np.ndarray:
    return np.stack([embedder.pixels(embedder.load(p)) for p in sorted(collection.iterdir())[:n]])


def test_auto_builds_in_openvino_and_the_index_finds_the_known_image(tmp_path, tiny_model, collection, cache):
    embedder = Embedder(tiny_model, device="cpu")
    assert embedder.runtime == "openvino"
    summary = build_index(FolderSource(collection), tmp_path / "index", embedder, progress=False)
    assert embedder._tower is not None  # the batches really ran there
    precision = "bf16" if openvino_tower.has_bf16() and embedder.precision.fixed is None else "fp32"
    assert read_manifest(tmp_path / "index")["precision"] == {"image": precision}
    assert f"(threads decoding, model {precision} in OpenVINO): decode" in summary.report()
    searcher = Searcher.open(tmp_path / "index", Embedder(tiny_model, precision="fp32", runtime="torch"))
    for name in ("img_001.png", "img_007.png", "img_011.png"):
        hit = searcher.by_image(collection / name, k=1)[0]
        assert hit.key == name and hit.score > 0.99


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_its_vectors_are_torchs(tiny_model, collection, cache, precision):
    openvino = Embedder(tiny_model, precision=precision, runtime="openvino")
    torch_fp32 = Embedder(tiny_model, precision="fp32", runtime="torch")
    crops = _crops(torch_fp32, collection)
    found, expected = openvino.embed_pixels(crops), torch_fp32.embed_pixels(crops)
    assert found.dtype == np.float32 and found.shape == expected.shape
    assert (found * expected).sum(1).min() > (0.9999 if precision == "fp32" else 0.99)
    assert openvino.precision_used("image") == precision
    one = openvino.embed_pixels(crops[:1])  # a single image (a query), in the tower made
    assert float(one[0] @ expected[0]) > (0.9999 if precision == "fp32" else 0.99)


def test_a_single_image_never_makes_the_tower_and_a_server_makes_it_at_once(
    tiny_model, collection, cache, conversions, monkeypatch
):
    monkeypatch.setattr(openvino_tower, "CONVERT_AFTER", {"bf16": 1000, "fp32": 100})  # as shipped
    calls = []
    run = openvino_tower.OpenVinoTower.__call__
    monkeypatch.setattr(
        openvino_tower.OpenVinoTower,
        "__call__",
        lambda self, *inputs: calls.append(len(inputs)) or run(self, *inputs),
    )
    embedder = Embedder(tiny_model, precision="fp32")
    crops = _crops(embedder, collection)
    for _ in range(3):  # a command-line search: torch, no conversion (0.35 s a search)
        embedder.embed_pixels(crops[:1])
    assert not conversions and not calls and embedder.runtime_used() == "torch"
    server = Embedder(tiny_model, precision="fp32")
    server.ready_towers()  # at the app's start: both converted now, whatever CONVERT_AFTER says
    assert len(conversions) == 2 and server.runtime_used() == "OpenVINO"
    calls.clear()
    vector = server.embed_pixels(crops[:1])
    assert calls == [1]  # a visitor's image, in the image tower
    torch_fp32 = Embedder(tiny_model, precision="fp32", runtime="torch")
    assert float(vector[0] @ torch_fp32.embed_pixels(crops[:1])[0]) > 0.9999
    calls.clear()
    texts = ["a red circle", "a blue square on a white background", "x " * 100, "a"]
    found = server.embed_texts(texts)  # short and long, padded together, one cut at 77 tokens
    assert calls and set(calls) == {2}  # in the text tower (ids and mask)
    assert (found * torch_fp32.embed_texts(texts)).sum(1).min() > 0.9999
    assert embedder._text_tower is None  # a command-line search's texts: torch


def test_a_model_the_converter_cannot_take_runs_in_torch(tiny_model, collection, cache, monkeypatch, caplog):
    def refuses(*args):
        raise ValueError("Cannot convert: an operation it does not know")

    monkeypatch.setattr(openvino_tower, "_convert", refuses)
    embedder = Embedder(tiny_model, precision="fp32")
    crops = _crops(embedder, collection)
    with caplog.at_level("WARNING"):
        vectors = embedder.embed_pixels(crops)
        embedder.ready_towers()
    assert "OpenVINO could not take the image tower (Cannot convert" in caplog.text
    assert embedder.runtime == "torch" and caplog.text.count("could not take") == 1
    expected = Embedder(tiny_model, precision="fp32", runtime="torch").embed_pixels(crops)
    assert np.allclose(vectors, expected, atol=1e-6)


def test_the_conversion_is_cached_and_read_back(tiny_model, collection, cache, conversions, caplog):
    first = Embedder(tiny_model, precision="fp32")
    crops = _crops(first, collection)
    with caplog.at_level("INFO"):
        a = first.embed_pixels(crops)
    assert len(conversions) == 1 and "agrees with torch's fp32" in caplog.text
    (entry,) = cache.iterdir()
    assert (entry / "tower.xml").is_file() and (entry / "tower.bin").stat().st_size > 0
    assert [p.name for p in entry.glob("agreed-fp32-*")]
    caplog.clear()
    second = Embedder(tiny_model, precision="fp32")
    with caplog.at_level("INFO"):
        b = second.embed_pixels(crops)
    assert len(conversions) == 1  # read back, not converted again
    assert "agrees" not in caplog.text  # and not checked again on this CPU
    assert np.allclose(a, b, atol=1e-6)


def test_a_build_converts_only_after_enough_images_and_a_cached_tower_runs_at_once(
    tmp_path, tiny_model, collection, cache, conversions, monkeypatch
):
    monkeypatch.setattr(openvino_tower, "CONVERT_AFTER", {"bf16": 10, "fp32": 10})
    embedder = Embedder(tiny_model, precision="fp32")
    crops = _crops(embedder, collection)
    expected = Embedder(tiny_model, precision="fp32", runtime="torch").embed_pixels(crops)
    for _ in range(2):  # 6, then 12 images: torch, no conversion yet
        assert np.allclose(embedder.embed_pixels(crops), expected, atol=1e-6)
        assert not conversions and embedder.runtime_used() == "torch"
    vectors = embedder.embed_pixels(crops)  # past 10 images: converted
    assert len(conversions) == 1 and embedder.runtime_used() == "torch, then OpenVINO"
    assert (vectors * expected).sum(1).min() > 0.9999
    later = Embedder(tiny_model, precision="fp32")  # another build: the cached tower, at once
    summary = build_index(FolderSource(collection), tmp_path / "index", later, progress=False)
    assert len(conversions) == 1 and "model fp32 in OpenVINO)" in summary.report()


def test_other_weights_are_another_entry(tiny_model, other_model, collection, cache, conversions):
    Embedder(tiny_model, precision="fp32").embed_pixels(_crops(Embedder(tiny_model), collection))
    other = Embedder(other_model, precision="fp32")
    vectors = other.embed_pixels(_crops(other, collection))
    assert len(conversions) == 2 and len(list(cache.iterdir())) == 2 and vectors.shape[1] == 256


def test_a_damaged_cache_entry_is_converted_again(tiny_model, collection, cache, conversions, caplog):
    embedder = Embedder(tiny_model, precision="fp32")
    crops = _crops(embedder, collection)
    expected = embedder.embed_pixels(crops)
    (entry,) = cache.iterdir()
    weights = entry / "tower.bin"
    size = weights.stat().st_size
    with weights.open("r+b") as f:
        f.truncate(size // 2)  # a copy stopped halfway, a full disk
    again = Embedder(tiny_model, precision="fp32")
    with caplog.at_level("WARNING"):
        vectors = again.embed_pixels(crops)
    assert "converting again" in caplog.text and len(conversions) == 2
    assert weights.stat().st_size == size and again.runtime == "openvino"
    assert np.allclose(vectors, expected, atol=1e-6)


def test_a_tower_that_disagrees_hands_the_batches_back_to_torch(
    tiny_model, collection, cache, monkeypatch, caplog
):
    monkeypatch.setattr(
        openvino_tower.OpenVinoTower,
        "__call__",
        lambda self, *inputs: (
            np.random.default_rng(0).standard_normal((len(inputs[0]), 512)).astype(np.float32)
        ),
    )
    embedder = Embedder(tiny_model, precision="fp32")
    crops = _crops(embedder, collection)
    with caplog.at_level("WARNING"):
        vectors = embedder.embed_pixels(crops)
    assert "disagrees with torch's" in caplog.text and embedder.runtime == "torch"
    expected = Embedder(tiny_model, precision="fp32", runtime="torch").embed_pixels(crops)
    assert np.allclose(vectors, expected, atol=1e-5)
    assert list(cache.iterdir()) == []  # the conversion is not kept


def test_an_openvino_that_does_not_load_leaves_torch(tiny_model, collection, cache, monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("libtbb.so.12: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    monkeypatch.setattr(
        openvino_tower, "has_bf16", openvino_tower.has_bf16.__wrapped__
    )  # not its answer kept
    for precision in ("fp32", "bf16"):
        embedder = Embedder(tiny_model, precision=precision)
        crops = _crops(embedder, collection)
        with caplog.at_level("INFO"):
            vectors = embedder.embed_pixels(crops)
            embedder.ready_towers()
        assert embedder.runtime == "torch" and embedder.runtime_used() == "torch"
        assert vectors.shape == (len(crops), 512)
    assert "could not take the image tower (libtbb.so.12" in caplog.text  # fp32
    assert "OpenVINO computes no bf16 on this CPU" in caplog.text  # bf16


def test_bf16_where_openvino_has_none_runs_in_torch(tiny_model, collection, cache, monkeypatch, conversions):
    monkeypatch.setattr(openvino_tower, "has_bf16", lambda: False)
    embedder = Embedder(tiny_model, precision="bf16")
    embedder.embed_pixels(_crops(embedder, collection))
    assert embedder.runtime == "torch" and embedder.precision_used("image") == "bf16" and not conversions


@pytest.mark.parametrize("trouble", ["a file in the way", "a failed write"])
def test_a_cache_that_cannot_be_written_costs_a_conversion_each_time(
    tmp_path, tiny_model, collection, monkeypatch, conversions, caplog, trouble
):
    monkeypatch.setattr(openvino_tower, "CONVERT_AFTER", {"bf16": 0, "fp32": 0})
    if trouble == "a file in the way":
        blocked = tmp_path / "a-file"
        blocked.write_text("not a folder")
        monkeypatch.setenv("BUSCADOR_CACHE", str(blocked))
        said = "Not a directory"
    else:
        import openvino

        monkeypatch.setenv("BUSCADOR_CACHE", str(tmp_path / "cache"))

        def fails(*args, **kwargs):
            raise RuntimeError(
                "Check 'bin_file' failed at src/core/src/pass/serialize.cpp:124:\nCan't open bin file"
            )

        monkeypatch.setattr(openvino, "save_model", fails)
        said = "(Can't open bin file)"
    for _ in range(2):
        embedder = Embedder(tiny_model, precision="fp32")
        crops = _crops(embedder, collection)
        with caplog.at_level("WARNING"):
            vectors = embedder.embed_pixels(crops)
        assert "could not cache the OpenVINO tower" in caplog.text and said in caplog.text
        assert embedder.runtime_used() == "OpenVINO"
    assert len(conversions) == 2
    expected = Embedder(tiny_model, precision="fp32", runtime="torch").embed_pixels(crops)
    assert (vectors * expected).sum(1).min() > 0.9999
    if trouble == "a failed write":
        assert not any((tmp_path / "cache" / "openvino").iterdir())  # nothing half-written left


def test_a_full_disk_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(openvino_tower.shutil, "disk_usage", lambda folder: SimpleNamespace(free=300 * 2**20))
    assert openvino_tower._room_left(tmp_path) == "300 MB left on its disk"
    monkeypatch.setattr(openvino_tower.shutil, "disk_usage", lambda folder: SimpleNamespace(free=50 * 2**30))
    assert openvino_tower._room_left(tmp_path) is None


def test_old_entries_and_abandoned_conversions_are_deleted(tiny_model, collection, cache):
    cache.mkdir(parents=True)
    older = [f"model-{n}" for n in range(openvino_tower.ENTRIES_KEPT)]  # model-0 the most recently used
    for hours, name in enumerate([*older, ".model-d.halfway"], start=1):
        (cache / name).mkdir()
        used = time.time() - 3600 * hours - 60
        os.utime(cache / name, (used, used))
    (cache / ".model-e.being-written").mkdir()  # another build's, now
    embedder = Embedder(tiny_model, precision="fp32")
    embedder.embed_pixels(_crops(embedder, collection))
    kept = sorted(p.name for p in cache.iterdir())
    assert len(kept) == openvino_tower.ENTRIES_KEPT + 1 and ".model-e.being-written" in kept
    assert older[-2] in kept and older[-1] not in kept  # the least recently used went


def test_the_runtime_is_chosen_and_refused_clearly(tiny_model, monkeypatch):
    assert Embedder(tiny_model, runtime="torch").runtime == "torch"
    monkeypatch.setenv("CLIP_RUNTIME", "torch")
    assert Embedder(tiny_model).runtime == "torch"
    monkeypatch.delenv("CLIP_RUNTIME")
    with pytest.raises(BuscadorError, match="unknown runtime 'onnx': use auto, torch, openvino"):
        Embedder(tiny_model, runtime="onnx")
    monkeypatch.setattr(openvino_tower, "installed", lambda: False)
    assert Embedder(tiny_model, device="cpu").runtime == "torch"  # auto without OpenVINO
    monkeypatch.setattr(openvino_tower, "installed", lambda: True)
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert Embedder(tiny_model, device="cpu").runtime == "torch"  # auto: measured on x86-64 alone
    monkeypatch.setattr(openvino_tower, "installed", lambda: False)
    with pytest.raises(BuscadorError, match="OpenVINO is not installed: `pip install openvino`"):
        Embedder(tiny_model, runtime="openvino")
    with pytest.raises(BuscadorError, match="runs on the CPU, and the model is on cuda: use auto or torch"):
        runtime_for("openvino", "cuda")
    assert runtime_for("auto", "cuda") == "torch"
