"""A tiny random text model in the sentence-transformers format of
sentence-transformers/clip-ViT-B-32-multilingual-v1 (a DistilBERT, mean pooling, a Dense layer into
512-d), saved with the library itself, with a WordPiece tokenizer trained here on a few sentences."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import DistilBertConfig, DistilBertModel, PreTrainedTokenizerFast

SENTENCES = [
    "un gato rojo en la playa",
    "a red cat on the beach",
    "un perro azul en la nieve",
    "ein Hund im Schnee",
    "une tasse de café",
]


def make_tiny_multilingual(
    out: Path, image_model: str | None, *, seed: int = 0, full_size: bool = False
) -> Path:
    """Save the model into `out`; `image_model`: what its buscador.json declares (None: nothing).
    `full_size`: the published model's sizes (a multilingual DistilBERT: 119,547 token embeddings,
    768 wide, 6 layers), random weights, for timing it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(
        SENTENCES, trainers.WordPieceTrainer(vocab_size=300, special_tokens=special)
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(seed)
    sizes = (
        {"vocab_size": 119547, "dim": 768, "hidden_dim": 3072, "n_layers": 6, "n_heads": 12}
        if full_size
        else {"vocab_size": fast.vocab_size, "dim": 32, "hidden_dim": 64, "n_layers": 2, "n_heads": 2}
    )
    config = DistilBertConfig(**sizes, max_position_embeddings=512 if full_size else 128)
    base = out / "base"
    DistilBertModel(config).save_pretrained(base)
    fast.save_pretrained(base)
    word = st.Transformer(str(base), max_seq_length=128)
    dim = word.get_embedding_dimension()
    model = SentenceTransformer(
        modules=[
            word,
            st.Pooling(dim, pooling_mode="mean"),
            st.Dense(dim, 512, bias=False, activation_function=torch.nn.Identity()),
        ]
    )
    model.save(str(out / "model"))
    if image_model is not None:
        (out / "model" / "buscador.json").write_text(json.dumps({"image_model": image_model}))
    return out / "model"
