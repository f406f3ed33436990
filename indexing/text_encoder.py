"""A second text encoder for queries in other languages, aligned to the index's image space.

It reads the sentence-transformers format (modules.json: a Transformer, mean Pooling, an optional
Dense layer, an optional Normalize), as `sentence-transformers/clip-ViT-B-32-multilingual-v1`
uses: a multilingual DistilBERT whose mean-pooled output a 768→512 layer maps into CLIP
ViT-B/32's image space. It is loaded here with transformers and safetensors, the same arithmetic
as the library made for the format (tests/test_text_encoder.py checks they agree), so the Space
installs nothing more.

A text encoder only makes sense against the image space it was trained for: which one is declared
in the model folder's `buscador.json` ({"image_model": ...}) or, for known Hub models, below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from indexing import config
from indexing.embedder import words_read
from indexing.errors import BuscadorError

log = logging.getLogger(__name__)

# Hub text models and the image model whose space they were trained into.
KNOWN_ALIGNMENTS = {
    "sentence-transformers/clip-ViT-B-32-multilingual-v1": "openai/clip-vit-base-patch32",
}
DECLARATION = "buscador.json"


class TextEncoder:
    """Texts in, float32 L2-normalised vectors in the image space of `image_model` out."""

    def __init__(self, name: str, *, device: str | None = None) -> None:
        self.model_name = config.model_identity(name)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        transformers_logging.disable_progress_bar()
        try:
            root = _folder(name)
            modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
            self.image_model = _image_model(name, root)
            kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
            if kinds[:2] != ["Transformer", "Pooling"] or not set(kinds[2:]) <= {"Dense", "Normalize"}:
                raise BuscadorError(f"text model {name}: unsupported modules {kinds}")
            self.model = AutoModel.from_pretrained(root / modules[0]["path"]).to(self.device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(root / modules[0]["path"])
            self.max_tokens = _max_tokens(root / modules[0]["path"], self.tokenizer)
            _check_mean_pooling(root / modules[1]["path"])
            self.dense = next(
                (
                    _dense(root / m["path"], self.device)
                    for m, kind in zip(modules, kinds, strict=True)
                    if kind == "Dense"
                ),
                None,
            )
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
        ).to(self.device)
        hidden = self.model(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.dense is not None:
            weight, bias, activation = self.dense
            pooled = activation(torch.nn.functional.linear(pooled, weight, bias))
        return torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()

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


def _dense(folder: Path, device: str) -> tuple[torch.Tensor, torch.Tensor | None, torch.nn.Module]:
    """The Dense layer's weight, bias and activation (Identity or Tanh), read without pickle."""
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
    weight = weights["linear.weight"].float().to(device)
    bias = weights.get("linear.bias")
    return weight, (bias.float().to(device) if bias is not None else None), activation
