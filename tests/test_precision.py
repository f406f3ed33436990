"""Precision: fp32 or bf16 per model path, by the hardware and by measurement; recorded in the
manifest; an index built in bf16 answers fp32 queries (and the other way round). (Torch's choice
for image batches is tested with the runtime torch; OpenVINO's in test_openvino_tower.)"""

from __future__ import annotations

import re

import numpy as np
import pytest

from indexing import precision as precision_module
from indexing.build import build_index
from indexing.embedder import Embedder
from indexing.errors import BuscadorError
from indexing.precision import Precision, cpu_has_bf16
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.store import read_manifest


def _crops(embedder: Embedder, collection, n: int = 4) -> np.ndarray:
    return np.stack([embedder.pixels(embedder.load(p)) for p in sorted(collection.iterdir())[:n]])


def test_forced_fp32_and_bf16_run_as_asked(tiny_model, collection):
    fp32 = Embedder(tiny_model, precision="fp32")
    bf16 = Embedder(tiny_model, precision="bf16")
    crops = _crops(fp32, collection)
    a, b = fp32.embed_pixels(crops), bf16.embed_pixels(crops)
    assert fp32.precision_used("image") == "fp32" and bf16.precision_used("image") == "bf16"
    assert a.dtype == b.dtype == np.float32 and not np.array_equal(a, b)  # bf16 really ran
    assert (a * b).sum(1).min() > 0.99
    t32, t16 = fp32.embed_texts(["a red circle"]), bf16.embed_texts(["a red circle"])
    assert bf16.precision_used("text") == "bf16" and float(t32[0] @ t16[0]) > 0.99


def test_auto_measures_each_path_once_where_the_cpu_has_bf16(tiny_model, collection, monkeypatch, caplog):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    auto = Embedder(
        tiny_model, precision="auto", device="cpu", runtime="torch"
    )  # a GPU machine's default is CUDA
    assert auto.precision.fixed is None  # to be measured
    with caplog.at_level("INFO", logger="indexing.precision"):
        auto.embed_pixels(_crops(auto, collection))
        auto.embed_pixels(_crops(auto, collection))
        auto.embed_texts(["a cat"])
    measured = [r.getMessage() for r in caplog.records]
    assert len(measured) == 2, measured  # image_batch and text_one, each measured once
    # Image batches: bf16 by rule, checked against fp32 on two rows; a single text: timed.
    assert re.fullmatch(
        r"precision for image_batch: bf16 \(2 rows: bf16 by rule for this CPU, "
        r"agreement (0\.99\d\d|1\.0000)\)",
        measured[0],
    ), measured[0]
    assert measured[1].startswith("precision for text_one: ") and " ms, bf16 " in measured[1]
    assert auto.precision.chosen["image_batch"] == "bf16" and auto.precision_used("image") == "bf16"
    assert set(auto.precision.chosen) == {"image_batch", "text_one"}
    assert auto.precision.chosen["text_one"] in {"fp32", "bf16"}


def test_image_batches_stay_in_fp32_where_bf16_disagrees(tiny_model, collection, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision_module, "MIN_AGREEMENT", 1.01)  # no bf16 output can agree now
    auto = Embedder(tiny_model, precision="auto", device="cpu", runtime="torch")
    vectors = auto.embed_pixels(_crops(auto, collection))
    assert auto.precision.chosen["image_batch"] == "fp32" and auto.precision_used("image") == "fp32"
    exact = Embedder(tiny_model, precision="fp32").embed_pixels(_crops(auto, collection))
    assert np.allclose(vectors, exact, atol=1e-5)


def test_auto_is_fp32_on_a_cpu_without_bf16_and_on_this_machine_follows_its_flags(tiny_model, monkeypatch):
    assert Precision("auto", "cpu").fixed == (None if cpu_has_bf16() else "fp32")
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
    plain = Embedder(tiny_model, precision="auto", device="cpu")
    plain.embed_texts(["a cat"])
    assert plain.precision.fixed == "fp32" and plain.precision_used("text") == "fp32"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert not cpu_has_bf16(info)
    assert not cpu_has_bf16(tmp_path / "missing")


