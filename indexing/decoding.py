"""Decoding for the model, in a worker process: read, hash, decode, crop and thumbnail one image
(or, for a build decoding on the GPU, read, hash and check a JPEG's header, which the GPU then
decodes); read the headers of a few files (when and where each was taken).

What a build runs in its decode processes when the model is on a GPU, where decoding is the
bottleneck and threads stop scaling (see indexing.build). Imports neither torch nor the catalog,
so a worker starts fast and returns plain values: the content hash, CLIP's uint8 crop and the
thumbnail, or the reason the image is unusable.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from indexing import guard, headers
from indexing.camera_raw import named_raw
from indexing.config import MAX_DECODED_PIXELS
from indexing.errors import BadImage
from indexing.images import WebFile, clip_pixels_and_thumbnail, load_image, opened, read_file
from indexing.picture_hash import picture_hash
from indexing.sources import content_hash, sampled_content_hash
from indexing.video import named_video

Decoded = tuple[str | None, np.ndarray | None, bytes, str]
_ORIENTATION = 0x0112  # the EXIF tag


@dataclass(frozen=True)
class JpegFile:
    """A JPEG file for the GPU, with what its header says."""

    raw: bytes
    orientation: int  # EXIF, 1 (upright) to 8
    pixels: int


def gpu_candidate(raw: bytes) -> JpegFile | None:
    """`raw` as a JPEG the GPU can decode (complete, colour or grey, not over the size limit), or
    None for a file to decode on the CPU (other formats, CMYK, truncated, or anything odd, which
    the CPU path reports properly)."""
    if not raw.startswith(b"\xff\xd8") or not raw[-64:].rstrip(b"\x00").endswith(b"\xff\xd9"):
        return None
    try:
        img = Image.open(io.BytesIO(raw), formats=["JPEG"])  # reads the header only
        if img.format != "JPEG" or img.mode not in ("RGB", "L"):
            return None
        pixels = img.width * img.height
        orientation = img.getexif().get(_ORIENTATION, 1)
    except Exception:  # whatever Pillow makes of it, the CPU path reports it
        return None
    if pixels > MAX_DECODED_PIXELS:
        return None
    return JpegFile(raw, orientation if orientation in range(1, 9) else 1, pixels)


def read_and_hash(
    data: Path | bytes | Image.Image | WebFile, content: str | None, pictures: bool = False
) -> tuple[bytes | Image.Image | Path, str | None]:
    """A source item's image (a file read, bytes or a picture as given; a video's file, which
    FFmpeg reads itself) and its content hash (the source's own, else one of its bytes; none for
    a picture already decoded); with `pictures`, a file's is its picture hash, its metadata left
    out (indexing.picture_hash: an index's choice). Raises BadImage, for a web file too: one left
    a WebFile is one whose download failed (`downloads.downloaded`)."""
    if isinstance(data, WebFile):
        raise BadImage(data.failed or "not downloaded", "download_failed")
    if named_video(data):  # never read whole: FFmpeg reads what it needs, and so does its hash
        if content is None:
            with opened(data) as file:
                content = sampled_content_hash(file)
        return data, content
    raw = read_file(data) if isinstance(data, Path) else data
    if content or not isinstance(raw, bytes):
        return raw, content
    return raw, picture_hash(raw) if pictures and isinstance(data, Path) else content_hash(raw)


def prepare_for_model(
    data: Path | bytes | Image.Image | WebFile,
    size: int,
    fast: bool,
    content: str | None,
    *,
    camera: bool = False,
    pictures: bool = False,
) -> Decoded:
    """(content hash, crop, thumbnail, "") for a usable image, (content, None, b"", reason) else.
    `camera`: `data` is the bytes of a camera RAW file (a file's name says so itself); `pictures`:
    as `read_and_hash`'s."""
    try:
        camera = camera or named_raw(data)
        if isinstance(data, Path) and content and not guard.inside():
            # A file handed over by its path, its hash known (a RAW or a HEIF: its guard process
            # reads it, which is quicker than sending its bytes through a pipe).
            image = load_image(data, min_side=size if fast else None, camera=camera)
        else:
            raw, content = read_and_hash(data, content, pictures)
            image = load_image(raw, min_side=size if fast else None, camera=camera)
        return content, *clip_pixels_and_thumbnail(image, size, fast=fast), ""
    except BadImage as exc:
        return content, None, b"", str(exc)


def read_for_the_gpu(
    data: Path | bytes | Image.Image | WebFile,
    size: int,
    fast: bool,
    content: str | None,
    *,
    pictures: bool = False,
) -> tuple[Decoded, JpegFile | None]:
    """A JPEG the GPU can decode only read, hashed and its header checked: ((content hash, None,
    b"", ""), the file), for the GPU to decode with its batch; anything else decoded here, as
    `prepare_for_model` does, and no file."""
    try:
        raw, content = read_and_hash(data, content, pictures)
    except BadImage as exc:
        return (content, None, b"", str(exc)), None
    if isinstance(raw, bytes) and (jpeg := gpu_candidate(raw)) is not None:
        return (content, None, b"", ""), jpeg
    return prepare_for_model(raw, size, fast, content, camera=named_raw(data)), None


def prepare_several(
    jobs: list[tuple[Path | bytes | Image.Image | WebFile, str | None, bool]],
    size: int,
    fast: bool,
    pictures: bool = False,
    gpu: bool = False,
) -> list[tuple[Decoded, JpegFile | None, headers.Facts | None]]:
    """`prepare_for_model` of each (data, content, header wanted), or with `gpu` `read_for_the_gpu`:
    one task for a few images, so that a process pool's per-task costs in the parent are paid once
    for them. With each, what the header of its bytes says where it is wanted (a dataset's row:
    `header_facts`), else None. A JPEG given as bytes (a dataset's row) comes back without them
    (its `raw` empty): the build has them, and their way back through the pipe cost the process
    that drives the GPU 20–70 µs an image (benchmarks/RESULTS.md, eighteenth session)."""
    done: list[tuple[Decoded, JpegFile | None, headers.Facts | None]] = []
    for data, content, wanted in jobs:
        if gpu:
            decoded, jpeg = read_for_the_gpu(data, size, fast, content, pictures=pictures)
            if jpeg is not None and isinstance(data, bytes):
                jpeg = replace(jpeg, raw=b"")
        else:
            decoded, jpeg = prepare_for_model(data, size, fast, content, pictures=pictures), None
        done.append((decoded, jpeg, header_facts(data) if wanted else None))
    return done


def header_facts(data: Path | bytes | Image.Image) -> headers.Facts | None:
    """What the header of a dataset row's bytes says (`headers.from_bytes`), read where the row is
    decoded, off the thread that feeds the model (0.13 ms a 1024×768 phone JPEG); None for a file,
    whose header is read by path (`facts_of`), or a picture already decoded."""
    return headers.from_bytes(data) if isinstance(data, bytes) else None


def facts_of(paths: list[Path]) -> list[headers.Facts | None]:
    """What each file's header says (`headers.from_file`): a build's decode processes read it
    beside their decoding, off the thread that feeds the model."""
    return [headers.from_file(path) for path in paths]
