"""GPU decoding (indexing.gpu_decoding) checked on the CPU, with a stand-in for nvJPEG that decodes
with Pillow as nvJPEG does (full size, not turned upright); and with nvJPEG itself where there is
a CUDA device and torchvision."""

from __future__ import annotations

import io
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from indexing import gpu_decoding
from indexing.config import usable_cores
from indexing.decoding import JpegFile, gpu_candidate, prepare_several
from indexing.gpu_decoding import GpuDecoder, orient, thumbnail_size
from indexing.images import clip_pixels, jpeg_bytes, load_image, thumbnail_jpeg
from tests.synthetic import shapes_image


def pillow_decode(files: list[torch.Tensor]) -> list[torch.Tensor]:
    """nvJPEG's part, done by Pillow: full-size decode, EXIF ignored; fails the call on a bad file."""
    out = []
    for data in files:
        try:
            img = Image.open(io.BytesIO(data.numpy().tobytes()))
            img.load()
        except OSError as exc:
            raise RuntimeError(f"nvjpeg error: {exc}") from None
        pixels = torch.from_numpy(np.array(img))
        out.append(pixels.permute(2, 0, 1) if pixels.ndim == 3 else pixels[None])
    return out


def pillow_encode(images: list[torch.Tensor]) -> list[bytes]:
    """nvJPEG's encoder, done by Pillow (the build's thumbnail quality)."""
    return [jpeg_bytes(Image.fromarray(image.permute(1, 2, 0).numpy())) for image in images]


def jpeg(img: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **options)
    return buf.getvalue()


def with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg(img, exif=exif)


def test_candidates_are_complete_colour_or_grey_jpegs_with_their_orientation():
    img = shapes_image(1, (320, 240))
    assert gpu_candidate(jpeg(img)).orientation == 1
    assert gpu_candidate(jpeg(img)).pixels == 320 * 240
    assert gpu_candidate(jpeg(img.convert("L"))) is not None
    assert gpu_candidate(with_orientation(img, 6)).orientation == 6
    png = io.BytesIO()
    img.save(png, "PNG")
    assert gpu_candidate(png.getvalue()) is None
    assert gpu_candidate(jpeg(img)[:-500]) is None  # truncated: the CPU reports it
    assert gpu_candidate(jpeg(img.convert("CMYK"))) is None
    assert gpu_candidate(b"\xff\xd8 not really a jpeg \xff\xd9") is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientations_match_pillows_exif_transpose(orientation):
    raw = with_orientation(shapes_image(2, (64, 48)), orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(raw))))
    image = pillow_decode([torch.frombuffer(bytearray(raw), dtype=torch.uint8)])[0]
    assert np.array_equal(orient(image, orientation).permute(1, 2, 0).numpy(), expected)


@pytest.mark.parametrize("size", [(1024, 768), (500, 375), (300, 1000), (256, 100), (200, 150), (257, 256)])
def test_thumbnail_sizes_are_pillows(size):
    img = Image.new("RGB", size)
    img.thumbnail((256, 256))
    assert thumbnail_size(*size) == img.size


def test_a_decoder_is_tried_on_a_small_jpeg_before_a_build_counts_on_it():
    def not_built_for_cuda(files):
        raise RuntimeError("torchvision was not compiled with CUDA support")

    assert gpu_decoding.decodes(pillow_decode)
    assert not gpu_decoding.decodes(not_built_for_cuda)
    assert not gpu_decoding.decodes(lambda files: [torch.zeros((3, 1, 1), dtype=torch.uint8)])


