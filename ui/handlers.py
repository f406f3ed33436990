"""The functions behind the app's events and API endpoints: check nothing themselves (the engine
does), turn engine errors into the visitor's language, answer with thumbnails by URL, and log one
line per search with the time of each stage.

Page endpoints answer (gallery, hits JSON, status line, link); results-only endpoints answer the
hits JSON alone, so an API client downloads no image unless it asks for one.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlencode

import gradio as gr
from gradio import route_utils
from gradio.data_classes import FileData

from indexing import config
from indexing.duplicates import Member
from indexing.errors import BadImage, BuscadorError
from indexing.images import is_url, photo_jpeg, unseen_in_browsers
from indexing.ratings import stars
from indexing.search import Hit, Searcher, last_words
from indexing.sources import WEB_ADDRESS, source_text
from indexing.store import folder_name
from indexing.video import clock, named_video
from ui import text as ui_text
from ui.groups import GROUPS_SHOWN, DuplicateGroups, groups_html
from ui.startup import APP_MAX_K, Engine, index_tag

log = logging.getLogger("buscador.search")

Results = tuple[list[tuple[str, str]], list[dict[str, Any]], str, str]
Answer = TypeVar("Answer")
# A search: (searcher, options every Searcher query takes: collapse, within, timings...) → hits.
Query = Callable[[Searcher, dict[str, Any]], list[Hit]]
# Why the last search of a page was refused, kept for its status line: this many pages at most.
REFUSALS_KEPT = 1024
# The status line quotes a description's first characters (and, where the model stopped reading
# a long one, its last words read: `last_words`).
QUOTED_CHARS = 80
# Characters of a photo's caption shown under it in the gallery (the whole in the API's hits).
CAPTION_CHARS = 60


@dataclass(frozen=True)
class BuildUrls:
    """Where the index build that answered a search serves its images (see ui.routes): thumbnails
    always, originals for an index of a folder on this machine."""

    prefix: str  # the app's public URL
    tag: str  # index_tag of the build
    originals: bool

    def thumbnail(self, item_id: int) -> str:
        return f"{self.prefix}/thumb/{self.tag}/{item_id}.jpg"

    def photo(self, item_id: int) -> str | None:
        return f"{self.prefix}/photo/{self.tag}/{item_id}.jpg" if self.originals else None

    def video(self, item_id: int) -> str | None:
        return f"{self.prefix}/video/{self.tag}/{item_id}.mp4" if self.originals else None

    def opened(self, member: Member) -> str | None:
        """What opening an image of a group of near-duplicates shows: a video plays, a photo shows
        large."""
        return self.video(member.id) if named_video(Path(member.key)) else self.photo(member.id)


class Handlers:
    """The functions behind the events, for one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.groups = DuplicateGroups()  # the Duplicates tab's, kept per index build
        self._refused: OrderedDict[str, str] = OrderedDict()  # page (session) → why, for `refusal`
        self._refused_lock = threading.Lock()

    # --- the page's endpoints: (gallery, hits, status, link) -------------------------------------

    def search_text(  # noqa: PLR0917 (Gradio passes an event's inputs in order)
        self,
        query: str | None,
        k: float,
        min_score: float,
        collapse: bool,
        within: str | None,
        request: gr.Request,
    ) -> Results:
        text = (query or "").strip()
        language = visitor_language(request)
        read: list[str | None] = [None]  # where the model stopped reading a long description
        captioned: list[tuple[str, int] | None] = [None]  # its words in captions, and how many

        def search(s: Searcher, o: dict[str, Any]) -> list[Hit]:
            hits = s.by_text(query, k, min_score, language=language, **o)
            read[0] = s.words_read(text, language)
            captioned[0] = s.captioned(text, o["within"])
            return hits

        def note(lang: str, params: dict[str, Any] | None) -> str:
            """How many photos have the description's words in their caption, a link to them."""
            if captioned[0] is None or params is None:
                return ""
            words, n = captioned[0]
            asked = params | {"q": f'{params["q"]} {ui_text.message(lang, "caption_word")}:"{words}"'}
            return ui_text.message(lang, "captioned", n=n, words=words, href="?" + urlencode(asked))

        return self._page_search(
            "text",
            request,
            k=k,
            min_score=min_score,
            collapse=collapse,
            within=within,
            query=search,
            what=lambda lang: _quoted(lang, "text_query", text, read[0]),
            link=lambda: {"q": text, "k": int(k)},
            note=note,
        )

    @staticmethod
    def shown(image: str | None) -> Any:
        """An uploaded picture a browser may not show (an iPhone's HEIC in Chrome, a TIFF, a camera
        RAW) replaced by a JPEG of it (as the app shows an original: at most PHOTO_SIDE, upright),
        which the page shows and a search then takes; any other left as it is, and one that does
        not decode too (the search says what is wrong with it)."""
        if not image or is_url(image) or not unseen_in_browsers(Path(image)):
            return gr.skip()
        try:
            jpeg = photo_jpeg(Path(image))
        except BadImage:
            return gr.skip()
        shown = Path(image).with_name(f"{Path(image).stem}-shown.jpg")  # (beside it: deleted with it)
        shown.write_bytes(jpeg)
        return str(shown)

    def search_image(  # noqa: PLR0917 (Gradio passes an event's inputs in order)
        self,
        image: str | None,
        k: float,
        min_score: float,
        collapse: bool,
        within: str | None,
        request: gr.Request,
    ) -> Results:
        return self._page_search(
            "image",
            request,
            k=k,
            min_score=min_score,
            collapse=collapse,
            within=within,
            query=lambda s, o: s.by_image(_kept(image), k, min_score, **o),
            what=lambda lang: ui_text.message(lang, "image_query"),
            link=None,  # an uploaded image has no link
        )

    def search_combined(  # noqa: PLR0917 (Gradio passes an event's inputs in order)
        self,
        image: str | None,
        words: str | None,
        weight: float,
        k: float,
        min_score: float,
        collapse: bool,
        within: str | None,
        request: gr.Request,
    ) -> Results:
        """The page's image tab: an image, and words with it if any, `weight` being the image's share."""
        if not image:
            self._refuse(request, ui_text.error(visitor_language(request), _NO_IMAGE))
        text = (words or "").strip()
        language = visitor_language(request)
        read: list[str | None] = [None]  # where the model stopped reading long words

        def search(s: Searcher, o: dict[str, Any]) -> list[Hit]:
            hits = s.by_query(
                text, _kept(image), image_weight=weight, k=k, min_score=min_score, language=language, **o
            )
            read[0] = s.words_read(text, language) if text else None
            return hits

        def what(lang: str) -> str:
            if not text:
                return ui_text.message(lang, "image_query")
            return _quoted(lang, "image_and_words", text, read[0])

        return self._page_search(
            "query",
            request,
            k=k,
            min_score=min_score,
            collapse=collapse,
            within=within,
            query=search,
            what=what,
            link=None,  # an uploaded image has no link
        )

    def search_similar(  # noqa: PLR0917 (Gradio passes an event's inputs in order)
        self,
        item_id: float | None,
        k: float,
        min_score: float,
        collapse: bool,
        within: str | None,
        request: gr.Request,
    ) -> Results:
        if item_id is None or item_id == -1:  # the page's "nothing picked yet"
            self._refuse(request, ui_text.message(visitor_language(request), "pick_first"))
        return self._page_search(
            "similar",
            request,
            k=k,
            min_score=min_score,
            collapse=collapse,
            within=within,
            query=lambda s, o: s.by_id(item_id, k, min_score, **o),
            what=lambda lang: ui_text.message(lang, "like_query", id=int(item_id)),
            link=lambda: {"like": int(item_id), "k": int(k)},
        )

    # --- results-only endpoints: the hits JSON alone ---------------------------------------------
    # `collapse`: fold results at least this similar to a better one (0: off; None: the app's);
    # `within`: a folder of the collection to search alone ("": everywhere).

    def hits_text(  # noqa: PLR0917 (an API endpoint: clients pass its parameters in order)
        self,
        text: str,
        k: int,
        min_score: float,
        request: gr.Request,
        collapse: float | None = None,
        within: str = "",
    ) -> list[dict[str, Any]]:
        """Images described by `text`: [{rank, score, id, key, label, file, thumbnail, photo, video,
        seconds, tags, rating, caption, taken, place, folded, meta, link}] (see `_hits`)."""
        return self._hits_search(
            "text",
            request,
            k,
            collapse,
            within,
            lambda s, o: s.by_text(text, k, min_score, language=visitor_language(request), **o),
        )

    def hits_image(  # noqa: PLR0917 (an API endpoint: clients pass its parameters in order)
        self,
        image: FileData | None,
        k: int,
        min_score: float,
        request: gr.Request,
        collapse: float | None = None,
        within: str = "",
    ) -> list[dict[str, Any]]:
        """Images like the uploaded `image`: hits as `hits_text` answers them."""
        return self._hits_search(
            "image",
            request,
            k,
            collapse,
            within,
            lambda s, o: s.by_image(_uploaded_path(image), k, min_score, **o),
        )

    def hits_similar(  # noqa: PLR0917 (an API endpoint: clients pass its parameters in order)
        self,
        id: int,
        k: int,
        min_score: float,
        request: gr.Request,
        collapse: float | None = None,
        within: str = "",
    ) -> list[dict[str, Any]]:
        """Images like the indexed image `id`, itself left out: [{rank, score, id, key, ...}]."""
        return self._hits_search(
            "similar",
            request,
            k,
            collapse,
            within,
            lambda s, o: s.by_id(id, k, min_score, **o),
        )

    def search(  # noqa: PLR0917 (an API endpoint: clients pass its parameters in order)
        self,
        text: str | None,
        image: FileData | None,
        negative: str,
        image_weight: float,
        k: int,
        offset: int,
        min_score: float,
        request: gr.Request,
        collapse: float | None = None,
        within: str = "",
    ) -> list[dict[str, Any]]:
        """The general search: a text (`-word` leaves it out), an example image, or both, with the
        image's share `image_weight` (0 to 1); `negative`: comma-separated things to leave out;
        results offset+1 to offset+k; among the images of folder `within` alone, if given. Hits
        as in /hits_text."""
        return self._hits_search(
            "query",
            request,
            k,
            collapse,
            within,
            lambda s, o: s.by_query(
                text,
                _uploaded_path(image),
                negative=negative,
                image_weight=image_weight,
                k=k,
                offset=offset,
                min_score=min_score,
                language=visitor_language(request),
                **o,
            ),
        )

    def info(self, request: gr.Request) -> dict[str, Any]:
        """The index served now: {images, model, index_type, recall_at_10, built_at, source, videos
        (how many of the images are videos), tags ({count, top: {keyword: count}} of the images
        with keywords, or None), ratings ({stars: count} of the rated images, or None), captions
        (how many of the images have one),
        dates_taken ({count, first, last, years} of the photos that say when they were taken, or
        None), places ({count, countries: {ISO code: count}} of those that say where, or None)};
        it changes when a new build comes in (ui.refresh)."""
        searcher = self._searcher(visitor_language(request))
        manifest = searcher.store.manifest
        source = manifest.get("source") or {}
        return {
            "images": searcher.store.count,
            "model": searcher.store.model,
            "index_type": manifest["index_type"],
            "recall_at_10": manifest["recall_at_10"],
            "built_at": manifest["built_at"],
            # A dataset by name; a folder's path on the server stays private.
            "source": source_text(source) if source.get("kind") == "dataset" else source.get("kind", "?"),
            "videos": manifest.get("videos", 0),
            "tags": manifest.get("tags"),
            "ratings": manifest.get("ratings"),
            "captions": manifest.get("captions", 0),
            "dates_taken": manifest.get("dates_taken"),
            "places": manifest.get("places"),
        }

    # --- the page's other events -----------------------------------------------------------------

    def duplicates(
        self,
        within: str | None,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(track_tqdm=True),  # noqa: B008 (how Gradio asks for one)
    ) -> tuple[str, str]:
        """The Duplicates tab: (status line, the groups of near-duplicates as HTML) of the served
        index, or of its folder `within`, at the app's near-duplicate threshold; the page shows
        the search's progress bar (`progress`, which Gradio fills). One that cannot run says why
        on its status line (no notice: the tab is the page's alone)."""
        lang = visitor_language(request)
        searcher = self._searcher(lang)
        urls = BuildUrls(_root_url(request), index_tag(searcher), self.engine.originals)
        threshold = self.engine.duplicate_threshold or config.DUPLICATE_THRESHOLD
        try:
            found = self.groups.find(searcher, urls.tag, threshold, within or "", progress=True)
        except BuscadorError as exc:
            return f"⚠️ {_markdown_text(ui_text.error(lang, exc))}", ""
        images = sum(len(group) for group in found.groups)
        count = {"groups": len(found.groups), "images": images, "total": found.images, "threshold": threshold}
        key = "dup_none" if not found.groups else "dup_count_one" if len(found.groups) == 1 else "dup_count"
        status = ui_text.message(lang, key, seconds=found.seconds, **count)
        more = ui_text.message(lang, "dup_more", n=len(found.groups) - GROUPS_SHOWN)

        def title(n: int, size: int) -> str:
            return ui_text.message(lang, "dup_group", number=n, size=size)

        return status, groups_html(found.groups, urls.thumbnail, urls.opened, title=title, more=more)

    def more_results(
        self, last: dict[str, Any] | None, shown: list[dict[str, Any]] | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """The next K results of the last search, appended: (gallery, hits, status)."""
        lang = visitor_language(request)
        if not last or not shown:
            self._refuse(request, ui_text.message(lang, "search_first"))
        offset, k, min_score = len(shown), last["k"], last["min_score"]
        threshold = self.engine.duplicate_threshold if last["collapse"] else 0.0
        options = {"offset": offset, "collapse": threshold, "within": last.get("within") or ""}

        def query(s: Searcher, o: dict[str, Any]) -> list[Hit]:
            if last["kind"] == "similar":
                return s.by_id(last["query"], k, min_score, **o)
            if last["kind"] == "image":
                asked = last["query"]
                return s.by_query(
                    asked["words"],
                    _kept(asked["image"]),
                    image_weight=asked["weight"],
                    k=k,
                    min_score=min_score,
                    language=lang,
                    **o,
                )
            return s.by_text(last["query"], k, min_score, language=lang, **o)

        def respond(hits: list[Hit], lang: str, urls: BuildUrls) -> tuple[Any, ...]:
            found = shown + self._hits(hits, lang, urls)
            gallery = [(h["thumbnail"], _caption(h, lang)) for h in found]
            key = "more" if hits else "no_more"
            return gallery, found, ui_text.message(lang, key, n=len(hits), total=len(found))

        return self._serve("more", request, k, query, respond, options=options)

    def again(  # noqa: PLR0917 (Gradio passes an event's inputs in order)
        self,
        last: dict[str, Any] | None,
        k: float,
        min_score: float,
        collapse: bool,
        within: str | None,
        request: gr.Request,
    ) -> Results | tuple[Any, ...]:
        """The last search again with the options as they are now (the visitor changed one);
        nothing changes on a page that has not searched yet."""
        if not last:
            return (gr.skip(),) * 4
        controls = (k, min_score, collapse, within, request)
        if last["kind"] == "similar":
            return self.search_similar(last["query"], *controls)
        if last["kind"] == "image":
            asked = last["query"]
            return self.search_combined(asked["image"], asked["words"], asked["weight"], *controls)
        return self.search_text(last["query"], *controls)

    def pick(
        self, results: list[dict[str, Any]] | None, evt: gr.SelectData, request: gr.Request
    ) -> tuple[Any, ...]:
        """The id of the gallery item a visitor clicked, "More like this" enabled for it, "Open the
        photo" linking to its original where the app serves it ("Play the video" for a video's),
        and "Open its page" to the web page a dataset's row names (its "link")."""
        hit = (results or [])[evt.index]
        photo, page = hit.get("video") or hit.get("photo"), hit.get("link")
        opens = ui_text.labels()[visitor_language(request)][
            "play_video" if hit.get("video") else "open_photo"
        ]
        return (
            int(hit["id"]),
            gr.update(interactive=True),
            gr.update(link=photo, visible=bool(photo), value=opens),
            gr.update(link=page, visible=bool(page)),
        )

    def open_link(self, request: gr.Request) -> tuple[Any, ...] | None:
        """The page's (query, k, collapse, folder, gallery, json, status, link, selected, last
        search) for the search a shared link names (?q=…&k=…, or ?like=ID&k=…; collapse=0 for all
        results, in=FOLDER for one folder's); None when the link names no search."""
        params = request.query_params
        try:
            k = min(max(int(params.get("k", config.TOP_K_DEFAULT)), 1), APP_MAX_K)
        except ValueError:
            k = config.TOP_K_DEFAULT
        within = params.get("in", "")
        try:
            collapse = params.get("collapse") != "0"
            last = {"k": k, "min_score": 0.0, "collapse": collapse, "within": within}
            if params.get("q", "").strip():
                found = self.search_text(params["q"], k, 0.0, collapse, within, request)
                last |= {"kind": "text", "query": params["q"]}
                return (params["q"], k, collapse, within, *found, gr.update(), last)
            if params.get("like", "").isdigit():
                like = int(params["like"])
                found = self.search_similar(like, k, 0.0, collapse, within, request)
                return (
                    gr.update(),
                    k,
                    collapse,
                    within,
                    *found,
                    like,
                    last | {"kind": "similar", "query": like},
                )
        except gr.Error as exc:
            return (gr.update(), k, gr.update(), within, [], [], f"⚠️ {exc.message}", "", gr.update(), None)
        return None

    # --- shared ----------------------------------------------------------------------------------

    def _page_search(
        self,
        kind: str,
        request: gr.Request,
        *,
        k: object,
        min_score: float,
        collapse: bool,
        within: str | None,
        query: Query,
        what: Callable[[str], str],
        link: Callable[[], dict[str, Any]] | None,
        note: Callable[[str, dict[str, Any] | None], str] | None = None,
    ) -> Results:
        """A page search: `what(lang)` names it in the status line, `link()` gives its link's
        parameters (once the search succeeded), `note(lang, link's parameters)` what the status
        line adds, the page's box says whether to fold, and the folder box where to look."""
        threshold = self.engine.duplicate_threshold if collapse else 0.0
        folder = folder_name(within or "")

        def respond(hits: list[Hit], lang: str, urls: BuildUrls) -> Results:
            params = link() if link else None
            if params and not collapse:
                params |= {"collapse": 0}
            if params and folder:
                params |= {"in": folder}
            named = what(lang)
            if folder:
                named = ui_text.message(lang, "in_folder", what=named, folder=folder)
            added = note(lang, params) if note else ""
            return self._page(hits, lang, urls, what=named, min_score=min_score, link=params, note=added)

        options = {"collapse": threshold, "within": folder}
        return self._serve(kind, request, k, query, respond, options=options)

    def _hits_search(  # noqa: PLR0917 (the endpoints' own parameters, handed on)
        self,
        kind: str,
        request: gr.Request,
        k: object,
        collapse: float | None,
        within: object,
        query: Query,
    ) -> list[dict[str, Any]]:
        threshold = self.engine.duplicate_threshold if collapse is None else collapse
        options = {"collapse": threshold, "within": "" if within is None else within}  # checked there
        return self._serve(kind, request, k, query, self._hits, options=options)

    def _serve(
        self,
        kind: str,
        request: gr.Request,
        k: object,
        query: Query,
        respond: Callable[[list[Hit], str, BuildUrls], Answer],
        *,
        options: dict[str, Any],
    ) -> Answer:
        """Run `query` with these `options` (and timings, which the searcher fills), build the
        answer with `respond(hits, lang, urls)`, log the stages. `urls`: where the index build that
        answered serves its images."""
        lang = visitor_language(request)
        searcher = self._searcher(lang, request)
        timings: dict[str, float] = {}
        try:
            hits = query(searcher, options | {"timings": timings})
        except BuscadorError as exc:
            log.info("search %s k=%s refused: %s", kind, k, exc.code)
            self._refuse(request, ui_text.error(lang, exc))
        started = time.perf_counter()
        urls = BuildUrls(_root_url(request), index_tag(searcher), self.engine.originals)
        answer = respond(hits, lang, urls)
        timings["answer"] = time.perf_counter() - started
        encoder = f" text_encoder={searcher.text_encoder_for(lang)}" if kind in ("text", "query") else ""
        log.info(
            "search %s k=%s hits=%d%s %s",
            kind,
            k,
            len(hits),
            encoder,
            " ".join(f"{stage}={seconds * 1000:.1f}ms" for stage, seconds in timings.items()),
        )
        return answer

    def _searcher(self, lang: str, request: gr.Request | None = None) -> Searcher:
        """The searcher serving now, or the engine's problem as an error in the visitor's language
        (a page's search refused, with a `request`)."""
        searcher = self.engine.searcher
        if searcher is None:
            message = ui_text.message(lang, "not_ready", problem=self.engine.problem)
            if request is not None:
                self._refuse(request, message)
            raise gr.Error(message, print_exception=False)
        return searcher

    def _refuse(self, request: gr.Request, message: str) -> NoReturn:
        """Refuse a search with `message`: Gradio's error notice, and the message kept for the
        page's status line (`refusal`)."""
        with self._refused_lock:
            self._refused[request.session_hash or ""] = message
            self._refused.move_to_end(request.session_hash or "")
            while len(self._refused) > REFUSALS_KEPT:
                self._refused.popitem(last=False)
        raise gr.Error(message, print_exception=False)

    def refusal(self, request: gr.Request) -> str:
        """The status line after a refused search: why, as the notice said, so that it replaces the
        last search's line (and screen readers hear it)."""
        with self._refused_lock:
            message = self._refused.pop(request.session_hash or "", "")
        return f"⚠️ {_markdown_text(message)}" if message else ""

    def _hits(self, hits: list[Hit], lang: str, urls: BuildUrls) -> list[dict[str, Any]]:
        """Hits as the API answers them. The original file is under "file", not "path": gradio_client
        would take any dict with a "path" key for a file to download. "photo": the URL of the
        original, shown large, where the app serves it, or the image's own web address (a dataset
        of them); "video": for a video, the URL that plays it. "link": the first of the dataset's
        other fields that is a web address (its source page), if any. "place" in the visitor's
        language."""
        out = []
        for hit in hits:
            data = hit.as_dict() | {"place": hit.place_in(lang)}
            fields = dict(hit.meta or {})
            on_the_web = fields.pop(WEB_ADDRESS, None)
            link = next((v for v in fields.values() if is_url(v)), None)
            photo = urls.photo(hit.id) if hit.path else on_the_web
            played = urls.video(hit.id) if hit.path and named_video(hit.path) else None
            urls_of = {"thumbnail": urls.thumbnail(hit.id), "photo": photo, "video": played}
            out.append(data | {"file": data.pop("path")} | urls_of | {"link": link})
        return out

    def _page(
        self,
        hits: list[Hit],
        lang: str,
        urls: BuildUrls,
        *,
        what: str,
        min_score: float,
        link: dict[str, Any] | None,
        note: str = "",
    ) -> Results:
        found = self._hits(hits, lang, urls)
        gallery = [(h["thumbnail"], _caption(h, lang)) for h in found]
        if hits:
            status = ui_text.message(lang, "count", n=len(hits), what=what)
        else:
            status = ui_text.message(lang, "none", min_score=float(min_score), what=what)
        share = ui_text.message(lang, "link", href="?" + urlencode(link)) if link else ""
        return gallery, found, f"{status} {note}" if note else status, share


_NO_IMAGE = BuscadorError("no image given", "no_image")


def _quoted(lang: str, key: str, text: str, read: str | None) -> str:
    """The status line's name of a search by words `text` (message `key`, its first characters
    quoted), saying where the model stopped reading them when it did (`read`: what it read)."""
    named = ui_text.message(lang, key, q=_cut(text, QUOTED_CHARS))
    if read is None:
        return named
    return ui_text.message(lang, "text_cut", what=named, end=last_words(read))


def _cut(text: str, most: int) -> str:
    """`text`, or its first characters and "…" where it has more than `most`."""
    return text if len(text) <= most else text[: most - 1] + "…"


def _caption(hit: dict[str, Any], lang: str) -> str:
    """'#1 · 0.8312 · label' ('#1 · label' for a period browsed; '▶ 0:42 label' for a video), ' ·
    2019-07-14' and ' · Cadiz' for a photo that says when and where it was taken, ' · ★★★★' for
    one rated, ' · “Ana's birthday”' for one with a caption (its first line, cut to CAPTION_CHARS),
    and ' · +2 similar' when near-duplicates were folded into it."""
    score = f" · {hit['score']:.4f}" if hit["score"] is not None else ""
    played = ""
    if named_video(Path(hit["key"])):
        played = f"▶ {clock(hit['seconds'])} " if hit.get("seconds") else "▶ "
    caption = f"#{hit['rank']}{score} · {played}{hit['label']}"
    if hit.get("taken"):
        caption += f" · {hit['taken'][:10]}"
    if hit.get("place"):
        town, _, country = hit["place"].rpartition(", ")
        caption += f" · {town or country}"  # the town (the country takes room), else the country
    if rated := stars(hit.get("rating")):
        caption += f" · {rated}"
    if written := (hit.get("caption") or "").split("\n", 1)[0]:
        caption += " · " + ui_text.message(lang, "text_query", q=_cut(written, CAPTION_CHARS))  # «…» in es
    if hit["folded"]:
        caption += " · " + ui_text.message(lang, "folded", n=len(hit["folded"]))
    return caption


def _uploaded_path(image: FileData | dict[str, Any] | str | None) -> str | None:
    """The server-side path of a file an API client uploaded (Gradio checked it is an upload):
    `_kept`'s error when the app has deleted it since."""
    if isinstance(image, FileData):
        image = image.path
    elif isinstance(image, dict):
        image = image.get("path")
    return _kept(image)


def _kept(upload: str | None) -> str | None:
    """`upload`, the path of a visitor's uploaded picture; a BuscadorError saying to upload it
    again when the app has deleted it (config.UPLOADS_KEPT_S after it came: a page left open an
    hour, then searched again)."""
    if upload and not is_url(upload) and not Path(upload).exists():
        raise BuscadorError(
            "the uploaded picture is no longer on the server (it is deleted "
            f"{config.UPLOADS_KEPT_S // 60} minutes after it came): upload it again",
            "upload_gone",
            minutes=config.UPLOADS_KEPT_S // 60,
        )
    return upload


def visitor_language(request: gr.Request | None) -> str:
    """The visitor's language, from the request's Accept-Language header."""
    headers = getattr(request, "headers", None) or {}
    return ui_text.language(headers.get("accept-language"))


def _root_url(request: gr.Request) -> str:
    """The app's public URL (behind a Space's proxy too), without a trailing slash."""
    http = request.request
    if http is None:
        return ""
    return route_utils.get_root_url(http, http.url.path, None)


def _markdown_text(text: str) -> str:
    """`text` to show as it is in Markdown (a folder's or a query's `*` or `_` not taken for emphasis)."""
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", text)
