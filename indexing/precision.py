"""Precision: fp32 or bf16 for each of the model's paths, chosen by the hardware and by measurement.

`auto` means fp32 where the hardware has no native bf16 (CPUs without AMX or AVX512-BF16 in
their flags, GPUs without bf16). Where it has it, batches of images, a build's path, run in bf16:
it was faster on every such CPU measured (2.9× on an Intel Xeon with AMX, 1.8–2.2× on an AMD
Zen 4 with AVX512-BF16) and on the GPU (an H200: 1.5× at 32 images, 5.1× at a GPU build's 128),
and timing both on the first batch cost more than it saved in a 200-image build (1.6 s of 12).
The other paths (single images, texts one at a time or in batches) take whichever of the two is
faster, measured on their first real input, since the answer differs: bf16 slowed the Xeon's
single text queries, and the H200's (5.8 ms against 4.3 in fp32, where a batch of 128 texts ran
5× faster in bf16). Either way bf16 is kept only when its output agrees with fp32's on that
input (cosine ≥ 0.99), and when measured, only when it is at least 15% faster. Vectors leave the
model as float32 either way.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from indexing.config import PRECISIONS
from indexing.errors import BuscadorError

log = logging.getLogger(__name__)

# bf16 must save at least this share of fp32's time to be chosen.
MIN_GAIN = 0.15
# Below this cosine between fp32 and bf16 outputs, bf16 is not trusted on this hardware.
MIN_AGREEMENT = 0.99
# The measurement runs on at most this many rows of the first batch (enough to time it fairly).
PROBE_ROWS = 8
# Paths that take bf16 on hardware with native bf16 without timing it (see above), and the rows of
# their first input on which its agreement with fp32 is checked.
BF16_BY_RULE = ("image_batch",)
CHECKED_ROWS = 2


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (Intel AMX, or AVX512-BF16 on Intel and AMD)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return "amx_bf16" in flags or "avx512_bf16" in flags


class Precision:
    """Runs each model call in the precision chosen for its path ("image_batch", "text_one", ...)."""

    def __init__(self, requested: str, device: str) -> None:
        if requested not in PRECISIONS:
            raise BuscadorError(
                f"unknown precision {requested!r}: use {', '.join(PRECISIONS)}", "bad_precision"
            )
        self.requested = requested
        self.device = device
        self.fixed: str | None
        if requested != "auto":
            self.fixed = requested
        elif device.startswith("cuda"):
            self.fixed = None if torch.cuda.is_bf16_supported() else "fp32"
        else:
            self.fixed = None if cpu_has_bf16() else "fp32"
        self.chosen: dict[str, str] = {}  # path → precision, once measured
        self.used: dict[str, set[str]] = {"image": set(), "text": set()}  # tower → precisions used

    def run(self, tower: str, rows: int, forward: Callable[[slice], torch.Tensor]) -> torch.Tensor:
        """`forward(slice(0, rows))` (the model on those rows of its input) in the precision of its
        path; under `auto`, the path's first call measures both on a few rows first."""
        path = f"{tower}_{'one' if rows == 1 else 'batch'}"
        choice = self.fixed or self.chosen.get(path) or self._measure(path, forward, rows)
        self.used[tower].add(choice)
        with self._autocast(choice):
            return forward(slice(0, rows)).float()

    def note(self, tower: str, precision: str) -> None:
        """Count a call of `tower` made in `precision` elsewhere (another runtime)."""
        self.used[tower].add(precision)

    def describe(self, tower: str) -> str:
        """The precisions a tower used so far, e.g. "bf16", or "bf16+fp32" after a mix."""
        return "+".join(sorted(self.used[tower]))

    def _measure(self, path: str, forward: Callable[[slice], torch.Tensor], rows: int) -> str:
        """bf16 or fp32 for `path`, from a few rows of its first input: both run on them (twice
        each when timed, the first of each warming up), and bf16 is chosen when it agrees with
        fp32 and is ruled or timed faster."""
        by_rule = path in BF16_BY_RULE
        probe = slice(0, min(rows, CHECKED_ROWS if by_rule else PROBE_ROWS))
        seconds: dict[str, float] = {}
        outputs: dict[str, torch.Tensor] = {}
        for precision in ("fp32", "bf16") if by_rule else ("fp32", "bf16", "fp32", "bf16"):
            started = time.perf_counter()
            with self._autocast(precision):
                outputs[precision] = forward(probe).float()
            if self.device.startswith("cuda"):
                torch.cuda.synchronize(self.device)  # the GPU's work done, not only queued
            seconds[precision] = time.perf_counter() - started
        agreement = float(
            torch.nn.functional.cosine_similarity(outputs["fp32"], outputs["bf16"], dim=-1).min()
        )
        faster = by_rule or seconds["bf16"] <= (1 - MIN_GAIN) * seconds["fp32"]
        choice = "bf16" if faster and agreement >= MIN_AGREEMENT else "fp32"
        self.chosen[path] = choice
        how = (
            f"bf16 by rule for this {'GPU' if self.device.startswith('cuda') else 'CPU'}"
            if by_rule
            else f"fp32 {seconds['fp32'] * 1000:.1f} ms, bf16 {seconds['bf16'] * 1000:.1f} ms"
        )
        rows_used = f"{probe.stop} row{'s' if probe.stop > 1 else ''}"
        log.info("precision for %s: %s (%s: %s, agreement %.4f)", path, choice, rows_used, how, agreement)
        return choice

    @contextlib.contextmanager
    def _autocast(self, precision: str) -> Iterator[None]:
        device = "cuda" if self.device.startswith("cuda") else "cpu"
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            yield
