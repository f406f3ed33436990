"""Image decoding: any file, bytes, web address or PIL image in, a clean RGB picture (and CLIP-ready
pixels) out.

Handles EXIF orientation, palette/alpha/CMYK/16-bit modes, and decompression bombs (by the pixels a
decode would make); decodes JPEGs at reduced size (PIL `draft`) when full resolution is not
needed, which is most of the cost for 12 MP photos. Files and downloads are read whole, up to a
size limit; a video's file is read by FFmpeg (indexing.video).
"""

from __future__ import annotations

import functools
import http.client
import importlib
import importlib.util
import io
import os
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from indexing import camera_raw, heif, tiff, video
from indexing.config import (
    MAX_DECODED_PIXELS,
    MAX_FILE_BYTES,
    PHOTO_SIDE,
    THUMBNAIL_SIDE,
    URL_TIMEOUT_S,
    URL_TRIES,
)
from indexing.errors import BadImage
from indexing.guard import guarded

# HEIC/HEIF, iPhones' photos, where pi-heif (libheif's decoding) or pillow-heif is installed: decoded
# in a guard process (indexing.guard), where libheif is given to Pillow (`_libheif`).
_LIBHEIF = ("pi_heif", "pillow_heif")
HEIF = any(importlib.util.find_spec(name) is not None for name in _LIBHEIF)

ImageInput = str | Path | bytes | BinaryIO | Image.Image
# The formats Pillow opens for us: those of photo collections, datasets and browsers' uploads
# (HEIF where libheif was given to Pillow, in a guard process). Pillow knows forty more by their
# first bytes, whatever a file's name: its EPS plug-in hands the file to Ghostscript, which runs
# PostScript as a program (a "holiday.jpg" holding PostScript did, and Ghostscript's failure
# stopped the build with a traceback), and a public app has no use for the risk of the rest
# (Photoshop, FITS, SGI, ...).
PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "DIB", "AVIF", "HEIF", "ICO", "PPM")
# Formats outside them that a refused file is named by: those people have and whose first bytes
# say so beyond doubt (some others' would be mistaken: a TGA's for an icon's).
_TOLD = {
    "EPS": "EPS (PostScript)",
    "PSD": "PSD (Photoshop)",
    "JPEG2000": "JPEG 2000",
    "ICNS": "ICNS",
    "QOI": "QOI",
    "DDS": "DDS",
    "FITS": "FITS",
}
# The brands a HEIC file's `ftyp` box names first (an iPhone's, Samsung's; still or burst), and
# those of a still picture, which is checked before libheif decodes it.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_HEIC_STILLS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1"})

# Pillow warns of damaged EXIF data it reads past ("Truncated File Read", "Corrupt EXIF data") while
# the picture decodes: a line naming Pillow's file and line amid a build's progress tells a user
# nothing (what does not decode is a BadImage, with its reason).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

# Pillow refuses to open a picture of over 179 megapixels, before knowing what a reduced-size
# decode would make of it: a 24000×8000 panorama JPEG (8 MB) decodes at 3000×1000 for CLIP, and its
# header holds when and where it was taken. The limit that guards memory is ours, on the pixels a
# decode would make (MAX_DECODED_PIXELS, checked after `draft`, before any pixel is decoded).
Image.MAX_IMAGE_PIXELS = None

# What a folder build reads: the common formats, AVIF where Pillow was built with it, HEIC/HEIF
# with pi-heif (or pillow-heif), camera RAW with rawpy, videos (a frame of each) with PyAV. Formats this
# installation cannot read are reported, with what reads them.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
    | ({".avif"} if features.check("avif") else set())
    | ({".heic", ".heif"} if HEIF else set())
    | (camera_raw.EXTENSIONS if camera_raw.AVAILABLE else set())
    | (video.EXTENSIONS if video.AVAILABLE else set())
)
_HEIF = ("HEIC (iPhone photo)", "pip install pi-heif to index them")
_RAW = ("camera RAW", "pip install rawpy to index them")
_VIDEO = ("video", "pip install av to index them (a frame of each)")
UNREAD_FORMATS = (
    {
        suffix: kind
        for suffix, kind in {
            ".heic": _HEIF,
            ".heif": _HEIF,
            ".avif": ("AVIF", "a Pillow built with AVIF (pip install -U pillow) indexes them"),
        }.items()
        if suffix not in IMAGE_EXTENSIONS
    }
    | ({} if camera_raw.AVAILABLE else dict.fromkeys(camera_raw.EXTENSIONS, _RAW))
    | ({} if video.AVAILABLE else dict.fromkeys(video.EXTENSIONS, _VIDEO))
)


