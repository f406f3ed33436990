"""Whether a photo's picture hash (indexing.picture_hash) survives a real metadata editor: writes
one picture in every format the hash knows (JPEG, PNG, WebP, AVIF, TIFF uncompressed and LZW, DNG,
and HEIC where pillow-heif is installed), lets `exiftool` write a rating, keywords, a caption, a
date, an artist and IPTC keywords into each, then turn each, and prints for each file whether its
bytes changed, whether its picture hash stayed, and whether turning it changed the hash. Prints;
asserts nothing. Needs `exiftool` (Debian: `apt install libimage-exiftool-perl`).

Usage: .venv/bin/python -m benchmarks.exiftool_edits
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import xxhash
from PIL import Image

from benchmarks import arguments
from indexing.picture_hash import picture_hash
from tests import synthetic

EDITS = [
    "-XMP-xmp:Rating=4",
    "-XMP-dc:Subject=Ana",
    "-XMP-dc:Subject=Playa",
    "-XMP-dc:Description=a beach",
    "-EXIF:DateTimeOriginal=2021:08:14 19:30:00",
    "-EXIF:Artist=Me",
    "-IPTC:Keywords=Ana",
]


def _photos(folder: Path) -> None:
    """One 800×600 picture in each format."""
    picture = Image.fromarray(
        np.random.default_rng(0).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    ).resize((800, 600))
    picture.save(folder / "photo.jpg", quality=90)
    picture.save(folder / "photo.png")
    picture.save(folder / "photo.webp", quality=80)
    picture.save(folder / "photo.avif", quality=70)
    picture.save(folder / "photo.tif")
    picture.save(folder / "photo-lzw.tif", compression="tiff_lzw")
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        picture.save(folder / "photo.heic", quality=80)
    except ImportError:
        print("(no HEIC: pillow-heif is not installed)")
    planes = np.zeros((3, 256, 384))
    planes[0], planes[2, 64:192, 96:288] = 3000, 3500
    synthetic.write_dng(folder / "photo.dng", planes)


def _exiftool(*options: str) -> None:
    done = subprocess.run(
        ["exiftool", "-overwrite_original", *options], check=False, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"exiftool failed: {done.stderr.strip()}")


def main() -> None:
    arguments(__doc__).parse_args()
    if shutil.which("exiftool") is None:
        raise SystemExit("exiftool is not installed (Debian: apt install libimage-exiftool-perl)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _photos(folder)
        files = sorted(folder.iterdir())
        before = {p: (xxhash.xxh3_128_hexdigest(p.read_bytes()), picture_hash(p.read_bytes())) for p in files}
        _exiftool(*EDITS, str(folder))
        edited = {p: (xxhash.xxh3_128_hexdigest(p.read_bytes()), picture_hash(p.read_bytes())) for p in files}
        _exiftool("-n", "-Orientation=6", str(folder))
        print(f"{'file':14} {'bytes changed':>14} {'hash kept':>10} {'turned: hash changed':>21}")
        for p in files:
            turned = picture_hash(p.read_bytes()) != before[p][1]
            changed, kept = edited[p][0] != before[p][0], edited[p][1] == before[p][1]
            print(f"{p.name:14} {changed!s:>14} {kept!s:>10} {turned!s:>21}")


if __name__ == "__main__":
    main()
