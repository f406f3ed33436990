"""Configuration in one place: defaults, and the environment variables and flags that override them."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_INDEX_DIR = "index"
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = REPO_ROOT / "samples"

TOP_K_DEFAULT = 12
TOP_K_MAX = 50  # the app's slider; the CLI allows more
CLI_TOP_K_MAX = 1000
BATCH_SIZE = 32
# Above this many vectors `--index-type auto` picks HNSW (approximate) over exact search.
FLAT_LIMIT = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
# Only the first 77 CLIP tokens count; cutting the text first keeps a huge paste cheap.
MAX_QUERY_CHARS = 2000
THUMBNAIL_SIDE = 256
# Pixels after reduced-size JPEG decoding; larger images are refused rather than exhausting memory.
MAX_DECODED_PIXELS = 100_000_000
# Files are read whole before decoding; bigger ones are refused rather than filling memory.
MAX_FILE_BYTES = 256 * 1024 * 1024


def model_name(override: str | None = None) -> str:
    """The CLIP model to use: the flag, else $CLIP_MODEL, else the default Hub id."""
    return override or os.environ.get("CLIP_MODEL") or DEFAULT_MODEL


def index_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the index lives: the flag, else $INDEX_DIR, else ./index."""
    return Path(override or os.environ.get("INDEX_DIR") or DEFAULT_INDEX_DIR)


def model_identity(name: str) -> str:
    """How a model is recorded in an index: local directories by absolute path, Hub ids as given."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name