def load_image(src: ImageInput, *, min_side: int | None = None, camera: bool = False) -> Image.Image:
    """Decode `src` into an RGB image, upright per its EXIF orientation.

    With `min_side`, a JPEG is decoded at the smallest DCT scale whose both sides are still at
    least `min_side` pixels (a 4000×3000 photo decodes as 500×375 for CLIP's 224). A camera RAW
    file (by its name, or `camera` for its bytes) gives its preview or development
    (indexing.camera_raw), at least `min_side` (or a thumbnail's side) on its short side, and a
    video file one frame (indexing.video), scaled down as far. Raises BadImage with a readable
    reason for anything that is not a usable image.
    """
    if isinstance(src, Image.Image):
        _check_size(*src.size)
        return _to_rgb(ImageOps.exif_transpose(src))
    side = max(min_side or 0, THUMBNAIL_SIDE)
    if isinstance(src, (str, Path)):
        src = _file(Path(src), min_side, side, camera=camera)
        if isinstance(src, Image.Image):
            return src
    data = src if isinstance(src, bytes) else src.read()
    if camera:
        camera_raw.require()
        return guarded(_develop, data, side)
    if heif.is_iso(data):
        return _heif_guarded(data[:12], data, min_side)
    return _decoded(data, min_side)


def _file(path: Path, min_side: int | None, side: int, *, camera: bool) -> Image.Image | bytes:
    """The file at `path` decoded in a guard process where a native decoder reads it, from its
    path (a video's frame, a RAW's development, a HEIF's picture, a TIFF's), else its bytes."""
    if video.named_video(path):
        video.require()
        return guarded(video.frame, path, side, _check_size)
    if camera or camera_raw.named_raw(path):
        camera_raw.require()
        return guarded(_develop, path, side)  # (read there: a RAW is tens of megabytes)
    with opened(path) as file:
        head = file.read(12)
    if heif.is_iso(head):  # (read there too: 3.6 MB through the pipe took 3-4 ms of 11)
        return _heif_guarded(head, path, min_side)
    if tiff.is_tiff(head):
        # libtiff, the riskiest decoder Pillow keeps (a file handed by path: a visitor's upload,
        # an original shown, a query from the command line). A build hands its files' bytes,
        # read for their hash, and decodes them where it is: through the guard's pipe a
        # 12-megapixel TIFF of 34 MB took 196-228 ms against 96-101.
        return guarded(_decode_tiff, path, min_side)
    return read_file(path)


def _heif_guarded(head: bytes, src: Path | bytes, min_side: int | None) -> Image.Image:
    """An ISO file whose first bytes are `head` (a HEIF: HEIC, AVIF; libheif's or libavif's to
    decode) decoded in a guard process, from its path or its bytes."""
    if not HEIF and head[8:12] in _HEIC_BRANDS:  # (an iPhone's photo, or renamed .jpg by an app)
        raise BadImage("a HEIC photo (an iPhone's): pip install pi-heif to read it", "heic")
    return guarded(_decode_heif, src, min_side)


def open_picture(file: BinaryIO) -> Image.Image:
    """`Image.open` of `file` (its header read, not its pixels) in one of PILLOW_FORMATS; raises
    BadImage ("unread_format") for a file of another format Pillow knows, and Pillow's
    UnidentifiedImageError for anything else."""
    _all_plugins()
    try:
        return Image.open(file, formats=[name for name in PILLOW_FORMATS if name in Image.OPEN])
    except UnidentifiedImageError:
        file.seek(0)
        known = _known_format(file.read(16))
        if known is None:
            raise
        raise BadImage(
            f"a file in {known} format, which is not read here (JPEG, PNG, WebP, GIF, TIFF, BMP, "
            "HEIC and AVIF are)",
            "unread_format",
            format=known,
        ) from None


