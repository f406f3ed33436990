"""Native decoders run where their crash takes down a process of their own, not the build or the app.

libheif (iPhones' HEIC), LibRaw (camera RAW) and FFmpeg (videos) are C libraries, and a damaged
file can crash the process that calls them: libheif did on 12 of 3,000 randomly damaged HEICs
(benchmarks/RESULTS.md). In a build that stopped everything, and the next build stopped on the
same file; in the app, a visitor's upload took the search away from every visitor.

`guarded(fn, *args)` runs such a call in a guard process: a few are started when first needed
(a fresh Python that imports only what the call needs), each running one call at a time, so a
crash loses that process and that call alone, which raises BadImage ("its decoder crashed on it");
a new process takes the next call. Inside a guard process, or a build's decode process (`enter`),
the call runs where it is: there a crash breaks the `Pool`, which starts again (indexing.build
decodes again, each alone, the images whose tasks it lost).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Future, ProcessPoolExecutor
from typing import IO, Any, TypeVar

from indexing import config
from indexing.errors import BadImage

T = TypeVar("T")

_inside = False
# A guard process's start: the importer's path first (the project's folder), then `serve`.
_MAIN = (
    "import pickle, sys; sys.path[:0] = pickle.loads(sys.stdin.buffer.read(int(sys.argv[1]))); "
    "from indexing.guard import serve; serve()"
)
_SIZE = struct.Struct("!Q")


def enter() -> None:
    """Mark this process as one where native decoders run as they are called (a guard process, a
    build's decode process). What they print ("unknown file: Unexpected end of file", LibRaw's on
    a cut-short RAW) goes nowhere: it would fall among a build's lines, and the build tells each
    file's trouble itself."""
    global _inside  # noqa: PLW0603 (one flag a process, set once as it starts)
    _inside = True
    try:
        nowhere = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # (a sandbox without /dev/null: what they print shows)
        return
    os.dup2(nowhere, 1)
    os.dup2(nowhere, 2)
    os.close(nowhere)


def inside() -> bool:
    """Whether this process runs native decoders as they are called (`enter`)."""
    return _inside


def guarded(fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
    """fn(*args) in a guard process (here, in one already). `fn` and its arguments travel pickled:
    a module's function, plain values. What it raises is raised here; where its process dies, or
    is still on it after `timeout_s` (default config.DECODE_TIMEOUT_S), BadImage."""
    if _inside:
        return fn(*args)
    return _guard()(fn, *args, timeout_s=timeout_s)


class _Died(Exception):
    """The guard process ended before answering."""


class _Stuck(Exception):
    """The guard process did not answer in time."""


class _Process:
    """One guard process, and the pipes to it."""

    def __init__(self) -> None:
        path = pickle.dumps([p for p in sys.path if p])
        self._process = subprocess.Popen(
            [sys.executable, "-c", _MAIN, str(len(path))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to, self._from = self._process.stdin, self._process.stdout
        self._to.write(path)
        self._to.flush()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> tuple[bool, Any]:
        """(True, what fn(*args) returned) or (False, what it raised), from the process."""
        try:
            _send(self._to, pickle.dumps((fn, args)))
            if not select.select([self._from], [], [], timeout_s)[0]:
                raise _Stuck
            answer = _receive(self._from)
        except OSError:  # (its end of the pipe closed)
            answer = None
        if answer is None:
            raise _Died
        try:
            return pickle.loads(answer)
        except Exception as exc:  # (an exception whose class will not be made again here)
            return False, RuntimeError(f"{type(exc).__name__}: {exc}")

    def alive(self) -> bool:
        return self._process.poll() is None

    def reason(self) -> str:
        """Why the process ended: the signal that ended it, or its exit status."""
        try:
            code = self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return "it stopped answering"
        if code < 0:
            try:
                return signal.Signals(-code).name
            except ValueError:
                return f"signal {-code}"
        return f"exit status {code}"

    def kill(self) -> None:
        self._process.kill()
        self.close()

    def close(self) -> None:
        try:
            self._to.close()  # (its loop ends at the end of its input)
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
        self._from.close()


class Guard:
    """Up to `most` guard processes, each running one call at a time."""

    def __init__(self, most: int) -> None:
        self._slots = threading.BoundedSemaphore(most)
        self._lock = threading.Lock()
        self._idle: list[_Process] = []

    def __call__(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        seconds = timeout_s or config.DECODE_TIMEOUT_S
        with self._slots:
            with self._lock:
                process = self._idle.pop() if self._idle else None
            if process is None or not process.alive():  # (one ended while idle: the kernel's
                if process is not None:  # out-of-memory killer, say)
                    process.close()
                process = _Process()
            try:
                done, value = process.call(fn, args, seconds)
            except _Died:
                reason = process.reason()
                process.close()
                raise BadImage(
                    f"its decoder crashed on it ({reason}): a damaged file, or too little memory",
                    "decoder_crashed",
                    reason=reason,
                ) from None
            except _Stuck:
                process.kill()
                raise BadImage(
                    f"its decoder was still on it after {seconds} s: a damaged file",
                    "decoder_crashed",
                    reason=f"{seconds} s",
                ) from None
            except BaseException:  # (Ctrl-C mid-call: its answer would reach the next call)
                process.kill()
                raise
            self._give_back(process)
            if done:
                return value
            raise value

    def _give_back(self, process: _Process) -> None:
        with self._lock:
            self._idle.append(process)

    def close(self) -> None:
        """End the idle processes (at exit)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for process in idle:
            process.close()


class Pool:
    """A build's decode processes (spawned, each `enter`ed): where a crash breaks the pool (its
    tasks then fail with BrokenExecutor), the next task starts a new one."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent has torch's and SQLite's threads, which a fork would copy mid-work.
        return ProcessPoolExecutor(
            self._workers, mp_context=multiprocessing.get_context("spawn"), initializer=enter
        )

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        try:
            return self._pool.submit(fn, *args)
        except BrokenExecutor:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
            return self._pool.submit(fn, *args)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()


_shared: Guard | None = None
_shared_lock = threading.Lock()


def _guard() -> Guard:
    """This process's guard, made at its first call: as many processes as a build decodes on
    threads at most (4), fewer on fewer cores."""
    global _shared  # noqa: PLW0603 (one guard a process, made when first needed)
    with _shared_lock:
        if _shared is None:
            _shared = Guard(min(4, config.usable_cores()))
            atexit.register(_shared.close)
        return _shared


def serve() -> None:
    """A guard process's loop: a call in, its answer out, until its input ends."""
    answers = os.fdopen(os.dup(1), "wb")  # (before `enter` sends what is printed nowhere)
    enter()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    calls = sys.stdin.buffer
    while (call := _receive(calls)) is not None:
        try:
            fn, args = pickle.loads(call)
            answer: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:  # (returned to the caller, who raises it)
            answer = (False, exc)
        try:
            data = pickle.dumps(answer)
        except Exception as exc:  # an answer that does not travel
            data = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        _send(answers, data)


def _send(pipe: IO[bytes], data: bytes) -> None:
    pipe.write(_SIZE.pack(len(data)))
    pipe.write(data)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> bytes | None:
    """The next message, None where the pipe ends."""
    head = pipe.read(_SIZE.size)
    if len(head) < _SIZE.size:
        return None
    (size,) = _SIZE.unpack(head)
    data = pipe.read(size)
    return data if len(data) == size else None