def test_a_gpu_build_s_decode_processes_only_read_the_jpegs_the_gpu_decodes(tmp_path):
    # What a decode process gives a build decoding on the GPU: a JPEG read, hashed and its header
    # checked, not decoded; anything else decoded as without a GPU, or the reason it cannot be.
    (tmp_path / "photo.jpg").write_bytes(with_orientation(shapes_image(1, (320, 240)), 6))
    shapes_image(2, (300, 200)).save(tmp_path / "drawing.png")
    (tmp_path / "truncated.jpg").write_bytes(jpeg(shapes_image(3, (320, 240)))[:-500])
    (tmp_path / "cmyk.jpg").write_bytes(jpeg(shapes_image(4, (320, 240)).convert("CMYK")))
    row = jpeg(shapes_image(5, (320, 240)))  # a dataset's bytes
    jobs = [
        (tmp_path / name, None, False) for name in ("photo.jpg", "drawing.png", "truncated.jpg", "cmyk.jpg")
    ]
    (photo, *others, from_row) = prepare_several([*jobs, (row, None, True)], 224, True, gpu=True)
    (content, pixels, thumbnail, error), file, facts = photo
    assert (pixels, thumbnail, error, facts) == (None, b"", "", None) and content
    assert file.raw == (tmp_path / "photo.jpg").read_bytes() and file.orientation == 6
    (drawing, _, _), (truncated, _, _), (cmyk, _, _) = others
    assert [file for _, file, _ in others] == [None, None, None]
    assert drawing[1].shape == (224, 224, 3) and Image.open(io.BytesIO(drawing[2])).format == "JPEG"
    assert truncated[1] is None and "truncated" in truncated[3]
    assert cmyk[1].shape == (224, 224, 3)  # decoded on the CPU, which turns it to RGB
    assert from_row[1].orientation == 1 and from_row[2] is not None  # its header read where it was read
    assert from_row[1].raw == b""  # the build has a row's bytes: not sent back
    # Without `gpu`, the same process decodes every file.
    decoded, file, _ = prepare_several(jobs[:1], 224, True)[0]
    assert file is None and decoded[1].shape == (224, 224, 3)


def test_encoded_files_come_back_whole_and_in_order():
    files = [torch.tensor(list(data), dtype=torch.uint8) for data in (b"abc", b"", b"de", b"f")]
    assert gpu_decoding.files_to_host(files) == [b"abc", b"", b"de", b"f"]


def failing_encode(images: list[torch.Tensor]) -> list[bytes]:
    raise RuntimeError("nvjpeg encoder error")


def test_an_encoder_that_fails_is_reported_once_and_not_tried_again(caplog):
    calls = []

    def encode(images):
        calls.append(len(images))
        return failing_encode(images)

    decoder = GpuDecoder(pillow_decode, 224, encoders=2, encode=encode)
    files = [gpu_candidate(jpeg(shapes_image(i, (320, 240)))) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="indexing.gpu_decoding"):
        first, second = decoder(files), decoder(files)
    decoder.close()
    assert calls == [3] and all(first) and all(second)  # Pillow made the thumbnails both times
    assert [r.getMessage() for r in caplog.records] == [
        "thumbnails encoded on the CPU from now on: the GPU's encoder failed (nvjpeg encoder error)"
    ]


@pytest.mark.parametrize("encode", [None, pillow_encode, failing_encode])
def test_crops_and_thumbnails_match_the_cpu_path(encode):
    decoder = GpuDecoder(pillow_decode, 224, encoders=2, encode=encode)
    sizes = [(1024, 768), (480, 640), (300, 300), (900, 300), (2400, 200)]  # the last is over 8:1
    images = [shapes_image(i, size) for i, size in enumerate(sizes)]
    files = [jpeg(img) for img in images] + [with_orientation(images[0], 6), jpeg(images[1].convert("L"))]
    results = decoder([gpu_candidate(raw) for raw in files])
    decoder.close()
    for raw, (on_device, thumbnail) in zip(files, results, strict=True):
        crop = on_device.cpu().numpy()
        cpu = load_image(raw)  # full size, upright
        difference = np.abs(crop.astype(np.int16) - clip_pixels(cpu, 224, fast=False).astype(np.int16))
        assert crop.shape == (224, 224, 3) and difference.mean() < 1.0, difference.mean()
        assert isinstance(on_device, torch.Tensor)  # left where the model takes it
        ours, theirs = Image.open(io.BytesIO(thumbnail)), Image.open(io.BytesIO(thumbnail_jpeg(cpu)))
        assert ours.size == theirs.size
        assert np.abs(np.asarray(ours, np.int16) - np.asarray(theirs, np.int16)).mean() < 2.0


