"""Configuration in one place: defaults, and the environment variables and flags that override them.

Every environment variable the project reads is read here, by the functions below.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from indexing.errors import BuscadorError

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
DEFAULT_INDEX_DIR = "index"
# The model's precisions (indexing.precision): named here, where the command line reads them
# without loading torch.
PRECISIONS = ("auto", "fp32", "bf16")
# What runs the model's towers on the CPU (indexing.embedder): under auto, OpenVINO where installed
# (a build's image batches; the app's queries, its towers made at start-up: ui.startup).
RUNTIMES = ("auto", "torch", "openvino")
# Distilled into CLIP ViT-B/32's image space from a multilingual DistilBERT: 50+ languages.
MULTILINGUAL_TEXT_MODEL = "sentence-transformers/clip-ViT-B-32-multilingual-v1"

# A running app looks for a newer build of its index this often (seconds): a local folder's
# manifest is one stat, a Hub repository's latest commit one API call.
INDEX_CHECK_LOCAL = 10.0
INDEX_CHECK_HUB = 300.0

# `build --watch`: how often a folder is listed again for new, changed or deleted images.
WATCH_SECONDS = 30.0
# Folders a folder build never enters (besides hidden ones): NAS and system housekeeping, whose
# pictures are thumbnails of the real ones (a Synology NAS keeps five in @eaDir for every photo),
# trash or snapshots, and a web project's dependencies. rclip leaves out @eaDir and node_modules.
SKIPPED_FOLDERS = frozenset(
    {
        "@eaDir",  # Synology: thumbnails and metadata
        "#recycle",  # Synology: recycle bin
        "#snapshot",  # Synology: snapshots
        "@Recycle",  # QNAP: recycle bin
        "@Recently-Snapshot",  # QNAP: snapshots
        "$RECYCLE.BIN",  # Windows: recycle bin
        "System Volume Information",  # Windows
        "lost+found",  # Linux: file system repairs
        "__MACOSX",  # macOS: resource forks from zip files
        "node_modules",
    }
)

TOP_K_DEFAULT = 12
# The most results one query may ask for (the CLI's bound; the app sets a smaller one of its own).
MAX_K = 1000
BATCH_SIZE = 32
# A text search tells how many photos have its words in their caption (a link narrows to them):
# looked up in the captions' word index where the index has one (indexing.catalog), else only in an
# index with at most this many captions, as each search scans them (0.01–0.05 s at this many, 0.2 s
# at 200,000: `bench_captions`).
CAPTIONS_HINTED = 50_000
# Where a build decodes images (indexing.build): `auto` picks by the device.
DECODE_MODES = ("auto", "threads", "processes", "gpu")
# On a GPU a model call of 128 images takes about as long as one of 32 (26 against 22 ms in a build
# on an H200), so a build there embeds 128 at a time.
GPU_BATCH_SIZE = 128
# A search within a folder searches the index, leaving the other images out: exact with a flat
# index; an approximate one keeps recall@10 above the floor while the folder holds this share of
# it or more (measured, benchmarks/RESULTS.md). Below it, the search is exact, over the folder's
# vectors, which the app keeps in memory for the last folders searched, up to FOLDER_CACHE_MB.
FOLDER_SHARE = {"hnsw": 0.1, "ivfpq": 0.01}
FOLDER_CACHE_MB = 256
# Above this many vectors `--index-type auto` picks HNSW (approximate) over exact search.
FLAT_LIMIT = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# Approximate indexes get the cheapest search settings that reach this recall@10, measured.
RECALL_FLOOR = 0.95
# What the FAISS index may take in memory (MB) when `--index-type auto` chooses it: a 16 GB CPU
# Space keeps room for the models, the app and the catalog's page cache. See indexing.ann.
MEMORY_BUDGET_MB = 1024
# Near-duplicates: results (or images) whose vectors' cosine is at least this are folded together.
# clip-retrieval's default for the same job; re-encoded or resized copies of a photo score above it
# with CLIP ViT-B/32, distinct photos of one scene below.
DUPLICATE_THRESHOLD = 0.94
# When folding near-duplicate results, at most this many nearest images are looked at to find K.
COLLAPSE_CANDIDATES = 2000
# Only the first 77 CLIP tokens count; cutting the text first keeps a huge paste cheap.
MAX_QUERY_CHARS = 2000
THUMBNAIL_SIDE = 256
# The app shows an original photo (of an index of a folder on its machine) at most this many
# pixels on its long side: sharp on a 4K screen's browser window, a few hundred KB to send.
PHOTO_SIDE = 2048
# Room (MB) on the app's disk for the seekable copies of the videos it plays (ui.video_copies); a
# video bigger than half of it is streamed as it comes, without seeking. $VIDEO_COPIES_MB overrides.
VIDEO_COPIES_MB = 2048
# A visitor's uploaded photo (their query) is deleted from the app's disk this many seconds after
# it came, checked every UPLOADS_CHECK_S (and every one when the app stops): a demo keeps no one's
# photos, nor fills its disk with them.
UPLOADS_KEPT_S = 3600
UPLOADS_CHECK_S = 300
# Pixels after reduced-size JPEG decoding; larger images are refused rather than exhausting memory.
MAX_DECODED_PIXELS = 100_000_000
# Files are read whole before decoding; bigger ones are refused rather than filling memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
# Seconds a native decoder (libheif, LibRaw, FFmpeg: indexing.guard) may take on one file before
# its guard process is ended and the file skipped as one it is stuck on (a 12-megapixel HEIC takes
# 0.4 s, a camera RAW's development 0.2 s, a frame of a 4K video about 1 s).
DECODE_TIMEOUT_S = 120
# A video copied for the app to play (ui.video_copies) in a guard process: a copy runs at the
# disk's speed (a gigabyte in seconds), so one still going after this long is stuck.
VIDEO_COPY_TIMEOUT_S = 600
# Seconds a download (`search --image URL`, a dataset's web addresses) waits for the server before
# saying it could not download the image.
URL_TIMEOUT_S = 30
# Times a download is tried when the server answers "not now" (HTTP 429, 5xx) or drops it.
URL_TRIES = 3


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity (taskset, a container's cpuset), and no more than
    its container's CPU quota (`docker --cpus`, a Kubernetes limit; cgroup v2 or v1), rounded up.
    os.cpu_count() counts the whole machine's, which in a container can be many times more."""
    try:
        cores = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform (macOS)
        cores = os.cpu_count() or 1
    quota = _cpu_quota(cgroup)
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cpu_quota(cgroup: Path) -> float | None:
    """How many CPUs' worth of time the container may use, or None when it has no limit."""
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()[:2]  # v2: "200000 100000" or "max …"
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):  # v1
        try:
            quota = int((cgroup / folder / "cpu.cfs_quota_us").read_text())
            period = int((cgroup / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def model_threads() -> int | None:
    """How many threads the model may use on the CPU: the usable cores, or None where
    OMP_NUM_THREADS is set (torch follows it)."""
    return None if _env("OMP_NUM_THREADS") else usable_cores()


def _env(name: str) -> str | None:
    """An environment variable, with an empty value taken as unset (as CI variables often are)."""
    return os.environ.get(name) or None


def model_name(override: str | None = None) -> str:
    """The CLIP model to use: the flag, else $CLIP_MODEL, else the default Hub id."""
    return override or _env("CLIP_MODEL") or DEFAULT_MODEL


def precision(override: str | None = None) -> str:
    """The model's precision: the flag, else $CLIP_PRECISION, else "auto" (see indexing.precision)."""
    return override or _env("CLIP_PRECISION") or "auto"


def runtime(override: str | None = None) -> str:
    """What runs the model on the CPU: the flag, else $CLIP_RUNTIME, else "auto"."""
    return override or _env("CLIP_RUNTIME") or "auto"


def cache_dir() -> Path:
    """Where converted models are kept: $BUSCADOR_CACHE, else $XDG_CACHE_HOME/buscador, else
    ~/.cache/buscador."""
    if folder := _env("BUSCADOR_CACHE"):
        return Path(folder).expanduser()
    return Path(_env("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "buscador"


def duplicate_threshold(override: float | None = None) -> float:
    """Near-duplicate cosine: the argument, else $DUPLICATE_THRESHOLD, else DUPLICATE_THRESHOLD.

    It depends on the model (a random-weight test model needs about 0.999), hence a setting.
    """
    if override is not None:
        return override
    value = _env("DUPLICATE_THRESHOLD")
    try:
        return float(value) if value else DUPLICATE_THRESHOLD
    except ValueError:
        raise BuscadorError(
            f"DUPLICATE_THRESHOLD must be a number from 0 (off) to 1, not {value!r}",
            "bad_threshold",
            value=value,
        ) from None


def text_model(override: str | None = None) -> str | None:
    """The second text encoder, for queries in other languages: the flag, else $TEXT_MODEL; in a
    Hugging Face Space, the multilingual CLIP text model by default. "none" turns it off."""
    name = override or _env("TEXT_MODEL") or (MULTILINGUAL_TEXT_MODEL if in_space() else None)
    return None if name == "none" else name


def index_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the index lives: the flag, else $INDEX_DIR, else ./index."""
    return Path(override or _env("INDEX_DIR") or DEFAULT_INDEX_DIR)


def index_repo(override: str | None = None) -> str | None:
    """The Hub dataset repository the app pulls its index from: the argument, else $INDEX_REPO."""
    return override or _env("INDEX_REPO")


def index_revision(override: str | None = None) -> str | None:
    """The branch, tag or commit of that repository: the argument, else $INDEX_REVISION."""
    return override or _env("INDEX_REVISION")


def index_check_seconds(pulled: bool) -> float:
    """How often a running app looks for a newer build of its index (ui.refresh): $INDEX_CHECK_SECONDS,
    else every INDEX_CHECK_HUB seconds for an index pulled from the Hub and INDEX_CHECK_LOCAL for a
    local one; 0 never looks."""
    value = _env("INDEX_CHECK_SECONDS")
    if value is None:
        return INDEX_CHECK_HUB if pulled else INDEX_CHECK_LOCAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < math.inf:
        raise BuscadorError(
            "INDEX_CHECK_SECONDS must be a number of seconds (0: never look for a newer index), "
            f"not {value!r}"
        )
    return seconds


def video_copies_room() -> int:
    """Bytes of disk the app may fill with seekable copies of videos: $VIDEO_COPIES_MB megabytes,
    else VIDEO_COPIES_MB; 0 streams every video (no seeking past what has arrived)."""
    value = _env("VIDEO_COPIES_MB")
    try:
        megabytes = float(value) if value else VIDEO_COPIES_MB
    except ValueError:
        megabytes = -1.0
    if not 0 <= megabytes < math.inf:
        raise BuscadorError(
            f"VIDEO_COPIES_MB must be a number of megabytes (0: stream videos, no copies), not {value!r}"
        )
    return int(megabytes * 1e6)


def hub_token(override: str | None = None) -> str | None:
    """The Hugging Face token for pushes and private repositories: the argument, else $HF_TOKEN."""
    return override or _env("HF_TOKEN")


def in_space() -> bool:
    """Whether we run inside a Hugging Face Space (which sets $SPACE_ID)."""
    return _env("SPACE_ID") is not None


def app_password() -> str | None:
    """The password the app asks for before showing anything ($APP_PASSWORD), or None: open to
    whoever reaches it (on 127.0.0.1 by default, this computer alone)."""
    return _env("APP_PASSWORD")


def server_name_set() -> bool:
    """Whether $GRADIO_SERVER_NAME chooses the app's address (Gradio reads it itself)."""
    return _env("GRADIO_SERVER_NAME") is not None


def model_identity(name: str) -> str:
    """How a model is recorded in an index: local directories by absolute path, Hub ids as given."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name
