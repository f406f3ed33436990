"""CLIP embeddings: images and texts in, float32 L2-normalised vectors out (inner product = cosine).

The model comes from a Hub id or a local directory (`--model` / $CLIP_MODEL) and runs on CUDA
when available, in fp32 or bf16 as `indexing.precision` chooses (`--precision` / $CLIP_PRECISION).
On an x86-64 CPU, the model runs through OpenVINO where it is installed (`--runtime` /
$CLIP_RUNTIME; `indexing.openvino_tower`): a build's image batches once the conversion pays, the
app's image and text queries from its start, after each tower's output agrees with torch's fp32.
Images are preprocessed here (resize, crop, normalise in one batched tensor op) instead of
through `CLIPProcessor`, which converts every image to float64 numpy one at a time.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel
from transformers.utils import logging as transformers_logging

from indexing import config
from indexing.errors import BuscadorError
from indexing.images import ImageInput, clip_pixels, load_image
from indexing.precision import CHECKED_ROWS, Precision

if TYPE_CHECKING:
    from indexing.openvino_tower import OpenVinoTower

log = logging.getLogger(__name__)
# A batch of CLIP's uint8 (n, size, size, 3) crops: a NumPy array, or a tensor on the model's
# device where the images were decoded there (indexing.gpu_decoding).
Crops = np.ndarray | torch.Tensor


class TextEncoderLike(Protocol):
    """A second text encoder, aligned to an image model's space (indexing.text_encoder)."""

    model_name: str

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def words_read(self, text: str) -> str | None: ...

    def require_image_model(self, image_model: str) -> None: ...


class EmbedderLike(Protocol):
    """What the build and the searcher use of an embedder (CLIP's, a batching one, a test one)."""

    model_name: str
    dim: int
    device: str

    def load(self, src: ImageInput) -> Image.Image: ...

    def pixels(self, img: Image.Image) -> np.ndarray: ...

    def embed_pixels(self, batch: Crops) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def words_read(self, text: str) -> str | None: ...

    def precision_used(self, tower: str) -> str: ...

    def runtime_used(self) -> str: ...


