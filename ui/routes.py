"""What the app adds to Gradio's HTTP server: thumbnails and originals by URL, a health check, and
a clear answer when busy.

- GET /thumb/{tag}/{id}.jpg: the stored thumbnail of image `id` of the served index build `tag`
  (or of the build it replaced a moment ago, see ui.startup.Engine),
  read from the catalog (never from a path on disk), cacheable for a year; 404 for anything else.
- GET /photo/{tag}/{id}.jpg: image `id`'s original file, upright, at most PHOTO_SIDE pixels on
  its long side, for an index of a folder on this machine (ui.startup.Engine.originals): only the
  files its catalog names, inside its folder, and only decodable images (re-encoded, never sent
  as they are); 404 with a message in the visitor's language otherwise.
- GET /video/{tag}/{id}.mp4: video `id`'s original file, as the photo route's, played in the
  browser: its picture and sound copied into an MP4 without its metadata, kept on disk so that the
  browser seeks in it by ranges (ui.video_copies; a video too big for that room is streamed as
  it comes, indexing.video.playable); 404 for a video a browser cannot play, or anything else.
- Where the app asks for a password ($APP_PASSWORD), these answer 401 to a request without the
  session Gradio's login gave, and thumbnails are cached privately.
- GET /healthz: 200 with the served index's image count and build while the app can search,
  503 with the reason while it cannot (no index yet, a pull that failed): for a container's health
  check or an uptime monitor, without going through Gradio's queue.
- gradio_client fetches a gallery image through Gradio's `/gradio_api/file=URL`; for one of our
  thumbnail URLs, that request is answered by the route above instead of being refused.
- When Gradio's queue is full, it answers 503 "Queue is full…"; the visitor gets "busy, try again
  in a moment" in their own language instead.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from indexing import config
from indexing.errors import BadImage, BuscadorError
from indexing.images import photo_jpeg
from indexing.video import named_video, playable
from ui import text as ui_text
from ui.startup import Engine, index_tag
from ui.video_copies import VideoCopies

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_YEAR = 365 * 24 * 3600
_THUMB_IN_FILE_ROUTE = re.compile(r"^/gradio_api/file=https?://[^/]+(?:/[^?#]*)?(/thumb/[0-9a-z]+/\d+\.jpg)$")
_QUEUE_ROUTES = ("/gradio_api/queue/join", "/gradio_api/call/")
_ITEM = re.compile(r"[0-9]{1,18}")
_BUSY = BuscadorError("the server is busy: try again in a moment", "busy")
_NO_PHOTO = BuscadorError("this image's original file is not available here", "no_photo")
# Originals decoded at once; more wait their turn, so that photos opened together cannot take the
# cores from the searches (a 12-megapixel JPEG takes about 0.1 s of a core).
PHOTOS_AT_ONCE = 2


def _password_asked(request: Request) -> bool:
    """Whether the app serving `request` asks for a password ($APP_PASSWORD: Gradio's auth)."""
    return getattr(request.app, "auth", None) is not None


def _signed_in(request: Request) -> bool:
    """Whether `request` may see pictures: the app asks for no password, or its Gradio login cookie
    names a session the password opened."""
    if not _password_asked(request):
        return True
    app = request.app
    cookie = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie}") or request.cookies.get(
        f"access-token-unsecure-{cookie}"
    )
    return token is not None and token in getattr(app, "tokens", {})


def _not_signed_in() -> Response:
    return Response(b"sign in first", status_code=401, media_type="text/plain; charset=utf-8")


def thumbnail_route(engine: Engine) -> Route:
    """The thumbnail route for the index `engine` serves (and the build it replaced a moment ago)."""

    def thumbnail(request: Request) -> Response:
        if not _signed_in(request):
            return _not_signed_in()
        tag, item = request.path_params["tag"], request.path_params["item"]
        searcher = engine.searcher_for(tag)
        item_id = _item_id(item)
        data = searcher.thumbnail(item_id) if searcher is not None and item_id is not None else None
        if data is None:
            return _not_found("no such thumbnail")
        shared = "private" if _password_asked(request) else "public"
        headers = {"Cache-Control": f"{shared}, max-age={_YEAR}, immutable"}
        return Response(data, media_type="image/jpeg", headers=headers)

    return Route("/thumb/{tag}/{item}", thumbnail, methods=["GET", "HEAD"])