def test_images_of_one_size_and_orientation_are_resized_together_and_come_back_in_order(monkeypatch):
    resized = []
    resize = gpu_decoding._resize
    monkeypatch.setattr(
        gpu_decoding, "_resize", lambda images, size: resized.append(len(images)) or resize(images, size)
    )
    images = [shapes_image(i, (640, 480)) for i in range(6)]
    files = [with_orientation(img, 6) if i % 2 else jpeg(img) for i, img in enumerate(images)]
    decoder = GpuDecoder(pillow_decode, 224, encoders=2)
    results = decoder([gpu_candidate(raw) for raw in files])
    decoder.close()
    assert resized == [3, 3, 3, 3]  # two groups (upright, turned), each a crop and a thumbnail
    for raw, (on_device, thumbnail) in zip(files, results, strict=True):
        crop = on_device.cpu().numpy()
        cpu = load_image(raw)
        assert np.abs(crop.astype(np.int16) - clip_pixels(cpu, 224, fast=False).astype(np.int16)).mean() < 1.0
        assert Image.open(io.BytesIO(thumbnail)).size == thumbnail_size(*cpu.size)  # 192×256 when turned

    monkeypatch.setattr(gpu_decoding, "PIXELS_PER_RESIZE", 2 * 640 * 480)
    resized.clear()
    decoder = GpuDecoder(pillow_decode, 224, encoders=2)
    again = decoder([gpu_candidate(raw) for raw in files])
    decoder.close()
    assert resized == [2, 2, 1, 1, 2, 2, 1, 1]  # at most two images' pixels resized at a time
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(again, results, strict=True))


def test_a_file_the_decoder_refuses_costs_only_itself(monkeypatch):
    monkeypatch.setattr(gpu_decoding, "PIXELS_PER_CALL", 10**9)
    good = jpeg(shapes_image(3, (320, 240)))
    broken = good[:400] + b"\x00" * 2000 + good[-2:]  # complete-looking, corrupt inside
    candidate = gpu_candidate(broken)
    if candidate is None:  # Pillow saw through it already: build the candidate by hand
        candidate = JpegFile(broken, 1, 320 * 240)
    calls = []

    def decode(files):
        calls.append(len(files))
        return pillow_decode(files)

    decoder = GpuDecoder(decode, 224, encoders=1)
    results = decoder([gpu_candidate(good), candidate, gpu_candidate(good)])
    decoder.close()
    assert results[0] is not None and results[2] is not None and results[1] is None
    assert calls == [3, 1, 1, 1]  # the batch failed, then each file alone


def test_calls_stay_under_the_pixel_limit(monkeypatch):
    monkeypatch.setattr(gpu_decoding, "PIXELS_PER_CALL", 320 * 240 * 2)
    calls = []

    def decode(files):
        calls.append(len(files))
        return pillow_decode(files)

    decoder = GpuDecoder(decode, 224, encoders=1)
    assert all(decoder([gpu_candidate(jpeg(shapes_image(i, (320, 240)))) for i in range(5)]))
    decoder.close()
    assert calls == [2, 2, 1]