@functools.cache
def _all_plugins() -> None:
    """Pillow's plug-ins all registered (it registers the rarer ones at the first file the common
    ones do not open): so that PILLOW_FORMATS finds those it has, and `_known_format` names others."""
    Image.init()


def _known_format(head: bytes) -> str | None:
    """The name of the format of a file beginning with `head`, where it is one of _TOLD (by its
    plug-in's check of those bytes alone: nothing decoded); None for any other."""
    for name, told in _TOLD.items():
        accept = Image.OPEN.get(name, (None, None))[1]
        said = accept(head) if accept is not None else False
        if said and not isinstance(said, str):  # (a str is Pillow's warning, not a match)
            return told
    return None


def _decoded(data: bytes, min_side: int | None) -> Image.Image:
    """`data` decoded by Pillow, as `load_image` says."""
    if not data:
        raise BadImage("empty file (0 bytes)", "empty_file")
    try:
        img = open_picture(io.BytesIO(data))
        if min_side:
            img.draft(None, (min_side, min_side))
        _check_size(*img.size)
        img.load()
        return _to_rgb(ImageOps.exif_transpose(img))
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not an image, or a format we cannot read", "not_an_image") from None
    except (OSError, ValueError, SyntaxError, EOFError, RuntimeError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError/ValueError (libheif's
        # plug-ins as RuntimeError too).
        detail = " ".join(str(exc).split())  # (one line: libheif's end with a line break)
        raise BadImage(f"corrupt or truncated image ({detail})", "corrupt_image", detail=detail) from None


def _decode_heif(src: Path | bytes, min_side: int | None) -> Image.Image:
    """A HEIF file (its path or bytes) decoded (in a guard process): a HEIC's thumbnail where it
    serves, else its picture once its boxes read whole (libheif crashes on some damaged files
    whose boxes do not)."""
    data = read_file(src) if isinstance(src, Path) else src
    _libheif()
    if HEIF and data[8:12] in _HEIC_STILLS:
        if min_side and (small := _heif_thumbnail(data, min_side)) is not None:
            return small
        if not heif.well_formed(data):
            raise BadImage("corrupt or truncated image (its HEIF boxes do not read)", "corrupt_image")
    return _reduced(_decoded(data, min_side), min_side)


def _decode_tiff(path: Path, min_side: int | None) -> Image.Image:
    """A TIFF file decoded (in a guard process), reduced as `_reduced` says."""
    return _reduced(_decoded(read_file(path), min_side), min_side)


def _reduced(img: Image.Image, side: int | None) -> Image.Image:
    """`img` reduced as a JPEG is decoded at a reduced size (by 2 to 8, both sides still at least
    `side`; as it is without a side): what a guard process sends back is up to 64 times smaller
    (a 12-megapixel HEIC's 36 MB took 120 ms)."""
    if not side:
        return img
    factor = min(8, min(img.size) // side)
    return img.reduce(factor) if factor > 1 else img


@functools.cache
def _libheif() -> None:
    """Let Pillow open HEIC files with libheif, in this process (a guard process: indexing.guard)."""
    for name in _LIBHEIF:
        try:
            importlib.import_module(name).register_heif_opener()
            return
        except Exception:  # (not installed, or its libheif does not load: HEICs then do not read)
            continue


def _develop(src: Path | bytes, side: int) -> Image.Image:
    """A camera RAW file (its path or bytes) developed (in a guard process): indexing.camera_raw."""
    return _reduced(
        camera_raw.develop(read_file(src) if isinstance(src, Path) else src, side, _check_size), side
    )


def read_file(path: Path) -> bytes:
    """A file's bytes, refusing one over MAX_FILE_BYTES before reading it. Raises BadImage."""
    with opened(path) as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_FILE_BYTES:
            mb, limit = size // 2**20, MAX_FILE_BYTES // 2**20
            raise BadImage(
                f"file too large ({mb} MB; the limit is {limit} MB)", "file_too_large", mb=mb, limit=limit
            )
        return file.read()


@contextmanager
def opened(path: Path) -> Iterator[BinaryIO]:
    """The file at `path`, open for reading; what stops reading it raised as BadImage."""
    try:
        with path.open("rb") as file:
            yield file
    except FileNotFoundError:
        raise BadImage("file not found", "file_not_found") from None
    except PermissionError:
        raise BadImage("permission denied", "permission_denied") from None
    except IsADirectoryError:
        raise BadImage("is a directory", "is_directory") from None


@dataclass(frozen=True)
class WebFile:
    """An image a dataset names by its web address: a build downloads it (`read_url`) once it
    knows the row is new or changed; `failed` says why a download did not work."""

    url: str
    failed: str = ""


def is_url(text: str) -> bool:
    """Whether `text` names an image on the web rather than a file."""
    return text.startswith(("http://", "https://"))


def read_url(url: str, timeout: float = URL_TIMEOUT_S) -> bytes:
    """The bytes of the file at `url` (http or https), refusing one over MAX_FILE_BYTES without
    reading the rest. A server that answers "not now" (HTTP 429, 500, 502, 503, 504: an image host
    limiting a build's 32 downloads at once) or drops the connection is asked again, up to
    URL_TRIES times in all, after the wait it asks for (Retry-After, at most 30 s) or 1 s, then 2 s.
    Raises BadImage saying why the file could not be had (offline, unknown host, HTTP 404, slow
    server)."""
    for attempt in range(1, URL_TRIES + 1):
        again = attempt < URL_TRIES
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "buscador-visual"})
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                data = answer.read(MAX_FILE_BYTES + 1)
            break
        except urllib.error.HTTPError as exc:
            if again and exc.code in _NOT_NOW:
                time.sleep(_retry_after(exc.headers.get("Retry-After"), attempt))
                continue
            raise BadImage(
                f"could not download it (HTTP {exc.code} {exc.reason})", "download_failed"
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if again and isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected)):
                time.sleep(_retry_after(None, attempt))
                continue
            said = getattr(reason, "strerror", None) or reason  # without "[Errno 111]"
            raise BadImage(f"could not download it ({said})", "download_failed") from None
    if len(data) > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // 2**20
        raise BadImage(
            f"file too large (over the {limit} MB limit)",
            "file_too_large",
            mb=limit,
            limit=limit,
        )
    return data


