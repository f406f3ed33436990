"""Camera RAW files (.CR2, .CR3, .NEF, .ARW, .DNG, ...): an upright RGB picture of each, through
rawpy (LibRaw) where it is installed (the project does not need it).

The camera's own JPEG preview is used where it is large enough for what is asked (most cameras
embed one of full or near-full size: decoding it is as quick as any JPEG's); else the RAW is
developed at half size with the camera's white balance (LibRaw: 0.17 s for an uncompressed
24-megapixel DNG, three times a JPEG's reduced-size decode; benchmarks/bench_camera_raw.py). RAW
files are told by their names, not their bytes: most are TIFFs like any other, whose first image
Pillow would take (often a 160×120 thumbnail).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from indexing.errors import BadImage

try:
    import rawpy
except ImportError:
    rawpy = None

AVAILABLE = rawpy is not None
EXTENSIONS = frozenset(
    {
        ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mef", ".mos",
        ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
    }
)  # fmt: skip
# The camera's JPEG of the same shot (RAW+JPEG), beside which a folder build leaves its RAW out.
TWIN_SUFFIXES = (".jpg", ".jpeg")
# LibRaw's orientation codes, as the turn that makes a preview upright.
_TURNS = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}
_EXIF_ORIENTATION = 0x0112


def named_raw(path: object) -> bool:
    """Whether `path` is a file with a camera RAW's name (.NEF, .dng, ...)."""
    return isinstance(path, Path) and path.suffix.lower() in EXTENSIONS


def taken(path: Path) -> str:
    """When the camera says the RAW at `path` was taken ("YYYY-MM-DDTHH:MM:SS", as LibRaw reads
    it from the file's EXIF), or "" (no rawpy, no date, an unreadable file)."""
    if rawpy is None:
        return ""
    try:
        with rawpy.imread(str(path)) as raw:
            when = getattr(getattr(raw, "other", None), "timestamp", None)  # rawpy ≥ 0.22 reads it
    except (rawpy.LibRawError, OSError, ValueError, OverflowError):
        return ""
    return when.isoformat(timespec="seconds") if when is not None and when.year > 1970 else ""  # 0: none


def require() -> None:
    """Raise BadImage where rawpy is not installed."""
    if rawpy is None:
        raise BadImage("a camera RAW file: pip install rawpy to read it", "camera_raw")


def develop(data: bytes, side: int, check_size: Callable[[int, int], None]) -> Image.Image:
    """An upright RGB picture of the RAW file `data` whose short side is at least `side` where the
    file allows: its preview, else its half-size development, whose width and height
    `check_size` may refuse first. Raises BadImage for a file LibRaw cannot read, or any RAW
    without rawpy."""
    require()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            preview = _preview(raw, side)
            if preview is not None:
                return preview
            check_size(raw.sizes.width // 2, raw.sizes.height // 2)
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        detail = _said(exc)
        raise BadImage(f"corrupt or truncated image ({detail})", "corrupt_image", detail=detail) from None
    if pixels.ndim != 3 or pixels.shape[2] != 3:  # (a damaged file's development: one channel, say)
        raise BadImage("corrupt or truncated image (its development is no colour picture)", "corrupt_image")
    return Image.fromarray(pixels, "RGB")


def _said(exc: Exception) -> str:
    """What went wrong, in a line: LibRaw's "Input/output error" is a file it read past the end of
    (cut short, or damaged), not the disk's error it sounds like; its messages come as bytes."""
    if isinstance(exc, rawpy.LibRawIOError):
        return "its data runs past the end of the file: cut short, or damaged"
    said = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], bytes) else str(exc)
    return " ".join((said.decode(errors="replace") if isinstance(said, bytes) else said).split())


def _preview(raw: Any, side: int) -> Image.Image | None:
    """The camera's embedded preview, upright, if it is a readable JPEG or bitmap whose short side
    is at least `side`; else None (the RAW is developed instead)."""
    try:
        thumb = raw.extract_thumb()
        if thumb.format == rawpy.ThumbFormat.JPEG:
            picture = Image.open(io.BytesIO(thumb.data), formats=["JPEG"])
            oriented = picture.getexif().get(_EXIF_ORIENTATION, 1) != 1  # by its own EXIF
            picture.draft("RGB", (side, side))
            picture = ImageOps.exif_transpose(picture).convert("RGB")
        elif thumb.format == rawpy.ThumbFormat.BITMAP:
            picture, oriented = Image.fromarray(thumb.data).convert("RGB"), False
        else:
            return None
    except (
        rawpy.LibRawNoThumbnailError,
        rawpy.LibRawUnsupportedThumbnailError,
        OSError,
        ValueError,
        SyntaxError,
        TypeError,  # (a bitmap of a shape Pillow has no mode for)
    ):
        return None
    if min(picture.size) < side:
        return None
    turn = None if oriented else _TURNS.get(raw.sizes.flip)
    return picture.transpose(turn) if turn is not None else picture
