"""Decoding: orientation, odd modes, reduced-size JPEG decoding, and refusal of bad input."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from indexing import config, headers
from indexing.errors import BadImage
from indexing.images import (
    HEIF,
    clip_pixels,
    clip_pixels_and_thumbnail,
    load_image,
    photo_jpeg,
    read_url,
    thumbnail_jpeg,
)
from tests.isolation import REPO
from tests.synthetic import shapes_image


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (300, 100), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_image(_jpeg(img, exif=exif.tobytes()))
    assert out.size == (100, 300)


@pytest.mark.parametrize(
    "img",
    [
        Image.new("P", (64, 64), 3),
        Image.new("RGBA", (64, 64), (255, 0, 0, 0)),
        Image.new("LA", (64, 64), (10, 255)),
        Image.new("CMYK", (64, 64), (0, 255, 255, 0)),
        Image.new("L", (64, 64), 128),
        Image.new("1", (64, 64), 1),
        Image.fromarray(np.full((64, 64), 65535, np.uint16)),
    ],
    ids=["palette", "rgba", "la", "cmyk", "grey", "bilevel", "16-bit"],
)
def test_any_mode_becomes_rgb(img: Image.Image):
    buf = io.BytesIO()
    img.save(buf, "TIFF" if img.mode in ("CMYK", "I;16") else "PNG")
    out = load_image(buf.getvalue())
    assert out.mode == "RGB" and out.size == (64, 64)


def test_transparent_pixels_become_white_and_16_bit_is_rescaled():
    transparent = load_image(Image.new("RGBA", (8, 8), (255, 0, 0, 0)))
    assert transparent.getpixel((0, 0)) == (255, 255, 255)
    white16 = load_image(Image.fromarray(np.full((8, 8), 65535, np.uint16)))
    assert white16.getpixel((0, 0)) == (255, 255, 255)


def test_large_jpeg_is_decoded_at_reduced_size_but_never_below_the_crop():
    data = _jpeg(Image.new("RGB", (4000, 3000), "blue"))
    fast = load_image(data, min_side=224)
    assert fast.size == (500, 375)
    assert load_image(data).size == (4000, 3000)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is a text file, not a picture\n", "not an image"),
        (_jpeg(Image.new("RGB", (400, 300), "green"))[:600], "corrupt or truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image"),
    ],
    ids=["zero-byte", "text", "truncated-jpeg", "garbage-png"],
)
def test_bad_input_raises_bad_image_with_a_reason(data: bytes, reason: str):
    with pytest.raises(BadImage, match=reason):
        load_image(data)


def test_huge_image_is_refused(tmp_path):
    side = int((config.MAX_DECODED_PIXELS * 1.2) ** 0.5)
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path)
    with pytest.raises(BadImage, match="too large"):
        load_image(path)


def test_a_panorama_over_pillow_s_own_limit_is_decoded_at_reduced_size_and_its_date_read(tmp_path):
    """180 megapixels: Pillow alone refuses to open it; 2250×1250 pixels decoded for CLIP."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2021:08:14 19:30:00"
    path = tmp_path / "pano.jpg"
    Image.new("L", (18000, 10000), 90).save(path, quality=50, exif=exif.tobytes())
    assert load_image(path, min_side=224).size == (2250, 1250)
    assert headers.from_file(path) == headers.Facts("2021-08-14T19:30:00")
    with pytest.raises(
        BadImage, match=r"image too large \(18000×10000 pixels; the limit is 100 megapixels\)"
    ):
        load_image(path)  # at full size, over ours