# HTTP answers that mean "not now" rather than "no": the download is tried again.
_NOT_NOW = frozenset({429, 500, 502, 503, 504})


def _retry_after(asked: str | None, attempt: int) -> float:
    """Seconds to wait before trying a download again: what the server asked for in seconds (at
    most 30), else 1 s after the first try and 2 s after the second."""
    try:
        seconds = float(asked or "")
    except ValueError:  # none, or an HTTP date
        seconds = -1.0
    return min(seconds, 30.0) if seconds >= 0 else float(2 ** (attempt - 1))  # nan, below 0: ours


def _heif_thumbnail(data: bytes, min_side: int) -> Image.Image | None:
    """A HEIC's thumbnail, decoded, where it holds one with both sides at least `min_side`
    (indexing.heif.thumbnail_file): an iPhone's 320×240, decoded 26 times quicker than its 12
    megapixels, as a JPEG decodes at a reduced size; None else, or where it does not decode."""
    found = heif.thumbnail_file(data, min_side)
    if found is None:
        return None
    try:
        img = open_picture(io.BytesIO(found))
        img.load()
    except (BadImage, OSError, ValueError, SyntaxError, EOFError, RuntimeError):
        return None
    return _to_rgb(img)


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_DECODED_PIXELS:
        limit = MAX_DECODED_PIXELS // 1_000_000
        raise BadImage(
            f"image too large ({width}×{height} pixels; the limit is {limit} megapixels)",
            "too_many_pixels",
            width=width,
            height=height,
            limit=limit,
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparent areas become white, 16-bit is rescaled."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        if img.mode == "F":  # (a scientific TIFF's NaN and infinities: black, not a NumPy warning)
            arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


# Past this ratio of long to short side only the part of the picture that CLIP's crop keeps is
# resized: a 30000×1 strip would otherwise become 224 × 6.7 million pixels (4.5 GB).
MAX_RESIZED_ASPECT = 8


def clip_pixels(img: Image.Image, size: int, *, fast: bool) -> np.ndarray:
    """Resize the short side to `size` (bicubic) and centre-crop to size×size, as CLIP's processor does.

    Returns uint8 (size, size, 3). `fast` lets Pillow shrink in two steps (reducing_gap), which
    barely changes the result; without it the output matches transformers' processor exactly.
    """
    return _crop_and_resized(img, size, fast=fast)[0]


def clip_pixels_and_thumbnail(img: Image.Image, size: int, *, fast: bool) -> tuple[np.ndarray, bytes]:
    """`clip_pixels` and `thumbnail_jpeg` of one image, the thumbnail made from the crop's resized
    picture when that is at least the thumbnail's size: one large resize instead of two (Pillow's
    resizing is half of a decode worker's time; the thumbnails differ by under 1/255 on average)."""
    pixels, resized = _crop_and_resized(img, size, fast=fast)
    larger = resized if resized is not None and max(resized.size) >= THUMBNAIL_SIDE else img
    return pixels, thumbnail_jpeg(larger)


def _crop_and_resized(img: Image.Image, size: int, *, fast: bool) -> tuple[np.ndarray, Image.Image | None]:
    """CLIP's crop, and the whole picture with its short side resized to `size` (None for a picture
    over MAX_RESIZED_ASPECT, of which only the cropped part is resized)."""
    width, height = img.size
    new_size, box = crop_plan(width, height, size)
    gap = 3.0 if fast else None
    if box is not None:
        part = img.resize((size, size), Image.Resampling.BICUBIC, box=box, reducing_gap=gap)
        return np.ascontiguousarray(np.asarray(part)), None
    resized = img.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=gap)
    arr = np.asarray(resized)
    top = (arr.shape[0] - size) // 2
    left = (arr.shape[1] - size) // 2
    if top < 0 or left < 0:  # only for images smaller than `size`, which the resize rules out
        raise BadImage(f"image too small to crop ({width}×{height})", "too_small", width=width, height=height)
    return np.ascontiguousarray(arr[top : top + size, left : left + size]), resized