@pytest.mark.skipif(gpu_decoding.nvjpeg("cuda") is None, reason="needs CUDA and torchvision")
def test_nvjpeg_gives_what_the_cpu_path_gives():
    encode = gpu_decoding.nvjpeg_encoder("cuda")
    decoder = GpuDecoder(gpu_decoding.nvjpeg("cuda"), 224, encoders=2, encode=encode)
    images = [shapes_image(i, (1024, 768)) for i in range(4)] + [shapes_image(4, (200, 150))]
    files = [jpeg(images[0]), with_orientation(images[1], 6), jpeg(images[2].convert("L")), jpeg(images[3])]
    files += [with_orientation(images[4], 8)]  # small: its thumbnail is the turned picture itself
    results = decoder([gpu_candidate(raw) for raw in files])
    decoder.close()
    assert encode is not None
    grey = torch.full((3, 48, 64), 128, dtype=torch.uint8, device="cuda")
    assert [Image.open(io.BytesIO(f)).size for f in encode([grey, grey[:, :32].contiguous()])] == [
        (64, 48),
        (64, 32),
    ]
    for raw, (on_device, thumbnail) in zip(files, results, strict=True):
        crop = on_device.cpu().numpy()
        cpu = load_image(raw)
        expected = clip_pixels(cpu, 224, fast=False).astype(np.int16)
        assert np.abs(crop.astype(np.int16) - expected).mean() < 1.5
        ours, theirs = Image.open(io.BytesIO(thumbnail)), Image.open(io.BytesIO(thumbnail_jpeg(cpu)))
        assert ours.format == "JPEG" and ours.size == theirs.size
        assert (
            np.abs(
                np.asarray(ours.convert("RGB"), np.int16) - np.asarray(theirs.convert("RGB"), np.int16)
            ).mean()
            < 3.0
        )


def test_a_build_decoding_on_the_gpu_gives_the_index_threads_give(tmp_path, embedder, monkeypatch):
    import indexing.build
    from indexing.build import build_index
    from indexing.sources import FolderSource
    from indexing.store import IndexStore

    decoded = []

    def decode(files):
        if any(b"nvjpeg-refuses" in f.numpy().tobytes() for f in files):
            raise RuntimeError("nvjpeg: unsupported JPEG")  # e.g. arithmetic coding
        decoded.extend(files)
        return pillow_decode(files)

    monkeypatch.setattr(indexing.build, "nvjpeg", lambda device: decode)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(10):
        (folder / f"photo_{i}.jpg").write_bytes(jpeg(shapes_image(i, (640, 480))))
    (folder / "turned.jpg").write_bytes(with_orientation(shapes_image(20, (640, 480)), 6))
    (folder / "grey.jpg").write_bytes(jpeg(shapes_image(21, (480, 640)).convert("L")))
    shapes_image(22, (300, 200)).save(folder / "drawing.png")
    good = jpeg(shapes_image(23, (320, 240)))
    (folder / "truncated.jpg").write_bytes(good[:-600])
    (folder / "corrupt.jpg").write_bytes(good[:400] + b"\x00" * 2000 + good[-2:])
    (folder / "copy.jpg").write_bytes((folder / "photo_3.jpg").read_bytes())
    (folder / "refused.jpg").write_bytes(jpeg(shapes_image(24, (640, 480)), comment=b"nvjpeg-refuses"))
    summaries = {
        decode: build_index(
            FolderSource(folder), tmp_path / decode, embedder, progress=False, decode=decode, workers=2
        )
        for decode in ("threads", "gpu")
    }
    assert summaries["gpu"].count == summaries["threads"].count == 15  # refused.jpg decoded on the CPU
    assert (summaries["gpu"].decoding, summaries["threads"].decoding) == ("gpu", "threads")
    assert sorted(k for k, _ in summaries["gpu"].skipped) == ["corrupt.jpg", "truncated.jpg"]
    assert sorted(summaries["threads"].skipped) == sorted(summaries["gpu"].skipped)
    stores = {decode: IndexStore(tmp_path / decode) for decode in summaries}
    vectors = {}
    for decode, store in stores.items():
        ids = store.catalog.ids()
        keys = {i: item.key for i, item in store.items(ids).items()}
        vectors[decode] = {keys[int(i)]: v for i, v in zip(ids, store.vectors.read(ids), strict=True)}
    assert vectors["gpu"].keys() == vectors["threads"].keys()
    assert all(float(vectors["gpu"][k] @ vectors["threads"][k]) > 0.999 for k in vectors["gpu"])
    assert np.array_equal(vectors["gpu"]["copy.jpg"], vectors["gpu"]["photo_3.jpg"])
    # The photos, turned.jpg and grey.jpg: not drawing.png (decoded in a decode process), nor the
    # truncated and corrupt ones, whose headers the decode processes found wrong.
    assert len({bytes(t.numpy()) for t in decoded}) == 12
    ids = {d: {item.key: i for i, item in stores[d].items(stores[d].catalog.ids()).items()} for d in stores}
    turned = [np.asarray(Image.open(io.BytesIO(stores[d].thumbnail(ids[d]["turned.jpg"])))) for d in stores]
    assert turned[0].shape == turned[1].shape == (256, 192, 3)  # upright: portrait
    assert np.abs(turned[0].astype(np.int16) - turned[1].astype(np.int16)).mean() < 3.0


