"""Videos or photos alone: `is:video` and `is:photo` in a query, on their own or beside a
description, a period, a place or a folder; counted under Options and by `info`."""

from __future__ import annotations

import pytest
from PIL import Image

from indexing.build import build_index
from indexing.errors import BuscadorError
from indexing.media import split_kind
from indexing.search import Searcher
from indexing.sources import FolderSource
from indexing.video import clock
from tests.colour_embedder import PALETTE, ColourEmbedder, colour_image
from tests.synthetic import write_video

RED, BLUE = PALETTE["red"], PALETTE["blue"]


def _dated_photo(path, colour, taken):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    colour_image(colour).save(path, exif=exif)


@pytest.fixture
def searcher(tmp_path):
    photos = tmp_path / "photos"
    (photos / "party").mkdir(parents=True)
    _dated_photo(photos / "red.jpg", "red", "2019:07:14 10:00:00")
    _dated_photo(photos / "party" / "blue.jpg", "blue", "2020:01:01 10:00:00")
    write_video(photos / "cake.mp4", [RED, RED], tags={"creation_time": "2019-08-01T10:00:00.000000Z"})
    write_video(photos / "party" / "dance.MOV", [BLUE], tags={"creation_time": "2018-05-01T10:00:00.000000Z"})
    embedder = ColourEmbedder()
    build_index(FolderSource(photos), tmp_path / "index", embedder, progress=False)
    return Searcher.open(tmp_path / "index", embedder)


def test_is_video_and_is_photo_are_read_from_a_query():
    assert split_kind("a cake is:video") == ("a cake", "video")
    assert split_kind("IS:Photos beach") == ("beach", "photo")
    assert split_kind("tarta es:vídeo") == ("tarta", "video")  # Spanish, with its accent or without
    assert split_kind("es:fotos playa") == ("playa", "photo")
    assert split_kind("what it is: a cat") == ("what it is: a cat", None)  # a description
    with pytest.raises(BuscadorError, match="'cat' is not a kind of image: write is:video or is:photo"):
        split_kind("beach is:cat")
    with pytest.raises(BuscadorError, match="videos and photos at once"):
        split_kind("is:video is:photo")


def test_a_search_finds_the_videos_alone_or_the_photos_alone(searcher):
    assert [hit.key for hit in searcher.by_query("red", k=4)][:2] == ["red.jpg", "cake.mp4"]
    assert [hit.key for hit in searcher.by_query("red is:video", k=4)] == ["cake.mp4", "party/dance.MOV"]
    assert [hit.key for hit in searcher.by_query("red is:photo", k=4)] == ["red.jpg", "party/blue.jpg"]
    assert [hit.key for hit in searcher.by_query("blue es:vídeo", k=1, within="party")] == ["party/dance.MOV"]
    listed = searcher.by_query("is:video", k=4)  # the videos alone, in the order they were taken
    assert [(hit.key, hit.score) for hit in listed] == [("party/dance.MOV", None), ("cake.mp4", None)]
    assert [hit.key for hit in searcher.by_query("is:photo taken:2019", k=4)] == ["red.jpg"]
    photo = searcher.original(searcher.by_query("red is:photo", k=1)[0].id)  # the Image tab, with words
    assert [hit.key for hit in searcher.by_query("is:video", image=photo, k=1)] == ["cake.mp4"]


def test_a_kind_that_finds_nothing_says_why(searcher, tmp_path):
    with pytest.raises(BuscadorError, match="none of the images searched is a video") as raised:
        searcher.by_query("red is:video taken:2020", k=4)
    assert raised.value.code == "no_videos_among"
    embedder = ColourEmbedder()
    photos_alone = tmp_path / "photos_alone"
    photos_alone.mkdir()
    colour_image("red").save(photos_alone / "a.png")
    build_index(FolderSource(photos_alone), tmp_path / "i3", embedder, progress=False)
    with pytest.raises(BuscadorError, match="this index holds no video"):
        Searcher.open(tmp_path / "i3", embedder).by_query("red is:video")


def test_the_videos_are_counted_under_options_and_by_info(searcher, tmp_path, capsys):
    import gradio as gr

    import app
    from indexing.cli import main
    from ui import text
    from ui.handlers import Engine, Handlers

    assert searcher.store.manifest["videos"] == 2
    handlers = Handlers(Engine(searcher))
    assert " · 🎞️ [2 videos](?q=is%3Avideo): `is:video`" in app.index_status(handlers.engine)
    assert " · 🎞️ [2 vídeos](?q=es%3Av%C3%ADdeo): `es:vídeo`" in app.index_status(handlers.engine, "es")
    assert handlers.info(gr.Request())["videos"] == 2
    gallery, hits, _, _ = handlers.search_text("is:video", 5, -1.0, False, "", gr.Request())  # its link
    assert [(hit["key"], hit["seconds"]) for hit in hits] == [("party/dance.MOV", 1.0), ("cake.mp4", 2.0)]
    assert [caption for _, caption in gallery] == [  # a video is marked as one
        "#1 · ▶ 0:01 party/dance.MOV · 2018-05-01",  # with how long it lasts
        "#2 · ▶ 0:02 cake.mp4 · 2019-08-01",
    ]
    assert main(["info", str(tmp_path / "index")]) == 0
    assert "videos:      2 (search them alone with is:video" in capsys.readouterr().out
    # A listing needs no model: none is loaded (the default one, not here, would fail to load).
    assert main(["search", str(tmp_path / "index"), "--text", "is:video"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("  (")[0].rsplit("/", 1)[-1] for line in listed] == ["dance.MOV", "cake.mp4"]
    assert listed[0].endswith(", a video of 0:01, taken 2018-05-01)")
    english = text.error("en", BuscadorError("", "no_videos_among"))
    assert (english, text.error("es", BuscadorError("", "no_videos"))) == (
        "None of the images searched is a video.",
        "Este índice no tiene ningún vídeo.",
    )


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.4, "0:00"), (42.4, "0:42"), (725, "12:05"), (3723, "1:02:03")]
)
def test_a_video_s_length_is_shown_as_players_show_it(seconds, shown):
    assert clock(seconds) == shown