def crop_plan(
    width: int, height: int, size: int
) -> tuple[tuple[int, int], tuple[float, float, float, float] | None]:
    """How CLIP's crop of a width×height picture is made: the (width, height) its short side
    resized to `size` gives, whose centre size×size square is the crop; and, past
    MAX_RESIZED_ASPECT, the box of the picture (left, top, right, bottom) that square covers, to
    resize alone (else None)."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    if new_long <= MAX_RESIZED_ASPECT * size:
        return new_size, None
    scale = long / new_long
    start = (new_long - size) // 2 * scale
    if width > height:
        return new_size, (start, 0, start + size * scale, height)
    return new_size, (0, start, width, start + size * scale)


def thumbnail_jpeg(img: Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small JPEG of the whole picture, for galleries: the original may be 12 MP or elsewhere."""
    thumb = img.copy()
    thumb.thumbnail((side, side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return jpeg_bytes(thumb)


def unseen_in_browsers(path: Path) -> bool:
    """Whether a browser may not show the image file at `path`: a HEIC (Chrome and Firefox show
    none), a TIFF (only Safari shows one), a camera RAW (none)."""
    if camera_raw.named_raw(path):
        return True
    try:
        with path.open("rb") as file:
            head = file.read(12)
    except OSError:
        return False
    return (heif.is_iso(head) and head[8:12] in _HEIC_BRANDS) or tiff.is_tiff(head)


def photo_jpeg(path: Path, side: int = PHOTO_SIDE) -> bytes:
    """The image file at `path`, upright, at most `side` pixels on its long side, as a JPEG: how
    the app shows an original. A JPEG decodes at the DCT scale that keeps half of `side` on both
    sides (a 4000×3000 photo as 2000×1500), four times fewer pixels than a full decode.
    Its metadata (EXIF: GPS position, camera, dates) stays behind; an RGB colour profile (a
    phone's Display P3) comes along, so colours stay right. Raises BadImage as `load_image` does."""
    img = load_image(path, min_side=side // 2)
    profile = img.info.get("icc_profile")
    img.thumbnail((side, side), Image.Resampling.BICUBIC, reducing_gap=2.0)
    buf = io.BytesIO()
    rgb_profile = profile if isinstance(profile, bytes) and profile[16:20] == b"RGB " else None
    img.save(buf, "JPEG", quality=88, icc_profile=rgb_profile)
    return buf.getvalue()


def jpeg_bytes(img: Image.Image) -> bytes:
    """A thumbnail's JPEG encoding."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, optimize=True)
    return buf.getvalue()
