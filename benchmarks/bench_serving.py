"""Serving benchmark: the app under concurrent load, against the framework's ceiling, in one run.

Starts the app (`python app.py`: the full-size ViT-B/32 architecture with random weights, built
from ../shared, on the sample collection's index) and a trivial Gradio app with the same inputs
and outputs whose handlers return at once (`benchmarks/trivial_app.py`: the ceiling). Then, over
loopback only, each scenario runs N raw-HTTP clients (POST /gradio_api/call/ENDPOINT, then read
the answer's event stream) for a bounded time, and prints requests/s, p50, p95, max and errors.
Also: one text search alone, and a gradio_client call of /hits_text against the raw HTTP call.
With --text-model, the app loads the multilingual text model's architecture (random weights,
benchmarks/bench_text_model.py; needs requirements-dev.txt) and one text search alone is also
timed from a Spanish browser (Accept-Language: es), which that model answers.

Usage: .venv/bin/python -m benchmarks.bench_serving [--clients 32] [--seconds 20] [--text-model]
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import httpx
import torch

from benchmarks import arguments
from benchmarks.bench_indexing import WORK, make_model
from indexing.config import usable_cores
from ui import text as ui_text

REPO = Path(__file__).resolve().parent.parent
FRESH = itertools.count()  # numbers the texts of `text`, so that none repeats
EXAMPLES = ui_text.examples(ui_text.DEFAULT)
WORDS = [
    "red",
    "blue",
    "green",
    "cat",
    "dog",
    "beach",
    "coffee",
    "moon",
    "rocket",
    "flower",
    "coins",
    "clock",
    "camera",
    "grass",
    "brick",
    "page",
]


def start(cmd: list[str], port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=os.environ | env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{cmd} exited; see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return proc
        except OSError:
            time.sleep(1)
    proc.kill()
    sys.exit(f"{cmd} did not answer within 600 s; see {log}")


def call(http: httpx.Client, base: str, endpoint: str, data: list) -> None:
    """One API call over raw HTTP, as a browser-less client makes it; raises on any error."""
    answer = http.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data})
    answer.raise_for_status()
    event = answer.json()["event_id"]
    with http.stream("GET", f"{base}/gradio_api/call/{endpoint}/{event}") as stream:
        body = "".join(stream.iter_text())
    if "event: complete" not in body:
        raise RuntimeError(body[-300:])


def load(
    base: str, endpoint: str, make_data: Callable[[int], list], clients: int, seconds: float
) -> tuple[list[float], int]:
    """`clients` threads calling `endpoint` back to back for `seconds`; latencies (s) and errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = 0
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    call(http, base, endpoint, make_data(n * 100_000 + i))
                    with lock:
                        latencies.append(time.perf_counter() - started)
                except Exception:
                    with lock:
                        errors[0] += 1
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def report(name: str, latencies: list[float], errors: int, seconds: float) -> float:
    rate = len(latencies) / seconds
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [latencies[0]] * 19
    print(
        f"{name:44} {rate:6.1f} req/s  p50 {statistics.median(latencies) * 1000:6.0f} ms  "
        f"p95 {q[18] * 1000:6.0f} ms  max {max(latencies) * 1000:6.0f} ms  errors {errors}",
        flush=True,
    )
    return rate


def text(i: int, k: int = 12) -> list:
    """A page search's inputs: text, K, minimum score, fold near-duplicates (the page's default),
    folder (none). Each text is new (numbered), so that the model embeds every one: the app
    answers a text asked for again without it (`examples` measures that)."""
    words = f"a {WORDS[i % len(WORDS)]} and a {WORDS[(i * 7) % len(WORDS)]}"
    return [f"{words}, {next(FRESH)}", k, -1.0, True, ""]


def examples(i: int) -> list:
    """A click on one of the page's example queries (what many visitors of a demo do)."""
    return [EXAMPLES[i % len(EXAMPLES)], 12, -1.0, True, ""]


