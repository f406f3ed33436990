"""The guard: native decoders run in processes of their own, whose crash costs one file."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import BrokenExecutor

import pytest
from PIL import Image

from indexing import guard
from indexing.errors import BadImage
from indexing.images import load_image
from tests.crashing import CRASHING, CRASHING_TIFF


def _pid() -> int:
    return os.getpid()


def _stuck() -> None:
    time.sleep(60)


def _refuse(name: str) -> None:
    raise BadImage(f"file too large ({name})", "file_too_large", mb=99, limit=50)


def test_a_guarded_call_runs_in_another_process_and_its_errors_come_back_whole():
    assert guard.guarded(_pid) != os.getpid()
    assert guard.guarded(_pid) == guard.guarded(_pid)  # one process, kept for the next call
    with pytest.raises(BadImage, match=r"file too large \(a.png\)") as caught:
        guard.guarded(_refuse, "a.png")
    assert (caught.value.code, caught.value.params) == ("file_too_large", {"mb": 99, "limit": 50})


def test_a_decoder_that_crashes_costs_its_file_alone(crashing_children, tmp_path):
    photo = tmp_path / "ok.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo)
    first = guard.guarded(_pid)
    with pytest.raises(BadImage, match=r"its decoder crashed on it \(SIGSEGV\)") as caught:
        load_image(CRASHING)
    assert caught.value.code == "decoder_crashed"
    assert guard.guarded(_pid) not in (first, os.getpid())  # a new process took the next call
    assert load_image(photo).getpixel((0, 0)) == (200, 30, 30)


def test_a_tiff_handed_by_its_path_is_decoded_in_a_guard_process(crashing_children, tmp_path):
    # (a visitor's upload: libtiff's crash, played by tests.crashing, costs that call alone)
    upload = tmp_path / "scan.tif"
    upload.write_bytes(CRASHING_TIFF)
    with pytest.raises(BadImage, match=r"its decoder crashed on it \(SIGSEGV\)"):
        load_image(upload)
    Image.new("RGB", (64, 48), (30, 200, 30)).save(upload)
    assert load_image(upload, min_side=16).getpixel((0, 0)) == (30, 200, 30)


def test_a_crash_among_calls_at_once_fails_its_own_call_only(crashing_children):
    good = (Image.new("RGB", (8, 8)),)  # (stands in for a good file beside the damaged one)
    answers: dict[int, object] = {}

    def call(n: int) -> None:
        try:
            answers[n] = load_image(CRASHING) if n == 3 else guard.guarded(load_image, good[0]).size
        except BadImage as exc:
            answers[n] = exc.code

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {n: "decoder_crashed" if n == 3 else (8, 8) for n in range(8)}


def test_a_pool_that_a_crash_broke_starts_again(crashing_children):
    with guard.Pool(1) as pool:
        with pytest.raises(BrokenExecutor):
            pool.submit(load_image, CRASHING).result()
        assert pool.submit(_pid).result() != os.getpid()


def test_a_decoder_stuck_on_a_file_is_ended_and_the_file_refused(monkeypatch):
    from indexing import config

    monkeypatch.setattr(config, "DECODE_TIMEOUT_S", 1)
    monkeypatch.setattr(guard, "_shared", guard.Guard(1))
    started = time.perf_counter()
    with pytest.raises(BadImage, match=r"its decoder was still on it after 1 s: a damaged file") as caught:
        guard.guarded(_stuck)
    assert caught.value.code == "decoder_crashed" and time.perf_counter() - started < 10
    assert guard.guarded(_pid) != os.getpid()  # a new process takes the next call
    started = time.perf_counter()
    with pytest.raises(BadImage, match=r"still on it after 0.5 s"):  # a call's own limit
        guard.guarded(_stuck, timeout_s=0.5)
    assert time.perf_counter() - started < 5
    assert guard.guarded(time.sleep, 1.5, timeout_s=5) is None  # longer than the default, allowed
    guard._shared.close()
