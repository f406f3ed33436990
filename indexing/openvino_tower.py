"""CLIP's towers (and the app's text model for other languages) compiled by OpenVINO, on a CPU.

Why: on the CPUs measured, OpenVINO ran the ViT-B/32 image tower faster than torch for a build's
batches (RESULTS, twenty-first session, an AMD Zen 5 with AVX512-BF16: bf16 10.0–10.9 against
13.3–13.8 ms an image; fp32 19.4–21.3 against 45–51, torch's fp32 products going through MKL).
Its bf16 keeps the issue's fidelity (centred cosine ≥ 0.9996 against fp32 over 1,000 images).

The tower is converted from the torch model already loaded, through OpenVINO's PyTorch front
end (its `convert_model` tool would send usage statistics), 1.4–2.4 s for ViT-B/32, and kept as
OpenVINO IR in the cache folder (`config.cache_dir`), named by a hash of the weights and of the
versions that made it, so later builds read and compile it in about 0.25 s. Since a conversion
costs more than a small build saves, a build converts only after CONVERT_AFTER images (below). A
cache entry that cannot be read is made again; a cache that cannot be written costs the
conversion each time, with a log line.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
import xxhash
from transformers.utils import logging as transformers_logging

from indexing import config
from indexing.precision import CHECKED_ROWS, MIN_AGREEMENT

log = logging.getLogger(__name__)
# Entries kept in the cache (each a tower's fp32 weights: about 350 MB for ViT-B/32's image tower,
# 250 MB for its text tower, 540 MB for the multilingual text model), the most recently used
# first: an app's three and a successor's.
ENTRIES_KEPT = 6
# A folder a conversion is still writing is this old at most (seconds).
STALE_S = 3600
# A build converts the tower (about 2.5 s with its caching, for ViT-B/32) only after it has embedded
# this many images in torch: the conversion pays past about 1,000 images in bf16 (a build 31.2
# against 34.0 images/s on the Zen 5 measured, 2.7 ms an image saved) and 100 in fp32 (15.3
# against 25.7). A tower already cached is used from the first batch.
CONVERT_AFTER = {"bf16": 1000, "fp32": 100}
# What a text tower is first checked on against torch: two texts of different lengths, so that the
# shorter one's padding is checked too.
PROBE_TEXTS = ["a photo of a dog", "a photo"]
# Bump when what is converted changes (inputs, outputs, the graph around the model).
LAYOUT = 2


def installed() -> bool:
    """Whether OpenVINO can be imported here."""
    return find_spec("openvino") is not None


@functools.cache
def has_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (else it would quietly run fp32); False
    where OpenVINO is there but does not load (a library its wheel needs missing on this system).
    Asked once a process (a build asks at each batch while its first images run in torch)."""
    try:
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except (ImportError, RuntimeError):
        return False


@dataclass(frozen=True)
class Kind:
    """Which tower: CLIP's "image" (normalised crops of `image_size` pixels) or "text" (token ids
    and their attention mask, any length), or "sentence": a text model whose forward takes token
    ids and mask to its vector (indexing.text_encoder's, for other languages)."""

    name: str
    image_size: int = 0

    @property
    def weights(self) -> tuple[str, ...]:
        """The prefixes of its weights' names in the model's state."""
        prefixes = {
            "image": ("vision_model.", "visual_projection."),
            "text": ("text_model.", "text_projection."),
        }
        return prefixes.get(self.name, ("",))


class Features(torch.nn.Module):
    """A tower as one function of its inputs, as OpenVinoTower takes them: what is traced and
    converted, and what its output is checked against."""

    def __init__(self, model: torch.nn.Module, kind: Kind) -> None:
        super().__init__()
        self.model = model
        self.kind = kind.name

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.kind == "image":
            out = self.model.get_image_features(pixel_values=inputs[0])
        elif self.kind == "text":
            out = self.model.get_text_features(input_ids=inputs[0], attention_mask=inputs[1])
        else:
            out = self.model(*inputs)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