def photo_route(engine: Engine) -> Route:
    """The route of the originals of the index `engine` serves (see the module's docstring)."""
    turns = threading.BoundedSemaphore(PHOTOS_AT_ONCE)

    def photo(request: Request) -> Response:
        if not _signed_in(request):
            return _not_signed_in()
        path, lang = _original(request, engine, ".jpg")
        if path is None:
            return _not_found(ui_text.error(lang, _NO_PHOTO))
        try:
            with turns:
                data = photo_jpeg(path)
        except BadImage as exc:
            return _not_found(ui_text.error(lang, exc))
        return Response(data, media_type="image/jpeg", headers=_private_file(f"{path.stem}.jpg"))

    return Route("/photo/{tag}/{item}", photo, methods=["GET", "HEAD"])


def video_route(engine: Engine, copies: VideoCopies | None = None) -> Route:
    """The route of the videos of the index `engine` serves (see the module's docstring), from
    their seekable `copies` (by default in the room config.video_copies_room() says)."""
    copies = copies if copies is not None else VideoCopies(config.video_copies_room())

    def play(request: Request) -> Response:
        if not _signed_in(request):
            return _not_signed_in()
        path, lang = _original(request, engine, ".mp4")
        if path is None or not named_video(path):
            return _not_found(ui_text.error(lang, _NO_PHOTO))
        headers = _private_file(f"{path.stem}.mp4")
        try:
            copy = copies.copy_of(path)
            if copy is not None:
                return FileResponse(copy, media_type="video/mp4", headers=headers)
            chunks = playable(path)
        except BadImage as exc:
            return _not_found(ui_text.error(lang, exc))
        return StreamingResponse(chunks, media_type="video/mp4", headers=headers)

    return Route("/video/{tag}/{item}", play, methods=["GET"])


def _original(request: Request, engine: Engine, suffix: str) -> tuple[Path | None, str]:
    """The original file a photo or video route's request names ({tag}/{id}`suffix`), where the
    app serves it, and the visitor's language."""
    lang = ui_text.language(request.headers.get("accept-language"))
    tag, item = request.path_params["tag"], request.path_params["item"]
    searcher = engine.searcher_for(tag) if engine.originals else None
    item_id = _item_id(item, suffix)
    return (searcher.original(item_id) if searcher is not None and item_id is not None else None), lang


def _private_file(name: str) -> dict[str, str]:
    """The headers of an original: private and short-lived (the file may change under its name
    before the next build), saved from the browser under its own `name`."""
    return {
        "Cache-Control": "private, max-age=3600",
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}",
    }


def health_route(engine: Engine) -> Route:
    """The route that says whether `engine` can search (see the module's docstring)."""

    def health(request: Request) -> Response:
        searcher = engine.searcher
        if searcher is None:
            return JSONResponse({"ready": False, "problem": engine.problem}, status_code=503)
        return JSONResponse({"ready": True, "images": searcher.store.count, "build": index_tag(searcher)})

    return Route("/healthz", health, methods=["GET", "HEAD"])


def _item_id(name: str, suffix: str = ".jpg") -> int | None:
    """The image id a route's last part names ("7.jpg"; "7.mp4" with that `suffix`), or None:
    ASCII digits only, and no more than SQLite's integers hold."""
    found = _ITEM.fullmatch(name[: -len(suffix)]) if name.endswith(suffix) else None
    return int(found.group(0)) if found else None


def _not_found(message: str) -> Response:
    return Response(message.encode(), status_code=404, media_type="text/plain; charset=utf-8")


class ServingMiddleware:
    """Routes gradio_client's file= requests for thumbnails, and words a full queue clearly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        thumb = _THUMB_IN_FILE_ROUTE.match(path)
        if thumb:
            scope = dict(scope) | {"path": thumb.group(1), "raw_path": thumb.group(1).encode()}
            await self.app(scope, receive, send)
        elif path.startswith(_QUEUE_ROUTES):
            await self.app(scope, receive, _busy_in_words(scope, send))
        else:
            await self.app(scope, receive, send)


def _busy_in_words(scope: Scope, send: Send) -> Send:
    """`send`, with a 503 answer's body replaced by the busy message in the visitor's language."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    lang = ui_text.language(headers.get("accept-language"))
    replacing = False

    async def wrapped(message: Message) -> None:
        nonlocal replacing
        if message["type"] == "http.response.start" and message["status"] == 503:
            replacing = True
            body = json.dumps({"detail": ui_text.error(lang, _BUSY)}).encode()
            message = dict(message) | {
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"2"),
                ]
            }
            await send(message)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if replacing:  # the original body is dropped
            return
        await send(message)

    return wrapped
