"""JPEG decoding on the GPU (nvJPEG, through torchvision) for builds whose model runs there.

With decoding on the CPU a GPU build runs at what the cores decode (about 1,100 images/s on 16
cores, the model idle most of the time); nvJPEG decodes, resizes and crops about 5,700 1024×768
JPEGs a second on an H200 (benchmarks/RESULTS.md). The build's decode processes then only read
and hash the files and check their headers (`indexing.decoding.gpu_candidate`), on every core but
the one that drives the GPU; the GPU decodes them at full size, applies the EXIF orientation,
makes CLIP's crop (bicubic, antialiased, as Pillow does; left on the GPU for the model) and the
thumbnail, and encodes the thumbnails (nvJPEG's encoder; they come back in one copy a batch).
Encoded by Pillow on 16 threads, the thumbnails had held the GPU decoder to 713 images/s; on the
GPU it runs 1,583 (benchmarks/RESULTS.md), and Pillow remains the fallback. Any other file is
decoded in those processes, as without a GPU, and one that nvJPEG refuses on the CPU after.

Needs torchvision built for CUDA, which the project does not install (`nvjpeg()` says whether it
is there); where it is, a build on the GPU decodes this way by default (`--decode auto`).
"""

from __future__ import annotations

import io
import itertools
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from PIL import Image

from indexing.config import THUMBNAIL_SIDE
from indexing.decoding import JpegFile
from indexing.images import crop_plan, jpeg_bytes

# Decodes a list of JPEG files (uint8 CPU tensors) into (channels, height, width) uint8 tensors on
# a device, not yet turned upright; raises if any of them fails.
DecodeFn = Callable[[list[torch.Tensor]], list[torch.Tensor]]
# Encodes (3, H, W) uint8 device tensors as JPEG files; raises if it cannot.
EncodeFn = Callable[[list[torch.Tensor]], list[bytes]]

# Pixels decoded in one nvJPEG call at most: 128 12-megapixel photos take 4.6 GB at full size.
PIXELS_PER_CALL = 400_000_000
# Pixels resized together at most: their float copy takes 12 bytes a pixel (600 MB).
PIXELS_PER_RESIZE = 50_000_000
log = logging.getLogger(__name__)
# nvJPEG's encoder keeps full-resolution colour (4:4:4) and standard Huffman tables: at Pillow's
# quality 85 its thumbnails took 12.7 kB against Pillow's 8.0 (measured on an H200). Pillow's
# own 4:4:4 encoding gives the same 12.7 kB; at quality 75 it gives 9.5 kB with the same PSNR on
# photos as the CPU path's thumbnails (39.6 against 39.8 dB) and better on drawings (benchmarks/RESULTS.md).
NVJPEG_QUALITY = 75


def _torchvision_io(device: str) -> Any | None:
    """torchvision.io where `device` is a CUDA device that is there and torchvision imports, else None."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    try:
        from torchvision import io as torchvision_io
    except (ImportError, OSError):
        return None
    return torchvision_io


def nvjpeg(device: str) -> DecodeFn | None:
    """torchvision's batched nvJPEG decoder on `device`, or None where there is none (no CUDA
    device, or no torchvision built for it)."""
    if (torchvision_io := _torchvision_io(device)) is None:
        return None

    def decode(files: list[torch.Tensor]) -> list[torch.Tensor]:
        return torchvision_io.decode_jpeg(files, device=device)

    return decode if decodes(decode) else None


def decodes(decode: DecodeFn) -> bool:
    """Whether `decode` turns a small JPEG into its picture: a torchvision built without CUDA or
    nvJPEG imports fine and fails only when called, which would send every file of a build to the
    slow way round (a failed batch, then each file alone, then the CPU)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 30, 30)).save(buf, "JPEG")
    try:
        image = decode([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)])[0]
    except (RuntimeError, ValueError, OSError):
        return False
    return tuple(image.shape) == (3, 8, 16)


def nvjpeg_encoder(device: str) -> EncodeFn | None:
    """torchvision's batched nvJPEG encoder on `device` (the files back in one copy), or None where
    there is none."""
    if (torchvision_io := _torchvision_io(device)) is None:
        return None
    return lambda images: files_to_host(torchvision_io.encode_jpeg(images, quality=NVJPEG_QUALITY))