class Embedder:
    """One loaded CLIP model; thread-safe for inference, so an app shares one across requests."""

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        fast_decode: bool = True,
        precision: str | None = None,
        runtime: str | None = None,
    ) -> None:
        name = config.model_name(model)
        self.model_name = config.model_identity(name)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.fast_decode = fast_decode
        self.precision = Precision(config.precision(precision), self.device)
        self.runtime = runtime_for(config.runtime(runtime), self.device)
        self._tower: OpenVinoTower | None = None  # the image tower, made at a batch of images
        self._text_tower: OpenVinoTower | None = None  # made for a server alone (ready_towers)
        self._entries: dict[str, Path] = {}  # where each tower's conversion is cached (a hash of its weights)
        self._rows_in_torch = 0  # image batches' rows run in torch while a conversion waits
        self._tower_lock = threading.Lock()  # (one tower made, where threads share this embedder)
        _fit_threads()
        if name.startswith(("/", ".", "~")) and not Path(name).expanduser().is_dir():
            raise BuscadorError(f"no model directory at {name} (set --model or CLIP_MODEL)")
        transformers_logging.disable_progress_bar()  # "Loading weights" bars; downloads keep theirs
        try:
            self.model = CLIPModel.from_pretrained(name, dtype=torch.float32)
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            processor = CLIPImageProcessorPil.from_pretrained(name)
        except (OSError, ValueError) as exc:
            raise BuscadorError(
                f"could not load the CLIP model {name!r}: {str(exc).splitlines()[0]}\n"
                "Give a Hub id (network needed the first time) or a local directory with the "
                "model's config, weights and tokenizer, through --model or CLIP_MODEL."
            ) from None
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.projection_dim)
        self.image_size = int(processor.crop_size["height"])
        self.max_tokens = int(self.model.config.text_config.max_position_embeddings)
        self._mean = torch.tensor(processor.image_mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(processor.image_std, device=self.device).view(1, 3, 1, 1)
        log.info("loaded %s on %s (dim %d)", name, self.device, self.dim)

    def load(self, src: ImageInput) -> Image.Image:
        """Decode an image, at reduced size when fast decoding is on. Raises BadImage."""
        return load_image(src, min_side=self.image_size if self.fast_decode else None)

    def pixels(self, img: Image.Image) -> np.ndarray:
        """CLIP's input crop of a decoded image, uint8 (size, size, 3)."""
        return clip_pixels(img, self.image_size, fast=self.fast_decode)

    @torch.inference_mode()
    def embed_pixels(self, batch: Crops) -> np.ndarray:
        """Embed a uint8 (n, size, size, 3) batch of crops."""
        if isinstance(batch, np.ndarray):
            if not batch.flags.writeable:  # a crop that is a decoded picture's own pixels (Pillow's)
                batch = batch.copy()  # torch warns on read-only arrays
            batch = torch.from_numpy(batch)
        x = batch.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self._mean) / self._std
        # A single image (a query) takes the tower once made, never making it: a search from the
        # command line would wait 0.35 s for it, ten times torch's time for one image.
        tower = self._tower or (
            self._openvino_tower(x) if len(x) > 1 and self.runtime == "openvino" else None
        )
        if tower is not None:
            self.precision.note("image", tower.precision)
            return _unit(torch.from_numpy(tower(x.numpy())))
        return _unit(
            self.precision.run(
                "image", len(x), lambda rows: _tensor(self.model.get_image_features(pixel_values=x[rows]))
            )
        )

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; anything past CLIP's 77 tokens is cut off, as CLIP itself would.

        Texts of similar token counts run together, each group padded to its own longest text:
        one pasted paragraph in a batch of short queries does not make them all cost 77 tokens.
        """
        ids = self.tokenizer(
            [t[: config.MAX_QUERY_CHARS] for t in texts], truncation=True, max_length=self.max_tokens
        )["input_ids"]
        out = np.empty((len(texts), self.dim), np.float32)
        for group in _length_groups([len(i) for i in ids]):
            width = max(len(ids[i]) for i in group)
            input_ids = torch.full((len(group), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for row, i in enumerate(group):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            if (tower := self._text_tower) is not None:
                self.precision.note("text", tower.precision)
                out[group] = _unit(torch.from_numpy(tower(input_ids.numpy(), mask.numpy())))
                continue
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            features = self.precision.run(
                "text",
                len(group),
                lambda rows, t=input_ids, m=mask: _tensor(
                    self.model.get_text_features(input_ids=t[rows], attention_mask=m[rows])
                ),
            )
            out[group] = _unit(features)
        return out

    def words_read(self, text: str) -> str | None:
        """The part of `text` CLIP reads when the text is longer than its 77 tokens (`words_read`)."""
        return words_read(self.tokenizer, text, self.max_tokens)

    def precision_used(self, tower: str) -> str:
        """What this embedder ran `tower` ("image" or "text") in so far: "fp32", "bf16", "bf16+fp32"."""
        return self.precision.describe(tower)

    def runtime_used(self) -> str:
        """What ran this embedder's image batches so far: "torch", "OpenVINO", "torch, then OpenVINO"."""
        if self._tower is None:
            return "torch"
        return "torch, then OpenVINO" if self._rows_in_torch else "OpenVINO"

    def ready_towers(self) -> None:
        """Make the OpenVINO towers now, converted where they are not cached: for a server, whose
        queries (an image or a text, or a few at a time) would never reach CONVERT_AFTER, and take
        them faster than torch (one image 14 against 33 ms in bf16, one text 5.2 in fp32 against
        torch's 9.4 in bf16). Torch stays where they cannot be made."""
        pixels = np.random.default_rng(0).random((CHECKED_ROWS, 3, self.image_size, self.image_size))
        with torch.inference_mode():
            normalised = (torch.from_numpy(pixels).float() - self._mean) / self._std
            self._openvino_tower(normalised, convert_now=True)
            if self.runtime == "openvino":
                from indexing.openvino_tower import PROBE_TEXTS

                ids = self.tokenizer(PROBE_TEXTS, padding=True, return_tensors="pt")
                with self._tower_lock:
                    self._text_tower = self._made_tower(
                        "text", (ids["input_ids"], ids["attention_mask"]), True
                    )

    def _openvino_tower(self, x: torch.Tensor, convert_now: bool = False) -> OpenVinoTower | None:
        """The image tower compiled by OpenVINO, in the precision torch would use for it: made at
        the first batch where its conversion is cached, else once `CONVERT_AFTER` images ran in
        torch (None until then). None, and torch from then on, where OpenVINO has no bf16 for a
        bf16 tower, or where its output on the batch's first rows disagrees with torch's fp32
        (checked once for a converted tower on a kind of CPU)."""
        with self._tower_lock:
            if self._tower is None and self.runtime == "openvino":
                self._tower = self._made_tower("image", (x,), convert_now)
            return self._tower

    def _made_tower(
        self, name: str, inputs: tuple[torch.Tensor, ...], convert_now: bool
    ) -> OpenVinoTower | None:
        """The `name` tower ("image" or "text") in OpenVINO, checked on `inputs` (see
        `_openvino_tower`); under its lock."""
        from indexing.openvino_tower import (
            CONVERT_AFTER,
            Kind,
            OpenVinoTower,
            agrees,
            cache_entry,
            has_bf16,
            is_cached,
        )

        # auto with native bf16: images in bf16 by rule; texts in fp32, since OpenVINO's bf16 moved
        # text queries more than torch's (recall@10 against the fp32 index 0.977, torch's 0.988,
        # the floor 0.98), and its fp32 is faster than torch's bf16 (5.2 against 9.4 ms).
        precision = self.precision.fixed or ("bf16" if name == "image" else "fp32")
        if precision == "bf16" and not has_bf16():  # OpenVINO would quietly run fp32
            log.info("the model runs in torch: OpenVINO computes no bf16 on this CPU")
            self.runtime = "torch"
            return None
        kind = Kind(name, self.image_size if name == "image" else 0)
        # Anything OpenVINO raises (a library its wheel needs missing here, a model its converter
        # cannot take) leaves the model to torch.
        try:
            if name not in self._entries:
                self._entries[name] = cache_entry(self.model, kind)
            entry = self._entries[name]
            waiting = name == "image" and not convert_now and self._rows_in_torch < CONVERT_AFTER[precision]
            if waiting and not is_cached(entry):
                if not self._rows_in_torch:
                    log.info(
                        "image batches run in torch for the first %d images, then in OpenVINO (its "
                        "conversion, once for this model, pays past about that many)",
                        CONVERT_AFTER[precision],
                    )
                self._rows_in_torch += len(inputs[0])
                return None
            tower = OpenVinoTower(self.model, kind, precision, torch.get_num_threads(), entry)
        except Exception as exc:
            log.warning("OpenVINO could not take the %s tower (%s): the model runs in torch", name, exc)
            self.runtime = "torch"
            return None
        if not agrees(tower, self.model, kind, inputs):
            self.runtime = "torch"
            return None
        log.info("%s run in OpenVINO, %s", "images" if name == "image" else "texts", precision)
        return tower