class OpenVinoTower:
    """A tower of a loaded model, compiled for this CPU in fp32 or bf16.

    Called with its inputs as NumPy arrays (the image tower: normalised float32 pixels (n, 3,
    size, size); a text tower: int64 token ids and attention mask (n, length)), it returns the
    unnormalised features (n, dim), as `Features` does. One call at a time (a lock): a batch
    takes every core anyway.
    """

    def __init__(self, model: torch.nn.Module, kind: Kind, precision: str, threads: int, entry: Path) -> None:
        import openvino as ov

        self.precision = precision
        self.entry = entry
        core = ov.Core()
        settings = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        try:
            compiled = core.compile_model(_cached_graph(core, model, kind, self.entry), "CPU", settings)
        except RuntimeError as exc:  # a cached graph whose weights file was damaged
            log.warning(
                "the cached OpenVINO tower in %s failed (%s): converting again", self.entry, _said(exc)
            )
            self.forget()
            compiled = core.compile_model(_cached_graph(core, model, kind, self.entry), "CPU", settings)
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()
        cpu = " ".join(
            str(core.get_property("CPU", name)) for name in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES")
        )
        self._agreed = self.entry / f"agreed-{precision}-{xxhash.xxh3_64_hexdigest(cpu.encode())}"

    @property
    def agreed(self) -> bool:
        """Whether this tower's output was found to agree with torch's on this kind of CPU, in
        this precision (checked once, in the first build that used it)."""
        return self._agreed.exists()

    def note_agreed(self) -> None:
        """Remember that its output agreed (where the cache can be written)."""
        with contextlib.suppress(OSError):
            self._agreed.touch()

    def forget(self) -> None:
        """Delete this tower's cache entry (damaged, or its output found wrong)."""
        shutil.rmtree(self.entry, ignore_errors=True)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self._request.infer({i: np.ascontiguousarray(a) for i, a in enumerate(inputs)})
            return np.array(out[0], dtype=np.float32)  # a copy: the request reuses its buffer


def agrees(
    tower: OpenVinoTower, model: torch.nn.Module, kind: Kind, inputs: tuple[torch.Tensor, ...]
) -> bool:
    """Whether `tower`'s output on the first CHECKED_ROWS of `inputs` agrees with torch's fp32
    (`Features`; cosine ≥ MIN_AGREEMENT), checked once for a cache entry on a kind of CPU and
    remembered there; a tower that disagrees is deleted from the cache, with a warning."""
    if tower.agreed:
        return True
    probe = tuple(t[:CHECKED_ROWS] for t in inputs)
    with torch.inference_mode():
        expected = Features(model, kind)(*probe)
    found = torch.from_numpy(tower(*(t.numpy() for t in probe)))
    agreement = float(torch.nn.functional.cosine_similarity(expected.float(), found, dim=-1).min())
    if agreement < MIN_AGREEMENT:
        log.warning(
            "OpenVINO's %s tower disagrees with torch's (cosine %.4f): the model runs in torch",
            kind.name,
            agreement,
        )
        tower.forget()
        return False
    tower.note_agreed()
    log.info("OpenVINO's %s tower agrees with torch's fp32 (cosine %.4f)", kind.name, agreement)
    return True


def cache_entry(model: torch.nn.Module, kind: Kind) -> Path:
    """The cache folder of this model's converted tower (there or not yet)."""
    return config.cache_dir() / "openvino" / _key(model, kind)


def is_cached(entry: Path) -> bool:
    """Whether a converted tower is in `entry` (read back in about 0.3 s, not converted)."""
    return (entry / "tower.xml").is_file()