def files_to_host(files: list[torch.Tensor]) -> list[bytes]:
    """These 1-d uint8 device tensors as bytes, in one copy."""
    joined = torch.cat(files).cpu().numpy().tobytes()
    ends = list(itertools.accumulate(len(file) for file in files))
    return [joined[start:end] for start, end in itertools.pairwise([0, *ends])]


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """(C, H, W) `image` turned upright for an EXIF orientation, as Pillow's exif_transpose does."""
    h, w = -2, -1
    turns = {
        2: lambda x: x.flip(w),
        3: lambda x: x.flip(h, w),
        4: lambda x: x.flip(h),
        5: lambda x: x.transpose(h, w),
        6: lambda x: torch.rot90(x, -1, (h, w)),
        7: lambda x: x.transpose(h, w).flip(h, w),
        8: lambda x: torch.rot90(x, 1, (h, w)),
    }
    return turns[orientation](image) if orientation in turns else image


def thumbnail_size(width: int, height: int, side: int = THUMBNAIL_SIDE) -> tuple[int, int]:
    """The size Pillow's `thumbnail((side, side))` gives an image of this size."""
    if width <= side and height <= side:
        return width, height
    aspect = width / height
    if aspect >= 1:
        candidates = (math.floor(side / aspect), math.ceil(side / aspect))
        return side, max(min(candidates, key=lambda n: abs(aspect - side / n) if n else math.inf), 1)
    candidates = (math.floor(side * aspect), math.ceil(side * aspect))
    return max(min(candidates, key=lambda n: abs(aspect - n / side)), 1), side


