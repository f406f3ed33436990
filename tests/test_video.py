"""Videos: indexed by a frame a third of the way in, upright, with when and where they were shot;
hashed without being read whole; reported with what reads them where PyAV is missing."""

from __future__ import annotations

import errno
import gc
import io
import os
import shutil
import tempfile
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from indexing import config, headers, video
from indexing.build import build_index
from indexing.catalog import CATALOG, Catalog
from indexing.decoding import read_and_hash
from indexing.duplicates import Member
from indexing.errors import BadImage, BuscadorError
from indexing.images import load_image, photo_jpeg
from indexing.search import Searcher
from indexing.sources import SAMPLED, FolderSource, content_hash, sampled_content_hash
from tests.colour_embedder import PALETTE, ColourEmbedder, colour_image
from tests.crashing import CrashOn
from tests.isolation import output_without
from tests.synthetic import write_video
from ui import video_copies
from ui.handlers import BuildUrls, Handlers
from ui.routes import video_route
from ui.startup import Engine, index_tag
from ui.video_copies import VideoCopies

BLACK, RED, BLUE = PALETTE["black"], PALETTE["red"], PALETTE["blue"]


def _colour(picture: Image.Image, xy: tuple[int, int]) -> str:
    pixel = np.asarray(picture.getpixel(xy), np.float32)
    return min(PALETTE, key=lambda name: float(np.linalg.norm(pixel - PALETTE[name])))


def test_a_video_is_found_by_its_frame_a_third_of_the_way_in(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_video(photos / "party.mp4", [BLACK, RED, RED])  # a fade-in: black at first
    colour_image("blue").save(photos / "sea.png")
    colour_image("black").save(photos / "night.png")
    embedder = ColourEmbedder()
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.count, summary.skipped) == (3, [])
    searcher = Searcher.open(tmp_path / "index", embedder)
    hit = searcher.by_text("red", k=1)[0]
    assert hit.key == "party.mp4" and hit.score > 0.99
    assert _colour(Image.open(io.BytesIO(searcher.thumbnail(hit.id))), (5, 5)) == "red"
    shown = Image.open(io.BytesIO(photo_jpeg(photos / "party.mp4")))  # "Open the photo"
    assert shown.size == (96, 64) and _colour(shown, (5, 5)) == "red"


def test_decode_processes_read_a_video_and_when_and_where_it_was_shot(tmp_path, embedder):
    photos = tmp_path / "photos"
    photos.mkdir()
    tags = {"creation_time": "2019-07-14T16:22:05.000000Z", "location": "+36.5271-006.2886/"}
    write_video(photos / "beach.mp4", [BLACK, RED, RED], size=(320, 240), tags=tags)
    summary = build_index(
        FolderSource(photos), tmp_path / "index", embedder, decode="processes", workers=1, progress=False
    )
    assert (summary.count, summary.skipped) == (1, [])
    searcher = Searcher.open(tmp_path / "index", embedder)
    hit = searcher.by_image(photos / "beach.mp4", k=1)[0]
    assert hit.key == "beach.mp4" and hit.score > 0.999  # the same frame, decoded in the process
    assert (hit.taken, hit.place) == ("2019-07-14T18:22:05", "Cadiz, Spain")  # its UTC time, made local
    assert _colour(Image.open(io.BytesIO(searcher.thumbnail(hit.id))), (5, 5)) == "red"


def test_a_live_photo_s_motion_is_left_out_its_photo_standing_for_it(tmp_path):
    write_video(tmp_path / "IMG_0001.MOV", [RED])  # an iPhone's Live Photo: a photo and 3 s of motion
    colour_image("red").save(tmp_path / "IMG_0001.JPG")
    write_video(tmp_path / "PXL_0002.MP.mp4", [RED])  # Google Takeout's Motion Photo
    colour_image("red").save(tmp_path / "PXL_0002.MP.jpg")
    write_video(tmp_path / "IMG_0003.MOV", [BLUE])  # a video of its own
    keys = [item.key for item in FolderSource(tmp_path).items()]
    assert keys == ["IMG_0001.JPG", "IMG_0003.MOV", "PXL_0002.MP.jpg"]
    write_video(tmp_path / "IMG_0004.MOV", [RED])  # beside a HEIC, kept where no HEIC is read
    (tmp_path / "IMG_0004.HEIC").write_bytes(b"")
    keys = [item.key for item in FolderSource(tmp_path).items()]
    assert ("IMG_0004.MOV" in keys) == ("IMG_0004.HEIC" not in keys)