def _cached_graph(core: object, model: torch.nn.Module, kind: Kind, entry: Path) -> object:
    """The tower's OpenVINO graph: read from its cache entry, else converted (and cached there
    when it can be)."""
    import openvino as ov

    root = entry.parent
    xml = entry / "tower.xml"
    if xml.is_file():
        try:
            graph = core.read_model(str(xml))  # type: ignore[attr-defined]
            with contextlib.suppress(OSError):  # (a cache shared read-only)
                os.utime(entry)  # most recently used
            return graph
        except RuntimeError as exc:  # a file cut short or damaged: made again below
            log.warning(
                "the cached OpenVINO tower in %s could not be read (%s): converting again", entry, _said(exc)
            )
            shutil.rmtree(entry, ignore_errors=True)
    graph = _convert(model, kind)
    temporary = root / f".{entry.name}.{uuid.uuid4().hex}"
    try:
        temporary.mkdir(parents=True)
        ov.save_model(graph, str(temporary / "tower.xml"), compress_to_fp16=False)
        try:
            temporary.rename(entry)
        except OSError:  # another build cached it meanwhile
            shutil.rmtree(temporary, ignore_errors=True)
        _drop_old(root)
    except (OSError, RuntimeError) as exc:  # OpenVINO's write errors are RuntimeErrors
        shutil.rmtree(temporary, ignore_errors=True)
        log.warning(
            "could not cache the OpenVINO tower in %s (%s): it is converted each time it is needed",
            root,
            _room_left(root) or _said(exc),
        )
    return graph


def _convert(model: torch.nn.Module, kind: Kind) -> object:
    """The tower converted from torch, traced on a batch of 2 (two texts of different lengths,
    so that padding is traced), then taking any batch size (and, for texts, any length)."""
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    if kind.name == "image":
        example: tuple[torch.Tensor, ...] = (torch.zeros(2, 3, kind.image_size, kind.image_size),)
    else:  # (ids within any vocabulary; the longer text's end, the shorter's padding)
        ids = torch.tensor([[0, 5, 6, 7, 2], [0, 5, 2, 1, 1]])
        example = (ids, (torch.arange(5) < torch.tensor([[5], [3]])).long())
    log.info("converting the %s tower for OpenVINO (once for this model)", kind.name)
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # notes about the model's training settings
    try:
        # The tracer's warnings (Python booleans made of tensors) hold for every input this graph
        # gets: crops of one size; texts of two tokens or more (the tokenizer's marks) with a mask.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoder = TorchScriptPythonDecoder(Features(model, kind).eval(), example_input=example)
    finally:
        transformers_logging.set_verbosity(verbosity)
    front_end = FrontEndManager().load_by_framework("pytorch")
    graph = front_end.convert(front_end.load(decoder))
    if kind.name == "image":
        graph.reshape([-1, 3, kind.image_size, kind.image_size])
    else:
        graph.reshape({0: [-1, -1], 1: [-1, -1]})
    return graph


def _key(model: torch.nn.Module, kind: Kind) -> str:
    """A name for the tower's conversion: its weights and the versions that convert and run it."""
    import openvino as ov
    import transformers

    digest = xxhash.xxh3_128()
    versions = (LAYOUT, kind, ov.__version__, torch.__version__, transformers.__version__)
    digest.update(repr(versions).encode())
    digest.update(model.config.to_json_string().encode())  # type: ignore[attr-defined]
    for name, tensor in model.state_dict().items():
        if name.startswith(kind.weights):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _drop_old(root: Path) -> None:
    """Delete all but the ENTRIES_KEPT most recently used cache entries, and what conversions
    stopped halfway left (a folder being written, an hour old)."""
    entries, now = [], time.time()
    for path in root.iterdir():
        age = now - path.stat().st_mtime
        if path.name.startswith("."):
            if age > STALE_S:
                shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir():
            entries.append((age, path))
    for _, old in sorted(entries)[ENTRIES_KEPT:]:
        shutil.rmtree(old, ignore_errors=True)


def _said(exc: Exception) -> str:
    """An error's last line: OpenVINO's begin with the check and the source line that failed."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _room_left(folder: Path) -> str | None:
    """ "N MB left on its disk" where that is too little for a tower (OpenVINO's error for a full
    disk is "basic_ios::clear: iostream error"), else None."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return f"{free // 2**20} MB left on its disk" if free < 1024 * 2**20 else None