class GpuDecoder:
    """Turns JPEG files into CLIP's crops and thumbnails on the model's device; the thumbnails are
    encoded by `encode` where given (on the device), else by Pillow on `encoders` threads."""

    def __init__(self, decode: DecodeFn, size: int, encoders: int, encode: EncodeFn | None = None) -> None:
        self._decode = decode
        self._encode = encode
        self._size = size
        self._encoders = ThreadPoolExecutor(max_workers=encoders, thread_name_prefix="thumbnail")

    def close(self) -> None:
        self._encoders.shutdown()

    def __call__(self, files: Sequence[JpegFile]) -> list[tuple[torch.Tensor, bytes] | None]:
        """(crop, thumbnail JPEG) for each file, or None for a file nvJPEG refused. The crops,
        (size, size, 3) uint8, stay on the device, where the model takes them: their copy to the
        host took about what nvJPEG's decoding of them did (18 against 18.5 ms a batch of 128 on
        an H200), and the model's copy back as long again (benchmarks/RESULTS.md).

        Images of the same size and orientation (most of a camera's photos) are turned, resized
        and cropped together, a few tensor operations a group instead of a few an image: each
        operation costs a kernel launch and lets go of Python's lock, which the build's other
        threads then take."""
        decoded = self._decode_all(files)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(decoded):
            if image is not None:
                groups.setdefault((*image.shape[1:], files[i].orientation), []).append(i)
        order: list[int] = []
        crops: list[torch.Tensor] = []
        thumbnails: list[torch.Tensor] = []
        for (height, width, orientation), members in groups.items():
            step = max(1, PIXELS_PER_RESIZE // (height * width))
            for start in range(0, len(members), step):
                part = members[start : start + step]
                images = orient(torch.stack([decoded[i] for i in part]), orientation)
                order.extend(part)
                crops.append(self._crop(images))
                thumbnails.append(self._thumbnail(images))
        results: list[tuple[torch.Tensor, bytes] | None] = [None] * len(files)
        if not order:
            return results
        on_device = torch.cat(crops).permute(0, 2, 3, 1)
        for i, crop, thumbnail in zip(order, on_device, self._encoded(thumbnails), strict=True):
            results[i] = (crop, thumbnail)
        return results

    def _encoded(self, groups: list[torch.Tensor]) -> list[bytes]:
        """The JPEG file of each image of these (n, 3, H, W) groups, in order: on the device, else
        with Pillow. An encoder that fails once is reported and not tried again: Pillow makes the
        same thumbnails, only slower."""
        if self._encode is not None:
            try:
                return self._encode([image.contiguous() for group in groups for image in group])
            except (RuntimeError, ValueError) as exc:
                log.warning("thumbnails encoded on the CPU from now on: the GPU's encoder failed (%s)", exc)
                self._encode = None
        return list(
            self._encoders.map(lambda pixels: jpeg_bytes(Image.fromarray(pixels)), _images_to_host(groups))
        )

    def _decode_all(self, files: Sequence[JpegFile]) -> list[torch.Tensor | None]:
        """Each file decoded, (3, H, W); in calls of at most PIXELS_PER_CALL; when a call fails,
        its files one at a time, so that one bad file costs only itself."""
        out: list[torch.Tensor | None] = []
        for group in _groups(files, PIXELS_PER_CALL):
            part = [torch.frombuffer(bytearray(file.raw), dtype=torch.uint8) for file in group]
            try:
                out.extend(self._decode(part))
            except (RuntimeError, ValueError):
                out.extend(self._decode_one(t) for t in part)
        return [None if image is None else _three_channels(image) for image in out]

    def _decode_one(self, tensor: torch.Tensor) -> torch.Tensor | None:
        try:
            return self._decode([tensor])[0]
        except (RuntimeError, ValueError):
            return None

    def _crop(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's input of (n, 3, H, W) images: the short side resized to the crop size, then the
        centre square."""
        size = self._size
        height, width = images.shape[-2:]
        (new_width, new_height), box = crop_plan(width, height, size)
        if box is not None:  # a long strip: only the part the crop keeps (images.py says why)
            left, top, right, bottom = box
            part = images[..., math.floor(top) : math.ceil(bottom), math.floor(left) : math.ceil(right)]
            return _resize(part, (size, size))
        resized = _resize(images, (new_height, new_width))
        top, left = (new_height - size) // 2, (new_width - size) // 2
        return resized[..., top : top + size, left : left + size]

    def _thumbnail(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        new_width, new_height = thumbnail_size(width, height)
        return (
            images if (new_width, new_height) == (width, height) else _resize(images, (new_height, new_width))
        )


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(n, 3, H, W) images resized, bicubic, antialiased when shrinking (Pillow's filter), uint8
    in and out."""
    out = torch.nn.functional.interpolate(
        images.float(), size=size, mode="bicubic", antialias=True, align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _images_to_host(groups: list[torch.Tensor]) -> list[np.ndarray]:
    """(H, W, 3) arrays of the images of these (n, 3, H, W) device groups, in order, in one copy:
    each copy waits for the GPU and lets go of Python's lock, which other busy threads then hold
    for up to 5 ms (one copy a thumbnail made a measured GPU build slower than decoding on the CPU)."""
    height = max(group.shape[2] for group in groups)
    width = max(group.shape[3] for group in groups)
    count = sum(len(group) for group in groups)
    padded = torch.zeros((count, 3, height, width), dtype=torch.uint8, device=groups[0].device)
    sizes: list[tuple[int, int]] = []
    for group in groups:
        start = len(sizes)
        padded[start : start + len(group), :, : group.shape[2], : group.shape[3]] = group
        sizes.extend([(group.shape[2], group.shape[3])] * len(group))
    host = padded.permute(0, 2, 3, 1).cpu().numpy()
    return [host[k, :h, :w] for k, (h, w) in enumerate(sizes)]


def _three_channels(image: torch.Tensor) -> torch.Tensor | None:
    if image.shape[0] == 3:
        return image
    return image.expand(3, -1, -1) if image.shape[0] == 1 else None


def _groups(files: Sequence[JpegFile], pixel_limit: int) -> list[list[JpegFile]]:
    """`files` in runs whose decoded size stays under `pixel_limit`."""
    groups: list[list[JpegFile]] = [[]]
    pixels = 0
    for file in files:
        if groups[-1] and pixels + file.pixels > pixel_limit:
            groups.append([])
            pixels = 0
        groups[-1].append(file)
        pixels += file.pixels
    return groups
