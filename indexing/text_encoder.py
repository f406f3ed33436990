"""A second text encoder for queries in other languages, aligned to the index's image space.

It reads the sentence-transformers format (modules.json: a Transformer, mean Pooling, an optional
Dense layer, an optional Normalize), as `sentence-transformers/clip-ViT-B-32-multilingual-v1`
uses: a multilingual DistilBERT whose mean-pooled output a 768→512 layer maps into CLIP
ViT-B/32's image space. It is loaded here with transformers and safetensors, the same arithmetic
as the library made for the format (tests/test_text_encoder.py checks they agree), so the Space
installs nothing more.

A text encoder only makes sense against the image space it was trained for: which one is declared
in the model folder's `buscador.json` ({"image_model": ...}) or, for known Hub models, below.

On an x86-64 CPU the app runs it through OpenVINO (`ready_towers`, the runtime `auto`, as CLIP's
towers: indexing.openvino_tower): one query of 28 tokens 16.5–17.1 ms against torch's 36.7–44.9
on the AMD Zen 4 measured (benchmarks/bench_text_model.py), in fp32 as torch runs it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from indexing import config
from indexing.embedder import runtime_for, words_read
from indexing.errors import BuscadorError

if TYPE_CHECKING:
    from indexing.openvino_tower import OpenVinoTower

log = logging.getLogger(__name__)

# Hub text models and the image model whose space they were trained into.
KNOWN_ALIGNMENTS = {
    "sentence-transformers/clip-ViT-B-32-multilingual-v1": "openai/clip-vit-base-patch32",
}
DECLARATION = "buscador.json"


class TextEncoder:
    """Texts in, float32 L2-normalised vectors in the image space of `image_model` out."""

    def __init__(self, name: str, *, device: str | None = None, runtime: str | None = None) -> None:
        self.model_name = config.model_identity(name)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.runtime = runtime_for(config.runtime(runtime), self.device)
        self._tower: OpenVinoTower | None = None
        transformers_logging.disable_progress_bar()
        try:
            root = _folder(name)
            modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
            self.image_model = _image_model(name, root)
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            if kinds[:2] != ["Transformer", "Pooling"] or not set(kinds[2:]) <= {"Dense", "Normalize"}:
                raise BuscadorError(f"text model {name}: unsupported modules {kinds}")
            transformer = AutoModel.from_pretrained(root / modules[0]["path"]).to(self.device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(root / modules[0]["path"])
            self.max_tokens = _max_tokens(root / modules[0]["path"], self.tokenizer)
            _check_mean_pooling(root / modules[1]["path"])
            dense = next(
                (_dense(root / m["path"]) for m, kind in zip(modules, kinds, strict=True) if kind == "Dense"),
                None,
            )
            self.model = SentenceVectors(transformer, dense).to(self.device).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise BuscadorError(
                f"could not load the text model {name!r}: {str(exc).splitlines()[0]}\n"
                "Give a Hub id or a local folder in the sentence-transformers format, through "
                "--text-model or TEXT_MODEL."
            ) from None
        probe = self.embed_texts(["probe"])
        self.dim = int(probe.shape[1])
        log.info("loaded text model %s (for %s, dim %d)", name, self.image_model, self.dim)

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(
            [t[: config.MAX_QUERY_CHARS] for t in texts],
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if self._tower is not None:
            vectors = torch.from_numpy(self._tower(ids.numpy(), mask.numpy()))
        else:
            vectors = self.model(ids.to(self.device), mask.to(self.device))
        return torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()

    def ready_towers(self) -> None:
        """Run the model through OpenVINO from now on, where the runtime is "openvino" (`auto` on
        an x86-64 CPU): converted now where it is not cached (about 3 s, once), checked against torch
        once on this kind of CPU. For a server; torch stays where it cannot be made."""
        if self.runtime != "openvino" or self._tower is not None:
            return
        from indexing.openvino_tower import PROBE_TEXTS, Kind, OpenVinoTower, agrees, cache_entry

        kind = Kind("sentence")
        probe = self.tokenizer(PROBE_TEXTS, padding=True, return_tensors="pt")
        try:
            tower = OpenVinoTower(
                self.model, kind, "fp32", torch.get_num_threads(), cache_entry(self.model, kind)
            )
            if not agrees(tower, self.model, kind, (probe["input_ids"], probe["attention_mask"])):
                self.runtime = "torch"
                return
        except Exception as exc:  # (as CLIP's towers: anything OpenVINO raises leaves torch)
            log.warning("OpenVINO could not take the text model (%s): it runs in torch", exc)
            self.runtime = "torch"
            return
        self._tower = tower
        log.info("texts in other languages run in OpenVINO, fp32")

    def words_read(self, text: str) -> str | None:
        """The part of `text` this model reads when the text is longer than its tokens
        (`indexing.embedder.words_read`)."""
        return words_read(self.tokenizer, text, self.max_tokens)

    def require_image_model(self, image_model: str) -> None:
        """Refuse to serve an index from another image space: the scores would be meaningless."""
        if image_model != self.image_model:
            raise BuscadorError(
                f"the text model {self.model_name} is aligned to the images of {self.image_model}, "
                f"but the index was built with {image_model}; use a text model made for that one, "
                "or leave TEXT_MODEL unset",
                "text_model_mismatch",
            )


def _folder(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if name.startswith(("/", ".", "~")):
        raise OSError(f"no model folder at {name}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name))
    except LocalEntryNotFoundError:  # its words: "An error happened … Got: ConnectError: …"
        raise OSError("the Hub is unreachable and it is not in the cache") from None


def _image_model(name: str, root: Path) -> str:
    declared = root / DECLARATION
    if declared.is_file():
        image_model = json.loads(declared.read_text(encoding="utf-8"))["image_model"]
        return config.model_identity(str(image_model))
    if name in KNOWN_ALIGNMENTS:
        return KNOWN_ALIGNMENTS[name]
    raise BuscadorError(
        f"the text model {name} does not say which image model it is aligned to: add a "
        f'{DECLARATION} with {{"image_model": "..."}} to its folder',
        "text_model_undeclared",
    )


def _max_tokens(folder: Path, tokenizer: object) -> int:
    settings = folder / "sentence_bert_config.json"
    if settings.is_file():
        value = json.loads(settings.read_text(encoding="utf-8")).get("max_seq_length")
        if value:
            return int(value)
    return min(int(getattr(tokenizer, "model_max_length", 512)), 512)


def _check_mean_pooling(folder: Path) -> None:
    settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if not (settings.get("pooling_mode_mean_tokens") or settings.get("pooling_mode") == "mean"):
        raise ValueError(f"only mean pooling is supported, not {settings}")


class SentenceVectors(torch.nn.Module):
    """The text model as one function: token ids and their attention mask in, its vectors out
    (unnormalised): the transformer's output mean-pooled over the text's tokens, then mapped by
    the Dense layer where there is one. What torch runs, and what OpenVINO converts."""

    def __init__(self, transformer: torch.nn.Module, dense: torch.nn.Sequential | None) -> None:
        super().__init__()
        self.transformer = transformer
        self.config = transformer.config  # (part of the name of its OpenVINO conversion)
        self.dense = dense

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return pooled if self.dense is None else self.dense(pooled)


def _dense(folder: Path) -> torch.nn.Sequential:
    """The Dense layer (a linear map, then Identity or Tanh), its weights read without pickle."""
    settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    activations = {
        "torch.nn.modules.linear.Identity": torch.nn.Identity(),
        "torch.nn.modules.activation.Tanh": torch.nn.Tanh(),
    }
    activation = activations.get(settings.get("activation_function", "torch.nn.modules.activation.Tanh"))
    if activation is None:
        raise ValueError(f"unsupported activation {settings.get('activation_function')}")
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        weights = load_file(str(folder / "model.safetensors"))
    else:  # older saves: a PyTorch state dict, read with weights_only (no code runs)
        weights = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    weight, bias = weights["linear.weight"].float(), weights.get("linear.bias")
    linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias.float())
    return torch.nn.Sequential(linear, activation)