def words_read(tokenizer: Any, text: str, max_tokens: int) -> str | None:
    """The beginning of `text` that a text model reading `max_tokens` tokens (its own marks
    included) reads, when the text is longer and the rest is left out; None when it reads it
    all. For telling the person who wrote it. (As the tokenizer writes it back where it cannot
    say where each token came from, a "slow" one.)"""
    room = max_tokens - tokenizer.num_special_tokens_to_add()
    if len(text) <= room:  # a token is a character at least
        return None
    text = text[: config.MAX_QUERY_CHARS]
    options = {"add_special_tokens": False, "truncation": True, "max_length": room + 1}
    if not tokenizer.is_fast:
        ids = tokenizer(text, **options)["input_ids"]
        return tokenizer.decode(ids[:room]).strip() if len(ids) > room else None
    tokens = tokenizer(text, return_offsets_mapping=True, **options)
    return text[: tokens["offset_mapping"][room - 1][1]] if len(tokens["input_ids"]) > room else None


def runtime_for(requested: str, device: str) -> str:
    """What runs a model, "torch" or "openvino", for the runtime requested on this device."""
    from indexing.openvino_tower import installed

    if requested not in config.RUNTIMES:
        raise BuscadorError(f"unknown runtime {requested!r}: use {', '.join(config.RUNTIMES)}", "bad_runtime")
    if requested == "openvino" and not device.startswith("cpu"):
        raise BuscadorError(
            f"the OpenVINO runtime runs on the CPU, and the model is on {device}: use auto or torch"
        )
    if requested == "openvino" and not installed():
        raise BuscadorError("OpenVINO is not installed: `pip install openvino`, or use the runtime torch")
    if requested == "auto":  # (measured on x86-64 CPUs only: elsewhere torch, unless asked)
        x86 = platform.machine().lower() in ("x86_64", "amd64")
        return "openvino" if device.startswith("cpu") and x86 and installed() else "torch"
    return requested


def _fit_threads() -> None:
    """Keep torch's threads within the CPUs this process may use: in a container with a CPU quota
    torch counts the whole machine's cores, and threads beyond the quota spend it early in each
    scheduling period, then all wait for the next one."""
    cap = config.model_threads()
    if cap is not None and torch.get_num_threads() > cap:
        log.info("torch threads: %d → %d (the CPUs this process may use)", torch.get_num_threads(), cap)
        torch.set_num_threads(cap)


def _length_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Indices grouped by length, shortest first; no group's longest is over twice its shortest."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if groups and lengths[i] <= 2 * lengths[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _tensor(features: torch.Tensor | object) -> torch.Tensor:
    """The features tensor, from a tensor or a model output object (transformers 5 returns one)."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output  # type: ignore[attr-defined]


def _unit(features: torch.Tensor) -> np.ndarray:
    """L2-normalised float32 numpy rows."""
    features = torch.nn.functional.normalize(features.float(), dim=-1)
    return features.cpu().numpy().astype(np.float32, copy=False)