def hits(i: int) -> list:
    """A results-only search's inputs: the same, with the app's own near-duplicate threshold."""
    return [*text(i)[:3], None, ""]


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--text-model", action="store_true", help="load the multilingual text model too")
    args = parser.parse_args()
    n, secs = args.clients, args.seconds

    model = make_model()
    index = WORK / "serving-index"  # built by the app from the sample collection on first start
    print(f"torch {torch.__version__}, {usable_cores()} cores; app: full-size ViT-B/32 (random weights)")
    settings = {"CLIP_MODEL": str(model), "INDEX_DIR": str(index), "GRADIO_SERVER_PORT": "7870"}
    if args.text_model:
        from benchmarks.bench_text_model import random_text_model
        from indexing.config import model_identity

        settings["TEXT_MODEL"] = str(random_text_model(model_identity(str(model))))
    app = start([sys.executable, "app.py"], 7870, settings, WORK / "app.log")
    ours, ceiling, same_size = "http://127.0.0.1:7870", "http://127.0.0.1:7871", "http://127.0.0.1:7872"
    others: list[subprocess.Popen] = []
    try:
        with (REPO / "samples" / "coffee.png").open("rb") as photo:
            upload = httpx.post(f"{ours}/gradio_api/upload", files={"files": photo}).json()[0]
        image = {"path": upload, "meta": {"_type": "gradio.FileData"}}
        for _ in range(3):  # warm up
            with httpx.Client() as http:
                call(http, ours, "search_text", text(0))
                call(http, ours, "search_image", [image, 12, 0.0, True, ""])

        spanish = [(", in Spanish", text, {"Accept-Language": "es"})] if args.text_model else []
        for name, make_data, headers in [("", text, {}), (", an example", examples, {}), *spanish]:
            with httpx.Client(headers=headers) as http:
                alone = []
                for i in range(60):
                    started = time.perf_counter()
                    call(http, ours, "search_text", make_data(i))
                    alone.append(time.perf_counter() - started)
            report(f"one client, /search_text{name}", alone, 0, sum(alone))
        if args.text_model:
            said = (WORK / "app.log").read_text(errors="replace")
            print(
                f"Spanish searches the multilingual model answered: {said.count('text_encoder=multilingual')}"
            )

        from gradio_client import Client

        client = Client(ours + "/", verbose=False)
        raw, through_client = [], []
        with httpx.Client() as http:
            for i in range(40):
                started = time.perf_counter()
                call(http, ours, "hits_text", hits(i))
                raw.append(time.perf_counter() - started)
                started = time.perf_counter()
                client.predict(*hits(i), api_name="/hits_text")
                through_client.append(time.perf_counter() - started)
        print(
            f"/hits_text, one call: raw HTTP p50 {statistics.median(raw) * 1000:.0f} ms, gradio_client "
            f"p50 {statistics.median(through_client) * 1000:.0f} ms "
            f"(+{(statistics.median(through_client) - statistics.median(raw)) * 1000:.0f} ms)"
        )

        # The ceilings start only now, so that the one-client figures above ran alone.
        others.append(
            start([sys.executable, "-m", "benchmarks.trivial_app", "7871"], 7871, {}, WORK / "trivial.log")
        )
        others.append(
            start(
                [sys.executable, "-m", "benchmarks.trivial_app", "7872", "--canned"],
                7872,
                {},
                WORK / "canned.log",
            )
        )
        top = report(
            f"trivial app, /search_text, {n} clients", *load(ceiling, "search_text", text, n, secs), secs
        )
        same = report(
            f"trivial app, canned answer, /search_text, {n} clients",
            *load(same_size, "search_text", text, n, secs),
            secs,
        )
        mine = report(f"app, /search_text, {n} clients", *load(ours, "search_text", text, n, secs), secs)
        print(
            f"text throughput: {mine / top:.0%} of the trivial app's (empty answers), "
            f"{mine / same:.0%} of the trivial app's with answers of the same size"
        )
        report(
            f"trivial app, canned answer, /hits_text, {n} clients",
            *load(same_size, "hits_text", hits, n, secs),
            secs,
        )
        report(f"app, /hits_text, {n} clients", *load(ours, "hits_text", hits, n, secs), secs)
        paste = "a long pasted paragraph about many things " * 70  # about 3,000 characters

        def mixed(i: int) -> list:
            return [paste, 12, -1.0, True, ""] if i % 8 == 0 else text(i)

        report(
            f"app, /search_text, 1 in 8 pasted, {n} clients", *load(ours, "search_text", mixed, n, secs), secs
        )
        report(
            f"app, /search_text, the page's examples, {n} clients",
            *load(ours, "search_text", examples, n, secs),
            secs,
        )
        report(
            f"app, /search_image, {n} clients",
            *load(ours, "search_image", lambda i: [image, 12, 0.0, True, ""], n, secs),
            secs,
        )
    finally:
        for proc in (app, *others):
            proc.terminate()
    log_lines = [json.dumps(line) for line in (WORK / "app.log").read_text().splitlines()[-2:]]
    print("last log lines of the app:", *log_lines, sep="\n  ")


if __name__ == "__main__":
    main()
