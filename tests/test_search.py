"""Rankings pinned down: with the colour embedder, which image comes first (and with what score)
is known for a text, an image and "more like this"."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.build import build_index
from indexing.errors import BuscadorError
from indexing.narrowing import Narrowing, split_negatives
from indexing.search import Searcher
from indexing.sources import FolderSource
from tests.colour_embedder import ColourEmbedder, colour_image

IMAGES = {
    "red.png": ("red",),
    "blue.png": ("blue",),
    "green.png": ("green",),
    "red-blue.png": ("red", "blue"),
    "yellow-white.png": ("yellow", "white"),
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    folder = tmp_path_factory.mktemp("colours")
    for name, colours in IMAGES.items():
        colour_image(*colours).save(folder / name)
    embedder = ColourEmbedder()
    out = tmp_path_factory.mktemp("index")
    build_index(FolderSource(folder), out, embedder, progress=False)
    return Searcher.open(out, embedder)


def _ranking(hits) -> list[tuple[str, float]]:
    """(key, score to 3 decimals): vectors are stored as float16, exact to about 1e-4."""
    return [(h.key, round(h.score, 3)) for h in hits]


def _id_of(searcher: Searcher, key: str) -> int:
    store = searcher.store
    return next(i for i, item in store.items(store.catalog.ids()).items() if item.key == key)


def test_a_colour_word_ranks_the_all_that_colour_image_first_then_the_half(searcher):
    assert _ranking(searcher.by_text("red", k=2)) == [("red.png", 1.0), ("red-blue.png", 0.707)]
    assert _ranking(searcher.by_text("white", k=1)) == [("yellow-white.png", 0.707)]
    both = _ranking(searcher.by_text("red blue", k=3))
    assert both[0] == ("red-blue.png", 1.0) and sorted(both[1:]) == [
        ("blue.png", 0.707),
        ("red.png", 0.707),
    ]


def test_an_image_query_ranks_by_colour_share(searcher, tmp_path: Path):
    query = colour_image("blue", "blue", "blue", "red")  # three quarters blue
    hits = searcher.by_image(query, k=3)
    assert [h.key for h in hits] == ["blue.png", "red-blue.png", "red.png"]
    assert [round(h.score, 3) for h in hits] == [0.949, 0.894, 0.316]


def test_more_like_this_ranks_the_nearest_other_image_first(searcher):
    red = _id_of(searcher, "red.png")
    hits = searcher.by_id(red, k=2)
    assert hits[0].key == "red-blue.png" and round(hits[0].score, 3) == 0.707
    assert red not in [h.id for h in hits] and hits[1].score == 0.0


def test_min_score_cuts_the_ranking(searcher):
    assert [h.key for h in searcher.by_text("red", k=5, min_score=0.5)] == ["red.png", "red-blue.png"]


# --- near-duplicates ------------------------------------------------------------------------------
# The colour embedder gives copies of an image (re-encoded, resized) the same colour histogram,
# so cosine 1.0, while distinct colour images score 0.71 or less: the default threshold (0.94)
# separates them as it should separate copies from distinct photos with the real CLIP.


@pytest.fixture(scope="module")
def with_copies(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    folder = tmp_path_factory.mktemp("copies")
    for name, colours in IMAGES.items():
        colour_image(*colours).save(folder / name)
    colour_image("red").save(folder / "red-copy.jpg", quality=80)  # re-encoded
    colour_image("red", size=(60, 45)).save(folder / "red-small.png")  # resized
    embedder = ColourEmbedder()
    out = tmp_path_factory.mktemp("index")
    build_index(FolderSource(folder), out, embedder, progress=False)
    return Searcher.open(out, embedder)


def test_near_duplicate_results_fold_into_the_best_and_k_stays_k(with_copies):
    plain = with_copies.by_text("red", k=3)
    assert {h.key for h in plain} == {"red.png", "red-copy.jpg", "red-small.png"}  # three times the same
    folded = with_copies.by_text("red", k=3, collapse=0.94)
    assert len(folded) == 3 and [round(h.score, 3) for h in folded][:2] == [1.0, 0.707]
    assert folded[0].key in {"red.png", "red-copy.jpg", "red-small.png"} and folded[1].key == "red-blue.png"
    copies = {item.key for item in with_copies.store.items(folded[0].folded).values()}
    assert copies | {folded[0].key} == {"red.png", "red-copy.jpg", "red-small.png"}
    assert [h.rank for h in folded] == [1, 2, 3] and not folded[1].folded
    assert folded[0].as_dict()["folded"] == list(folded[0].folded)


def test_more_like_this_folds_too_and_leaves_the_image_out(with_copies):
    blue = _id_of(with_copies, "blue.png")
    hits = with_copies.by_id(blue, k=2, collapse=0.94)
    assert hits[0].key == "red-blue.png" and blue not in [h.id for h in hits]
    assert all(blue not in h.folded for h in hits)


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "0.9", True, None])
def test_bad_near_duplicate_thresholds_are_refused(with_copies, threshold):
    with pytest.raises(
        BuscadorError, match=r"near-duplicate threshold must be a number from 0 \(off\) to 1"
    ) as bad:
        with_copies.by_text("red", k=3, collapse=threshold)
    assert bad.value.code == "bad_threshold"


# --- combined, negative and paged queries ---------------------------------------------------------


def test_a_text_and_an_image_together_find_what_has_both(searcher):
    red = colour_image("red")
    assert _ranking(searcher.by_query("blue", red, k=1)) == [("red-blue.png", 1.0)]
    assert searcher.by_query("blue", red, image_weight=1.0, k=1)[0].key == "red.png"  # all image
    assert searcher.by_query("blue", red, image_weight=0.0, k=1)[0].key == "blue.png"  # all text


def test_leaving_something_out_pushes_it_down(searcher):
    with_blue = [h.key for h in searcher.by_text("red white", k=3)]  # 0.5 each after red.png
    assert with_blue[0] == "red.png" and set(with_blue[1:]) == {"red-blue.png", "yellow-white.png"}
    without_blue = [h.key for h in searcher.by_text("red white -blue", k=3)]
    assert without_blue[:2] == ["red.png", "yellow-white.png"] and "red-blue.png" not in without_blue
    assert [h.key for h in searcher.by_query("red white", negative="blue", k=3)] == without_blue
    # An example image, minus a colour: what is left of the image wins.
    assert searcher.by_query(image=colour_image("red", "blue"), negative="blue", k=1)[0].key == "red.png"
    assert split_negatives('beach -people -"red car" sunset') == ("beach sunset", ["people", "red car"])


def test_pages_are_disjoint_and_ranked_consecutively(searcher):
    first = searcher.by_text("red", k=2)
    second = searcher.by_text("red", k=2, offset=2)
    assert [h.rank for h in first] == [1, 2] and [h.rank for h in second] == [3, 4]
    assert {h.id for h in first}.isdisjoint(h.id for h in second)
    assert [h.id for h in first + second] == [h.id for h in searcher.by_text("red", k=4)]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda s: s.by_query(), "empty_query"),
        (lambda s: s.by_query("   "), "empty_query"),
        (lambda s: s.by_text("-people -cars"), "negatives_only"),
        (lambda s: s.by_query(negative="people"), "negatives_only"),
        (lambda s: s.by_query("red", colour_image("red"), image_weight=1.5), "bad_weight"),
        (lambda s: s.by_query("red", colour_image("red"), image_weight=-0.1), "bad_weight"),
        (lambda s: s.by_text("red", k=12, offset=-1), "bad_offset"),
        (lambda s: s.by_text("red", k=12, offset=990), "bad_offset"),
        (lambda s: s.by_text("red", k=12, offset=2.5), "bad_offset"),
    ],
    ids=[
        "nothing",
        "blank",
        "negatives",
        "negative-field",
        "weight-high",
        "weight-low",
        "offset-neg",
        "offset-far",
        "offset-fraction",
    ],
)
def test_bad_combined_queries_get_clear_errors_in_english_and_spanish(searcher, call, code):
    from ui import text

    with pytest.raises(BuscadorError) as bad:
        call(searcher)
    assert bad.value.code == code
    english, spanish = text.error("en", bad.value), text.error("es", bad.value)
    assert english != spanish and english == text.LANGUAGES["en"]["errors"][code].format(**bad.value.params)


# --- within a folder ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ColourEmbedder]:
    folder = tmp_path_factory.mktemp("albums")
    layout = {
        "2019/red.png": ("red",),
        "2019/beach/blue.png": ("blue",),
        "2020/red-blue.png": ("red", "blue"),
        "2020/green.png": ("green",),
        "2020x/red.png": ("red",),  # a folder whose name starts like another's
        "loose-red.png": ("red",),
    }
    for name, colours in layout.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        colour_image(*colours).save(folder / name)
    embedder = ColourEmbedder()
    out = tmp_path_factory.mktemp("index")
    build_index(FolderSource(folder), out, embedder, progress=False, index_type="hnsw")
    return out, embedder


@pytest.mark.parametrize("share", [1.1, 0.0])  # exact, over the folder's vectors; the index, selecting
def test_a_search_within_a_folder_answers_from_its_images_and_subfolders_alone(
    in_folders, monkeypatch, share
):
    monkeypatch.setattr("indexing.config.FOLDER_SHARE", {"hnsw": share})
    searcher = Searcher.open(*in_folders)
    assert [h.key for h in searcher.by_text("red", k=3)][:1] in (
        ["2019/red.png"],
        ["2020x/red.png"],
        ["loose-red.png"],
    )
    assert _ranking(searcher.by_text("red", k=5, within="2020")) == [
        ("2020/red-blue.png", 0.707),
        ("2020/green.png", 0.0),
    ]
    assert _ranking(searcher.by_text("blue", k=5, within=" /2019\\ ")) == [
        ("2019/beach/blue.png", 1.0),
        ("2019/red.png", 0.0),
    ]
    assert [h.key for h in searcher.by_image(colour_image("blue"), k=1, within="2019/beach")] == [
        "2019/beach/blue.png"
    ]
    blue = _id_of(searcher, "2019/beach/blue.png")
    assert [h.key for h in searcher.by_id(blue, k=5, within="2020")] == [
        "2020/red-blue.png",
        "2020/green.png",
    ]
    assert len(searcher.by_text("red", k=5)) == 5  # no folder: every image
    assert (searcher.store.among(Narrowing("2020")).vectors is None) == (share == 0.0)


@pytest.mark.parametrize("within", ["2021", "2019/red.png", "20", "../" * 2000])
def test_a_folder_without_images_is_named_in_the_error(in_folders, within):
    with pytest.raises(BuscadorError, match="no image of this index is in a folder") as error:
        Searcher.open(*in_folders).by_text("red", within=within)
    assert error.value.code == "empty_folder"


def test_a_folder_named_without_its_parents_gets_the_folders_it_may_mean(in_folders):
    with pytest.raises(BuscadorError, match=r"folders of that name: 2019/beach$") as error:
        Searcher.open(*in_folders).by_text("red", within="BEACH")
    assert error.value.code == "empty_folder_like" and error.value.params["folders"] == "2019/beach"
