"""A tiny random-weight CLIP saved with the real tokenizer and preprocessor files, for fast tests.

Also runnable: `python -m tests.tiny_clip OUT_DIR` (CI uses it to run the app without the Hub).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel

# Near-duplicates for the tiny random model: distinct generated images score up to about 0.994
# with it, re-encoded or resized copies 0.9999 and more (its random weights make all images alike).
DUPLICATE_THRESHOLD = 0.999

SHARED_MODEL = Path(__file__).resolve().parent.parent.parent / "shared" / "clip-vit-base-patch32"
SHARED_FILES = (
    "merges.txt",
    "vocab.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
)


def model_files() -> Path:
    """openai/clip-vit-base-patch32's config and tokenizer (no weights): ../shared, else the Hub."""
    if SHARED_MODEL.is_dir():
        return SHARED_MODEL
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download("openai/clip-vit-base-patch32", allow_patterns=["config.json", *SHARED_FILES])
    )


def make_tiny_clip(out: Path, *, projection_dim: int = 512, seed: int = 0) -> Path:
    """Save a 2-layer CLIP (512-d output like ViT-B/32) into `out` and return it."""
    torch.manual_seed(seed)
    cfg = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "vocab_size": 49408,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 224,
            "patch_size": 32,
        },
        projection_dim=projection_dim,
    )
    out.mkdir(parents=True, exist_ok=True)
    CLIPModel(cfg).save_pretrained(out)
    source = model_files()
    for name in SHARED_FILES:
        shutil.copy(source / name, out / name)
    return out


if __name__ == "__main__":
    print(make_tiny_clip(Path(sys.argv[1])))