def test_a_video_is_played_in_the_browser_without_its_metadata(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    stored = np.zeros((64, 96, 3), np.uint8)
    stored[:32] = RED
    gps = {"location": "+36.5271-006.2886/", "com.apple.quicktime.location.ISO6709": "+36.5271-006.2886/"}
    write_video(photos / "niña.mov", [stored, stored], turned=90, tags=gps)  # a phone's, held upright
    colour_image("blue").save(photos / "sea.png")
    with av.open(str(photos / "old.mpg"), "w") as out:  # MPEG-2: no browser plays it
        stream = out.add_stream("mpeg2video", rate=10)
        stream.width, stream.height = 96, 64
        for _ in range(10):
            out.mux(
                stream.encode(av.VideoFrame.from_ndarray(np.zeros((64, 96, 3), np.uint8), format="rgb24"))
            )
        out.mux(stream.encode())
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    ids = {hit.key: hit.id for hit in searcher.by_text("red", k=3)}
    engine = Engine(searcher, originals=True)
    tag = index_tag(searcher)
    urls = BuildUrls("http://x", tag, originals=True)
    hits = {h["key"]: h for h in Handlers(engine)._hits(searcher.by_text("red", k=3), "en", urls)}
    assert (
        hits["niña.mov"]["video"] == f"http://x/video/{tag}/{ids['niña.mov']}.mp4"
    )  # "Open the photo" plays it
    assert hits["sea.png"]["video"] is None and hits["sea.png"]["photo"].endswith(".jpg")
    clip, sea = (
        Member(ids["niña.mov"], "niña.mov", "niña.mov", 1.0),
        Member(ids["sea.png"], "sea.png", "sea.png", 1.0),
    )
    assert (urls.opened(clip), urls.opened(sea)) == (
        hits["niña.mov"]["video"],
        hits["sea.png"]["photo"],
    )  # Duplicates tab

    http = TestClient(Starlette(routes=[video_route(engine)]))
    answer = http.get(f"/video/{tag}/{ids['niña.mov']}.mp4")
    assert answer.status_code == 200 and answer.headers["content-type"] == "video/mp4"
    assert answer.headers["content-disposition"] == "inline; filename*=UTF-8''ni%C3%B1a.mp4"
    assert b"36.5271" not in answer.content  # its position stays on the server
    played = tmp_path / "played.mp4"
    played.write_bytes(answer.content)
    with av.open(str(played)) as container:
        assert "location" not in container.metadata
        frames = list(container.decode(video=0))
    assert len(frames) == 20 and frames[0].rotation == 90  # every frame, and still upright
    for path, words in [
        (f"/video/{tag}/{ids['sea.png']}.mp4", "not available here"),  # a photo
        (f"/video/{tag}/{ids['old.mpg']}.mp4", "a video in a format browsers do not play"),
        (f"/video/{tag}/{ids['niña.mov']}.jpg", "not available here"),
    ]:
        answer = http.get(path)
        assert answer.status_code == 404 and words in answer.text, (path, answer.text)


def _first_colour(mp4: bytes, where: Path) -> str:
    where.write_bytes(mp4)
    with av.open(str(where)) as container:
        return _colour(next(container.decode(video=0)).to_image(), (5, 5))


def test_a_played_video_is_sought_by_ranges_in_one_copy_of_it(tmp_path, monkeypatch, decoders_here):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_video(photos / "a.mp4", [RED, BLUE, RED], tags={"location": "+36.5271-006.2886/"})
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    url = f"/video/{index_tag(searcher)}/{searcher.by_text('red', k=1)[0].id}.mp4"
    made = []
    monkeypatch.setattr(video_copies, "seekable_copy", lambda *a: made.append(a) or video.seekable_copy(*a))
    http = TestClient(Starlette(routes=[video_route(Engine(searcher, originals=True), VideoCopies(10**8))]))
    whole = http.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert int(whole.headers["content-length"]) == len(whole.content)
    assert whole.content.find(b"moov") < whole.content.find(b"mdat")  # its index first: it starts at once
    assert b"36.5271" not in whole.content  # its position stays on the server
    part = http.get(url, headers={"Range": "bytes=100-199"})  # the browser seeks
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert len(made) == 1  # one copy serves every request
    assert _first_colour(whole.content, tmp_path / "played.mp4") == "red"
    write_video(photos / "a.mp4", [BLUE, BLUE, BLUE])  # a new video under its name
    os.utime(photos / "a.mp4", ns=(1, 1))
    assert _first_colour(http.get(url).content, tmp_path / "played.mp4") == "blue"
    assert len(made) == 2


def test_copies_beyond_their_room_go_least_recently_played_first(tmp_path, monkeypatch, decoders_here):
    for name, colour in [("a", RED), ("b", BLUE), ("c", BLACK)]:
        write_video(tmp_path / f"{name}.mp4", [colour, colour])
    size = max(path.stat().st_size for path in tmp_path.glob("*.mp4"))
    copies = VideoCopies(room=size * 5 // 2)  # two copies, not three
    a, b = copies.copy_of(tmp_path / "a.mp4"), copies.copy_of(tmp_path / "b.mp4")
    assert copies.copy_of(tmp_path / "a.mp4") == a  # played again: b is now the older
    c = copies.copy_of(tmp_path / "c.mp4")
    assert (a.exists(), b.exists(), c.exists()) == (True, False, True)
    assert sorted(a.parent.iterdir()) == sorted([a, c])  # nothing else left in their folder
    write_video(tmp_path / "long.mp4", [RED] * 20)  # more than half the room: streamed
    assert (tmp_path / "long.mp4").stat().st_size > copies.room // 2
    assert copies.copy_of(tmp_path / "long.mp4") is None

    def full(*_: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video_copies, "seekable_copy", full)
    (tmp_path / "b.mp4").touch()
    assert copies.copy_of(tmp_path / "b.mp4") is None  # a full disk: streamed as well
    assert sorted(a.parent.iterdir()) == sorted([a, c])
    folder = a.parent
    del copies
    gc.collect()
    assert not folder.exists()  # gone with the app


def test_copies_left_by_a_killed_app_go_when_the_next_one_makes_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    killed = tmp_path / "tmp" / "buscador-videos-4194304-abc"  # above Linux's highest process id
    running = tmp_path / "tmp" / f"buscador-videos-{os.getppid()}-def"  # an app still running
    for folder in (killed, running):
        folder.mkdir()
        (folder / "x.mp4").write_bytes(b"a copy")
    write_video(tmp_path / "a.mp4", [RED])
    copies = VideoCopies(10**8)
    copy = copies.copy_of(tmp_path / "a.mp4")
    assert copy.parent.name.startswith(f"buscador-videos-{os.getpid()}-")
    assert sorted(path.name for path in (tmp_path / "tmp").iterdir()) == sorted(
        [copy.parent.name, running.name]
    )


def test_a_copy_a_cleaner_removed_is_made_again_and_no_room_for_copies_streams(tmp_path, monkeypatch):
    write_video(tmp_path / "a.mp4", [RED])
    copies = VideoCopies(10**8)
    first = copies.copy_of(tmp_path / "a.mp4")
    first.unlink()  # a cleaner of /tmp took it
    assert copies.copy_of(tmp_path / "a.mp4") == first and first.is_file()
    shutil.rmtree(first.parent)  # and the whole folder
    again = copies.copy_of(tmp_path / "a.mp4")
    assert again.is_file() and again.parent != first.parent
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-there"))  # nowhere to write one
    shutil.rmtree(again.parent)
    assert copies.copy_of(tmp_path / "a.mp4") is None  # streamed instead


def test_a_video_whose_copy_crashes_ffmpeg_is_refused_and_the_app_plays_the_next(tmp_path, monkeypatch):
    for name, colour in [("a", RED), ("b", BLUE)]:
        write_video(tmp_path / f"{name}.mp4", [colour, colour])
    embedder = ColourEmbedder()
    build_index(FolderSource(tmp_path), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    urls = {
        colour: f"/video/{index_tag(searcher)}/{searcher.by_text(colour, k=1)[0].id}.mp4"
        for colour in ("red", "blue")
    }
    monkeypatch.setattr(video_copies, "seekable_copy", CrashOn("a.mp4", video.seekable_copy))
    http = TestClient(Starlette(routes=[video_route(Engine(searcher, originals=True), VideoCopies(10**8))]))
    for _ in range(2):  # asked again: told again, without another crash
        answer = http.get(urls["red"])
        assert answer.status_code == 404 and "a damaged video, which stopped our player" in answer.text
    blue = http.get(urls["blue"], headers={"Accept-Language": "es"})
    assert blue.status_code == 200 and _first_colour(blue.content, tmp_path / "played.mp4") == "blue"
    spanish = http.get(urls["red"], headers={"Accept-Language": "es"})
    assert "un vídeo dañado, que detuvo nuestro reproductor" in spanish.text


def test_a_video_too_big_for_a_copy_is_streamed(tmp_path):
    write_video(tmp_path / "a.mp4", [RED, BLUE])
    embedder = ColourEmbedder()
    build_index(FolderSource(tmp_path), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    url = f"/video/{index_tag(searcher)}/{searcher.by_text('red', k=1)[0].id}.mp4"
    http = TestClient(Starlette(routes=[video_route(Engine(searcher, originals=True), VideoCopies(0))]))
    answer = http.get(url)
    assert answer.status_code == 200 and "accept-ranges" not in answer.headers
    assert _first_colour(answer.content, tmp_path / "played.mp4") == "red"


def test_a_phone_s_portrait_video_is_shown_upright(tmp_path):
    stored = np.zeros((64, 96, 3), np.uint8)
    stored[:32] = RED  # its top half as the phone stored it
    write_video(tmp_path / "portrait.mov", [stored], turned=90)  # to be turned a quarter to the left
    picture = load_image(tmp_path / "portrait.mov", min_side=32)
    assert picture.size == (64, 96)  # never below a thumbnail's size: not scaled down
    assert (_colour(picture, (10, 48)), _colour(picture, (54, 48))) == ("red", "black")  # top went left
    write_video(tmp_path / "wide.mp4", [RED], size=(1280, 720), turned=270)
    assert load_image(tmp_path / "wide.mp4", min_side=224).size == (256, 455)  # a thumbnail's short side


def test_a_video_says_when_and_where_it_was_shot(tmp_path):
    iphone = {
        "com.apple.quicktime.creationdate": "2019-07-14T18:22:05+0200",
        "com.apple.quicktime.location.ISO6709": "+36.5271-006.2886+012.345/",
        "creation_time": "2019-07-14T16:22:05.000000Z",
    }
    write_video(tmp_path / "IMG_0001.MOV", [RED], tags=iphone)
    assert headers.from_file(tmp_path / "IMG_0001.MOV") == headers.Facts(
        "2019-07-14T18:22:05", 36.5271, -6.2886, 1.0
    )  # and how long it lasts
    utc = {"creation_time": "2021-03-02T07:00:00.000000Z", "location": "+48.8584+002.2945/"}
    write_video(tmp_path / "VID_20210302_080000.mp4", [RED], tags=utc)  # the name's local time first
    assert headers.from_file(tmp_path / "VID_20210302_080000.mp4") == headers.Facts(
        "2021-03-02T08:00:00", 48.8584, 2.2945, 1.0
    )
    write_video(tmp_path / "clip.mp4", [RED], tags=utc)
    assert headers.from_file(tmp_path / "clip.mp4").taken == "2021-03-02T07:00:00Z"  # UTC: local by its place
    write_video(tmp_path / "unset.mp4", [RED], tags={"creation_time": "1970-01-01T00:00:00.000000Z"})
    assert headers.from_file(tmp_path / "unset.mp4") == headers.Facts(seconds=1.0)


def test_a_video_s_utc_time_is_made_local_where_it_says_where_it_was_shot(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    new_york = {"creation_time": "2019-07-15T01:30:00.000000Z", "location": "+40.7484-073.9857/"}
    write_video(photos / "night.mp4", [RED], tags=new_york)  # 9:30 pm in Manhattan, the day before in UTC
    write_video(photos / "nowhere.mp4", [BLUE], tags={"creation_time": "2019-07-15T01:30:00.000000Z"})
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    searcher = Searcher.open(tmp_path / "index", embedder)
    assert [(hit.key, hit.taken) for hit in searcher.by_query("taken:2019-07-14", k=5)] == [
        ("night.mp4", "2019-07-14T21:30:00")
    ]
    assert searcher.by_text("blue", k=1)[0].taken == "2019-07-15T01:30:00Z"  # no place: UTC, and says so

    catalog = Catalog(tmp_path / "index" / CATALOG)  # as a version before local times and lengths left it
    catalog.set_facts([("2019-07-15T01:30:00", 40.7484, -73.9857, None, (), None, "", "night.mp4")])
    catalog.set_meta(headers_reader="2")
    catalog.close()
    assert Searcher.open(tmp_path / "index", embedder).by_text("red", k=1)[0].seconds is None
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    hit = Searcher.open(tmp_path / "index", embedder).by_text("red", k=1)[0]
    assert (hit.taken, hit.seconds, hit.town) == ("2019-07-14T21:30:00", 1.0, "New York City, NY")


def test_a_video_is_hashed_from_its_file_and_a_renamed_one_is_not_decoded_again(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    write_video(photos / "a.mp4", [RED, BLUE])
    data, content = read_and_hash(photos / "a.mp4", None)
    assert data == photos / "a.mp4" and content == content_hash((photos / "a.mp4").read_bytes())
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    (photos / "a.mp4").rename(photos / "b.mp4")
    monkeypatch.setattr(video, "frame", lambda *a: pytest.fail("decoded again"))
    summary = build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    assert (summary.added, summary.removed, summary.moved) == (0, 0, 1)


def test_a_big_video_is_known_by_its_size_and_three_megabytes_of_it(tmp_path):
    size = 64 * SAMPLED
    data = bytearray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    (tmp_path / "a.mp4").write_bytes(data)
    (tmp_path / "copy.mp4").write_bytes(data)
    read = []

    class Counted:  # the file, counting what is read of it
        def __init__(self, file):
            self.file = file

        def fileno(self):
            return self.file.fileno()

        def seek(self, at):
            return self.file.seek(at)

        def read(self, n=-1):
            read.append(len(chunk := self.file.read(n)))
            return chunk

    with (tmp_path / "a.mp4").open("rb") as file:
        first = sampled_content_hash(Counted(file))
    assert sum(read) == 3 * SAMPLED  # not 64 MB
    assert read_and_hash(tmp_path / "copy.mp4", None)[1] == first  # a copy is the same video
    for at in (10, size // 2, size - 10):  # its start, middle or end rewritten: another video
        changed = bytearray(data)
        changed[at] ^= 0xFF
        (tmp_path / "b.mp4").write_bytes(changed)
        assert read_and_hash(tmp_path / "b.mp4", None)[1] != first
    (tmp_path / "longer.mp4").write_bytes(data + b"\x00")
    assert read_and_hash(tmp_path / "longer.mp4", None)[1] != first


def test_a_file_that_is_no_video_is_skipped_with_the_reason(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then nothing")
    write_video(photos / "good.mp4", [RED])
    half = (photos / "good.mp4").read_bytes()
    (photos / "cut.mp4").write_bytes(half[: len(half) // 2])
    summary = build_index(FolderSource(photos), tmp_path / "index", ColourEmbedder(), progress=False)
    assert summary.count == 1
    assert dict(summary.skipped) == {
        "broken.mp4": "corrupt or truncated video (Invalid data found when processing input)",
        "cut.mp4": "no picture in it (a truncated video, or sound alone)",  # its index was at its end
    }
    with pytest.raises(BadImage, match="corrupt or truncated video"):
        load_image(photos / "broken.mp4")


def test_without_pyav_videos_are_reported_with_what_reads_them(tmp_path):
    for name in ("a.mp4", "b.MOV", "c.png"):
        (tmp_path / name).write_bytes(b"")
    script = (
        "from pathlib import Path\n"
        "from indexing import headers\n"
        "from indexing.sources import FolderSource\n"
        f"source = FolderSource({str(tmp_path)!r})\n"
        "print([item.key for item in source.items()], source.left_out)\n"
        f"print(headers.from_file(Path({str(tmp_path / 'a.mp4')!r})))\n"
    )
    advice = "pip install av to index them (a frame of each)"
    assert output_without("av", script) == [
        f"['c.png'] [('a.mp4', 'video', {advice!r}), ('b.MOV', 'video', {advice!r})]",
        "Facts(taken='', lat=None, lon=None, seconds=None, tags=(), rating=None, town='', caption='')",
    ]


def test_the_room_for_video_copies_is_a_setting(monkeypatch):
    monkeypatch.setenv("VIDEO_COPIES_MB", "512")
    assert config.video_copies_room() == 512_000_000
    monkeypatch.setenv("VIDEO_COPIES_MB", "0")  # stream them all
    assert config.video_copies_room() == 0
    for wrong in ("lots", "-1", "inf"):
        monkeypatch.setenv("VIDEO_COPIES_MB", wrong)
        with pytest.raises(BuscadorError, match=f"VIDEO_COPIES_MB must be a number of megabytes.*{wrong!r}"):
            config.video_copies_room()