@pytest.mark.parametrize(
    ("device", "has_nvjpeg", "mode", "workers"),
    [
        ("cuda", True, "gpu", max(1, usable_cores() - 1)),
        ("cuda", False, "processes", max(1, usable_cores() - 1)),
        ("cpu", True, "threads", min(4, usable_cores())),
    ],
)
def test_auto_decodes_on_the_gpu_where_the_model_is_there_and_nvjpeg_too(
    monkeypatch, device, has_nvjpeg, mode, workers
):
    import indexing.build

    monkeypatch.setattr(indexing.build, "nvjpeg", lambda _: pillow_decode if has_nvjpeg else None)
    model = SimpleNamespace(device=device, image_size=224, fast_decode=True)
    with indexing.build._decoders(model, None, "auto", None) as decoders:
        assert (decoders.mode, decoders.workers) == (mode, workers)


@pytest.mark.skipif(gpu_decoding.nvjpeg("cuda") is not None, reason="this machine can decode on its GPU")
def test_asking_for_gpu_decoding_without_a_gpu_is_a_clear_error(tmp_path, embedder, collection):
    from indexing.build import build_index
    from indexing.errors import BuscadorError
    from indexing.sources import FolderSource

    with pytest.raises(BuscadorError, match="--decode gpu needs the model on a CUDA GPU"):
        build_index(FolderSource(collection), tmp_path / "index", embedder, progress=False, decode="gpu")


def test_the_gpu_decodes_the_next_batch_while_the_model_has_this_one():
    from concurrent.futures import Future

    from indexing.build import _one_ahead

    started = []

    def start(batch):
        started.append(batch)
        done = Future()
        done.set_result([n * 10 for n in batch])
        return done

    batches = _one_ahead(iter([[1], [2], [3]]), start)
    assert next(batches) == [10] and started == [[1], [2]]  # the second began before the first came back
    assert list(batches) == [[20], [30]] and started == [[1], [2], [3]]
    assert list(_one_ahead(iter([]), start)) == []


def test_a_batch_of_crops_from_the_gpu_and_the_cpu_goes_to_the_model_as_one_tensor():
    import warnings

    from indexing.build import _stacked

    on_gpu = torch.full((224, 224, 3), 7, dtype=torch.uint8)  # (the stand-in's device: the CPU)
    decoded_here = np.asarray(Image.new("RGB", (224, 224), (1, 2, 3)))
    decoded_here.flags.writeable = False  # a decoded picture's own pixels, as Pillow keeps them
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on a read-only array it is given
        batch = _stacked([on_gpu, decoded_here])
    assert isinstance(batch, torch.Tensor) and batch.shape == (2, 224, 224, 3)
    assert batch[0, 0, 0].tolist() == [7, 7, 7] and batch[1, 0, 0].tolist() == [1, 2, 3]
    assert isinstance(_stacked([decoded_here, decoded_here]), np.ndarray)  # none from the GPU