def test_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr("indexing.images.MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg(Image.new("RGB", (200, 200))) + b"\0" * 2000)
    with pytest.raises(BadImage, match="file too large"):
        load_image(path)


def test_missing_file_is_a_bad_image(tmp_path):
    with pytest.raises(BadImage, match="not found"):
        load_image(tmp_path / "nope.jpg")


def test_clip_pixels_resizes_short_side_and_centre_crops():
    img = Image.new("RGB", (448, 224), "black")
    img.paste((255, 255, 255), (112, 0, 336, 224))  # white centre square
    px = clip_pixels(img, 224, fast=False)
    assert px.shape == (224, 224, 3) and px.dtype == np.uint8
    assert px.min() == 255


def test_thumbnail_is_small_jpeg():
    thumb = Image.open(io.BytesIO(thumbnail_jpeg(Image.new("RGB", (4000, 3000)))))
    assert thumb.format == "JPEG" and max(thumb.size) == config.THUMBNAIL_SIDE


@pytest.mark.parametrize("size", [(512, 384), (300, 290), (384, 1000)])
def test_crop_and_thumbnail_from_one_resize_match_the_separate_ones(size):

    img = shapes_image(5, size)
    pixels, thumbnail = clip_pixels_and_thumbnail(img, 224, fast=True)
    assert np.array_equal(pixels, clip_pixels(img, 224, fast=True))
    together = Image.open(io.BytesIO(thumbnail))
    alone = Image.open(io.BytesIO(thumbnail_jpeg(img)))
    assert together.size == alone.size and max(together.size) == config.THUMBNAIL_SIDE
    difference = np.abs(np.asarray(together, np.int16) - np.asarray(alone, np.int16))
    assert difference.mean() < 2.0


@pytest.mark.parametrize("size", [(30000, 1), (2, 3000), (1800, 200)])
def test_a_long_strip_is_cropped_without_resizing_all_of_it(size):
    img = shapes_image(4, size) if min(size) > 100 else Image.new("RGB", size, (200, 30, 30))
    pixels, thumbnail = clip_pixels_and_thumbnail(img, 224, fast=False)
    assert pixels.shape == (224, 224, 3)
    assert max(Image.open(io.BytesIO(thumbnail)).size) == config.THUMBNAIL_SIDE
    if size == (1800, 200):  # past the limit too (9:1): the same pixels as resizing it all
        whole = np.asarray(img.resize((2016, 224), Image.Resampling.BICUBIC))
        assert np.array_equal(pixels, whole[:, 896 : 896 + 224])


def test_a_photo_shown_is_upright_and_keeps_its_colour_profile_but_not_its_metadata(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # shot sideways: to be turned a quarter
    exif[0x010F] = "Camera maker"
    exif.get_ifd(0x8825).update({1: "N", 2: (40.0, 26.0, 46.0)})  # where it was taken
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    shapes_image(1, (3000, 1000)).save(tmp_path / "sideways.jpg", exif=exif, icc_profile=profile)
    shown = Image.open(io.BytesIO(photo_jpeg(tmp_path / "sideways.jpg")))
    assert shown.size == (round(config.PHOTO_SIDE / 3), config.PHOTO_SIDE)  # upright, long side bounded
    assert not shown.getexif() and shown.info["icc_profile"] == profile
    Image.new("CMYK", (64, 64), (0, 255, 0, 0)).save(tmp_path / "print.jpg")
    assert Image.open(io.BytesIO(photo_jpeg(tmp_path / "print.jpg"))).mode == "RGB"


def test_a_download_is_asked_again_when_the_server_says_not_now_and_not_when_it_says_no():
    answers: list[int] = []
    asked: list[str] = []

    class Scripted(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            code = answers.pop(0)
            self.send_response(code)
            self.send_header("Retry-After", "0")
            self.end_headers()
            if code == 200:
                self.wfile.write(b"picture")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/a.jpg"
    try:
        answers[:] = [503, 429, 200]
        assert read_url(url) == b"picture" and len(asked) == 3
        asked.clear()
        answers[:] = [404]
        with pytest.raises(BadImage, match=r"could not download it \(HTTP 404 Not Found\)"):
            read_url(url)
        assert len(asked) == 1
        asked.clear()
        answers[:] = [503] * 4
        with pytest.raises(BadImage, match=r"could not download it \(HTTP 503 Service Unavailable\)"):
            read_url(url)
        assert len(asked) == config.URL_TRIES
    finally:
        server.shutdown()
        server.server_close()


def test_a_heic_this_installation_cannot_read_is_named_with_what_reads_it(monkeypatch, tmp_path):
    from indexing import images
    from ui import text

    monkeypatch.setattr(images, "HEIF", False)  # (as without pi-heif: the fake below is no HEIC it reads)
    iphone = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0\0\0\x08mdat" + bytes(64)
    (tmp_path / "IMG_0001.jpg").write_bytes(iphone)  # renamed by an app, or sent as it is
    for src in (tmp_path / "IMG_0001.jpg", iphone, io.BytesIO(iphone)):
        with pytest.raises(BadImage, match=r"a HEIC photo \(an iPhone's\): pip install pi-heif") as caught:
            load_image(src)
        assert caught.value.code == "heic"
    assert "envíala como JPEG" in text.error("es", caught.value)
    video = b"\0\0\0\x18ftypisom\0\0\0\0isomiso2" + bytes(64)  # an MP4's start: not a HEIC
    with pytest.raises(BadImage) as caught:
        load_image(video)
    assert caught.value.code == "not_an_image"


def test_a_postscript_file_is_refused_by_its_format_and_ghostscript_never_runs(ghostscript, tmp_path):
    from tests.synthetic import POSTSCRIPT

    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(POSTSCRIPT)
    for src in (photo, POSTSCRIPT):
        with pytest.raises(
            BadImage, match=r"a file in EPS \(PostScript\) format, which is not read here"
        ) as caught:
            load_image(src)
        assert caught.value.code == "unread_format" and caught.value.params == {"format": "EPS (PostScript)"}
    assert headers.from_bytes(POSTSCRIPT) == headers.Facts()  # its header: nothing said
    assert not ghostscript.exists()


def test_a_float_tiff_with_nan_and_infinities_decodes_quietly():
    import warnings

    values = np.linspace(0, 2, 48 * 64, dtype=np.float32).reshape(48, 64)
    values[0, :3] = (np.nan, np.inf, -np.inf)  # (a scientific camera's TIFF may hold them)
    data = io.BytesIO()
    Image.fromarray(values).save(data, "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy's "invalid value encountered" went to the build's output
        picture = np.asarray(load_image(data.getvalue()))
    assert picture.shape == (48, 64, 3) and picture[0, :3].max() == 0 and picture[-1, -1, 0] == 255


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "ICO", "PPM"])
def test_the_formats_we_read_still_decode(fmt):
    picture = shapes_image(4, (48, 48))  # (an icon is square)
    data = io.BytesIO()
    picture.save(data, fmt)
    got = load_image(data.getvalue())
    assert got.size == (48, 48) and got.mode == "RGB"


@pytest.mark.skipif(not HEIF, reason="needs pi-heif or pillow-heif (requirements-dev.txt installs pi-heif)")
def test_a_heic_decodes_from_its_thumbnail_at_a_reduced_size_turned_as_its_picture():
    from pathlib import Path

    from indexing import heif

    photo = Path(__file__).resolve().parent / "data" / "iphone.heic"  # (tests/test_build.py's DATA)
    small, whole = load_image(photo, min_side=224), load_image(photo)
    assert (small.size, whole.size) == ((240, 320), (480, 640))  # the thumbnail, held upright too
    for picture in (small, whole):
        top, bottom = picture.getpixel((120, 5)), picture.getpixel((120, picture.height - 5))
        assert top[2] < 100 < top[0] and bottom[0] > 150 > bottom[2], (top, bottom)  # yellow, red
    crops = [clip_pixels(picture, 224, fast=True).astype(np.float32) for picture in (small, whole)]
    assert np.abs(crops[0] - crops[1]).mean() < 3  # (in 0-255 levels)
    assert load_image(photo, min_side=300).size == (480, 640)  # its thumbnail is too small for that
    assert heif.thumbnail_file(photo.read_bytes(), 241) is None
    assert heif.thumbnail_file(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", 224) is None
    # Damaged where libheif crashed the process in a fuzzing run (properties of an item there is
    # not): refused before libheif sees it, at full size and where the thumbnail cannot serve.
    data = bytearray(photo.read_bytes())
    first = data.index(b"ipma") + 4 + 8  # (after its version, flags and count: the first item's id)
    data[first : first + 2] = (99).to_bytes(2, "big")
    assert heif.read_still(bytes(data)) is not None and not heif.well_formed(bytes(data))
    for min_side in (None, 300):
        with pytest.raises(BadImage, match="its HEIF boxes do not read") as caught:
            load_image(bytes(data), min_side=min_side)
        assert caught.value.code == "corrupt_image"


def test_a_photo_whose_exif_is_cut_short_decodes_without_pillow_s_warning(tmp_path):
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(jpeg, "JPEG")
    # An EXIF whose one entry's text lies past its end: Pillow warns "Truncated File Read".
    tiff = b"II*\0" + (8).to_bytes(4, "little") + (1).to_bytes(2, "little")
    tiff += (0x010F).to_bytes(2, "little") + (2).to_bytes(2, "little") + (100).to_bytes(4, "little")
    tiff += (0x1000).to_bytes(4, "little") + bytes(4)
    app1 = b"Exif\0\0" + tiff
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(
        jpeg.getvalue()[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpeg.getvalue()[2:]
    )
    script = f"from indexing.images import load_image; print(load_image({str(photo)!r}).size)"
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert (run.stdout, run.stderr) == ("(64, 48)\n", "")


def test_a_decoder_s_message_of_several_lines_is_told_in_one(monkeypatch):
    def refuse(_file: object, **_options: object) -> None:
        raise RuntimeError(
            "Memory allocation error: Security limit exceeded: Image size 640x480\n"
        )  # libheif's

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(BadImage) as caught:
        load_image(b"\xff\xd8 a photo")
    assert str(caught.value) == (
        "corrupt or truncated image (Memory allocation error: Security limit exceeded: Image size 640x480)"
    )


def test_the_formats_a_browser_may_not_show_are_told_apart(tmp_path):
    from indexing.images import unseen_in_browsers

    picture = Image.new("RGB", (8, 8), "red")
    for name, unseen in (("a.png", False), ("a.jpg", False), ("a.webp", False), ("a.tif", True)):
        picture.save(tmp_path / name)
        assert unseen_in_browsers(tmp_path / name) is unseen, name
    heic = (Path(__file__).resolve().parent / "data" / "iphone.heic").read_bytes()
    (tmp_path / "renamed.jpg").write_bytes(heic)  # an iPhone's photo, by its bytes
    (tmp_path / "shot.dng").write_bytes(b"II*\0")  # a camera RAW, by its name
    assert unseen_in_browsers(tmp_path / "renamed.jpg") and unseen_in_browsers(tmp_path / "shot.dng")
    assert not unseen_in_browsers(tmp_path / "gone.heic")
