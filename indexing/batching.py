"""Micro-batching: queries that arrive together share one forward pass of the model.

A server answers each visitor on its own thread. `MicroBatcher.submit` puts one input on a queue
and waits; a single worker thread takes whatever has queued up (a lone input runs at once; when
others wait beside it, a few milliseconds more let late ones join), runs the batch, and hands each
caller its own row. While a batch runs, the
next one queues up, so the busier the server, the bigger (and cheaper per query) the batches.
A batch that fails is retried one input at a time, so a bad input fails only its own caller.
Texts asked for again (a crowd clicking the page's examples, a shared link opened by many) are
answered from the vectors of the last TEXTS_KEPT distinct texts, without the model.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
from PIL import Image

from indexing.errors import BuscadorError

if TYPE_CHECKING:
    from indexing.embedder import EmbedderLike, TextEncoderLike
    from indexing.images import ImageInput

In = TypeVar("In")
# Distinct texts whose vectors a server keeps (2 KB each): about 8 MB.
TEXTS_KEPT = 4096


class MicroBatcher(Generic[In]):
    """Runs `run(inputs) -> one row per input` on batches of concurrently submitted inputs."""

    def __init__(
        self,
        run: Callable[[list[In]], np.ndarray],
        *,
        max_batch: int = 64,
        window_s: float = 0.002,
        max_waiting: int = 256,
        name: str = "batcher",
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.window_s = window_s
        self.max_waiting = max_waiting
        self._queue: queue.SimpleQueue[tuple[In, Future[np.ndarray]]] = queue.SimpleQueue()
        self.batches = 0  # batches run so far (tests and benchmarks read it)
        self._worker = threading.Thread(target=self._loop, name=name, daemon=True)
        self._worker.start()

    def submit(self, items: Sequence[In]) -> np.ndarray:
        """One row per input, computed in batches with whatever else arrived meanwhile.

        Refused at once with a "busy" error when more than `max_waiting` inputs already wait.
        """
        if self._queue.qsize() + len(items) > self.max_waiting:
            raise BuscadorError("the server is busy: try again in a moment", "busy")
        waiting = []
        for item in items:
            done: Future[np.ndarray] = Future()
            self._queue.put((item, done))
            waiting.append(done)
        return np.stack([done.result() for done in waiting])

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            # A lone query runs at once; one with company waits `window_s` for more to join.
            deadline = time.monotonic() + (self.window_s if not self._queue.empty() else 0.0)
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            self._answer(batch)

    def _answer(self, batch: list[tuple[In, Future[np.ndarray]]]) -> None:
        self.batches += 1
        try:
            rows = self._run([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:  # find the culprit: every other input still gets its answer
                self._answer([one])
            return
        for (_, done), row in zip(batch, rows, strict=True):
            done.set_result(row)


class RecentTexts:
    """`embed(texts)`, answered from the vectors of the last `kept` distinct texts where it can:
    only the texts not among them reach `embed`, each once."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], kept: int = TEXTS_KEPT) -> None:
        self._embed = embed
        self._kept = kept
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.answered = 0  # texts answered without the model (tests and benchmarks read it)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {text: self._rows[text] for text in texts if text in self._rows}
            for text in known:
                self._rows.move_to_end(text)
            self.answered += sum(text in known for text in texts)
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            rows = self._embed(missing)
            with self._lock:
                for text, row in zip(missing, rows, strict=True):
                    known[text] = self._rows[text] = row
                while len(self._rows) > self._kept:
                    self._rows.popitem(last=False)
        return np.stack([known[text] for text in texts])


class BatchingTextEncoder:
    """A second text encoder (indexing.text_encoder) whose queries go through a micro-batcher, and
    texts asked for again are answered from the last ones."""

    def __init__(self, encoder: TextEncoderLike, *, window_s: float = 0.002) -> None:
        self.encoder = encoder
        self.model_name = encoder.model_name
        self.texts: MicroBatcher[str] = MicroBatcher(
            encoder.embed_texts, window_s=window_s, name="other-texts"
        )
        self.embed_texts = RecentTexts(self.texts.submit)

    def words_read(self, text: str) -> str | None:
        return self.encoder.words_read(text)

    def require_image_model(self, image_model: str) -> None:
        self.encoder.require_image_model(image_model)


class BatchingEmbedder:
    """An embedder whose text and image queries go through micro-batchers; decoding stays with the
    caller's thread (so images decode in parallel) and only the model calls are batched. Texts
    asked for again are answered from the last ones (RecentTexts)."""

    def __init__(self, embedder: EmbedderLike, *, window_s: float = 0.002) -> None:
        self.embedder = embedder
        self.model_name = embedder.model_name
        self.dim = embedder.dim
        self.device = embedder.device
        self.texts: MicroBatcher[str] = MicroBatcher(embedder.embed_texts, window_s=window_s, name="texts")
        self.embed_texts = RecentTexts(self.texts.submit)
        self.images: MicroBatcher[np.ndarray] = MicroBatcher(
            lambda crops: embedder.embed_pixels(np.stack(crops)),
            max_batch=32,
            window_s=window_s,
            name="images",
        )

    def load(self, src: ImageInput) -> Image.Image:
        return self.embedder.load(src)

    def pixels(self, img: Image.Image) -> np.ndarray:
        return self.embedder.pixels(img)

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        return self.images.submit(list(batch))

    def words_read(self, text: str) -> str | None:
        return self.embedder.words_read(text)

    def precision_used(self, tower: str) -> str:
        return self.embedder.precision_used(tower)

    def runtime_used(self) -> str:
        return self.embedder.runtime_used()