def test_an_unknown_precision_is_refused(tiny_model, monkeypatch):
    with pytest.raises(BuscadorError, match="unknown precision 'fp16': use auto, fp32, bf16"):
        Embedder(tiny_model, precision="fp16")
    monkeypatch.setenv("CLIP_PRECISION", "half")
    with pytest.raises(BuscadorError, match="unknown precision 'half'"):
        Embedder(tiny_model)


def test_a_bf16_index_answers_fp32_queries_and_the_manifest_says_bf16(tmp_path, tiny_model, collection):
    bf16 = Embedder(tiny_model, precision="bf16")
    build_index(FolderSource(collection), tmp_path / "index", bf16, progress=False)
    assert read_manifest(tmp_path / "index")["precision"] == {"image": "bf16"}
    fp32 = Searcher.open(tmp_path / "index", Embedder(tiny_model, precision="fp32"))
    for name in ("img_002.png", "img_009.png"):
        hit = fp32.by_image(collection / name, k=1)[0]
        assert hit.key == name and hit.score > 0.99
    build_index(
        FolderSource(collection), tmp_path / "fp32", Embedder(tiny_model, precision="fp32"), progress=False
    )
    assert read_manifest(tmp_path / "fp32")["precision"] == {"image": "fp32"}
    hit = Searcher.open(tmp_path / "fp32", bf16).by_image(collection / "img_004.png", k=1)[0]
    assert hit.key == "img_004.png" and hit.score > 0.99


def test_a_build_that_only_reuses_vectors_keeps_the_recorded_precision(tmp_path, tiny_model, collection):
    import shutil

    folder = tmp_path / "photos"
    shutil.copytree(collection, folder)
    build_index(
        FolderSource(folder), tmp_path / "index", Embedder(tiny_model, precision="fp32"), progress=False
    )
    shutil.copy(folder / "img_003.png", folder / "copy.png")  # reused, so no model call at all
    fresh = Embedder(tiny_model, precision="bf16")
    summary = build_index(FolderSource(folder), tmp_path / "index", fresh, progress=False)
    assert summary.reused == 1 and fresh.precision_used("image") == ""
    assert read_manifest(tmp_path / "index")["precision"] == {"image": "fp32"}


def test_auto_on_a_gpu_runs_image_batches_in_bf16_and_times_single_queries(monkeypatch, caplog):
    import contextlib
    import time

    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert Precision("auto", "cuda").fixed == "fp32" and Precision("bf16", "cuda").fixed == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert Precision("auto", "cuda:1").fixed is None  # to be chosen on each path's first input
    gpu = Precision("auto", "cuda")
    synced: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", synced.append)
    running: list[str] = []  # CUDA's autocast, played on this machine: which precision runs

    @contextlib.contextmanager
    def autocast(precision: str):
        running.append(precision)
        yield

    monkeypatch.setattr(gpu, "_autocast", autocast)
    vector = torch.nn.functional.normalize(torch.ones(1, 4), dim=-1)

    def single_query(rows: slice) -> torch.Tensor:  # bf16 slower, as an H200's single texts were
        time.sleep(0.03 if running[-1] == "bf16" else 0.001)
        return vector.expand(rows.stop, 4)

    with caplog.at_level("INFO", logger="indexing.precision"):
        assert gpu.run("image", 128, single_query).shape == (128, 4)
        gpu.run("text", 1, single_query)
    assert gpu.chosen == {"image_batch": "bf16", "text_one": "fp32"}
    assert "bf16 by rule for this GPU" in caplog.records[0].getMessage()
    assert synced == ["cuda"] * 6  # each probe timed once the GPU finished it
