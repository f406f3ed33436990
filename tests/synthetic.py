"""Generated test images: coloured shapes on coloured backgrounds, distinct per seed; camera RAW
files (DNG) of a picture; videos of coloured seconds; a PostScript picture."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import ImageFileDirectory_v2

# An EPS picture (PostScript: a program, which Pillow's EPS plug-in hands to Ghostscript), as a
# file named .jpg may hold.
POSTSCRIPT = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n"
    b"newpath 0 0 moveto 100 100 lineto stroke\nshowpage\n"
)


def shapes_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(4):
        s = int(rng.integers(min(w, h) // 12, min(w, h) // 3))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.integers(0, 2) else draw.rectangle)([x, y, x + s, y + s], fill=colour)
    return img


def write_collection(folder: Path, n: int, *, start: int = 0, ext: str = "png") -> list[Path]:
    """n images named img_000.png …; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(start, start + n):
        path = folder / f"img_{seed:03d}.{ext}"
        shapes_image(seed).save(path)
        paths.append(path)
    return paths


def save_as_dataset(folder: Path, out: Path) -> None:
    """The image files under `folder`, in path order, as a dataset on disk at `out` (an image
    column "img", each row its file's bytes and name)."""
    import datasets

    files = sorted(path for path in folder.rglob("*") if path.is_file())
    datasets.Dataset.from_dict(
        {"img": [{"bytes": path.read_bytes(), "path": path.name} for path in files]},
        features=datasets.Features({"img": datasets.Image()}),
    ).save_to_disk(out)


def write_dng(
    path: Path, planes: np.ndarray, *, orientation: int = 1, taken: str = "", xmp: bytes = b""
) -> None:
    """A DNG as a camera writes one, without a preview: the (3, height, width) colour `planes`
    (12-bit, 0–4095) sampled through an RGGB colour filter into one 16-bit mosaic; `taken` as
    EXIF writes a date ("2021:08:14 19:30:00"); `xmp` as Lightroom writes its metadata in it."""
    _, height, width = planes.shape
    mosaic = np.empty((height, width), np.uint16)
    mosaic[0::2, 0::2] = planes[0, 0::2, 0::2]  # R G
    mosaic[0::2, 1::2] = planes[1, 0::2, 1::2]  # G B
    mosaic[1::2, 0::2] = planes[1, 1::2, 0::2]
    mosaic[1::2, 1::2] = planes[2, 1::2, 1::2]
    tags = ImageFileDirectory_v2()
    tags[262] = 32803  # PhotometricInterpretation: colour filter array
    tags[271], tags[272], tags[50708] = "Buscador", "Test", "Buscador Test"  # Make, Model, UniqueCameraModel
    tags[274] = orientation
    if taken:
        tags[306] = taken  # DateTime
    if xmp:
        tags[700] = xmp
    tags.tagtype[33421], tags[33421] = 3, (2, 2)  # CFARepeatPatternDim
    tags.tagtype[33422], tags[33422] = 1, bytes([0, 1, 1, 2])  # CFAPattern: RGGB
    tags.tagtype[50706], tags[50706] = 1, bytes([1, 4, 0, 0])  # DNGVersion
    tags.tagtype[50717], tags[50717] = 4, 4095  # WhiteLevel
    tags.tagtype[50721], tags[50721] = 10, tuple(Fraction(int(i % 4 == 0)) for i in range(9))  # ColorMatrix1
    tags.tagtype[50778], tags[50778] = 3, 21  # CalibrationIlluminant1: D65
    tags.tagtype[50728], tags[50728] = 5, (Fraction(1),) * 3  # AsShotNeutral
    Image.frombytes("I;16", (width, height), mosaic.tobytes()).save(path, format="TIFF", tiffinfo=tags)


def write_video(
    path: Path,
    seconds: list[tuple[int, int, int] | np.ndarray],
    *,
    size: tuple[int, int] = (96, 64),
    turned: int = 0,
    tags: dict[str, str] | None = None,
) -> None:
    """An H.264 video, 10 frames a second with a key frame every 5, of one colour (or picture: an
    array of `size`) for each second in `seconds`, stored `size` (width, height) and to be shown
    turned `turned` degrees counter-clockwise (a phone's portrait video); `tags` as its
    container's metadata (an iPhone's com.apple.quicktime.* keys among them)."""
    import av

    with av.open(str(path), "w", options={"movflags": "use_metadata_tags"}) as out:
        out.metadata.update(tags or {})
        stream = out.add_stream("libx264", rate=10, options={"g": "5"})
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        if turned:
            stream.set_display_rotation(turned)
        for shown in seconds:
            picture = np.empty((size[1], size[0], 3), np.uint8)
            picture[...] = shown
            for _ in range(10):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode())
