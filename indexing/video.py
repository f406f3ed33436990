"""Videos (.mp4, .mov, ...): one frame of each, upright, where PyAV (`av`) is installed (the project
does not need it), and when and where each was shot, from its container's metadata.

A video stands in the index for one picture of it, as photo managers search a video: the key
frame at or before a third of its length, past a fade-in or a phone's first shaky frame, and one
that decodes alone (29 ms for a 1080p H.264 clip, about what a photo costs; 0.15 s for 4K HEVC;
benchmarks/bench_video.py). It is known by its size and three megabytes of it, its start, middle
and end (sources.sampled_content_hash), as a copy or a move of it is: a video of gigabytes is
neither held in memory nor read whole from a NAS.
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image

from indexing.errors import BadImage

try:
    import av
except ImportError:
    av = None

AVAILABLE = av is not None
EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".3gp", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".mpg", ".mpeg", ".wmv"}
)
# A video beside a photo of the same name is that photo's motion (an iPhone's Live Photo, a
# Pixel's Motion Photo as Google Takeout exports it): the photo stands for it.
STILL_SUFFIXES = (".jpg", ".jpeg", ".heic", ".heif")
# Where in a video its picture is taken: the key frame at or before this share of its length.
AT = Fraction(1, 3)
# Apple's own keys: the local time of the shot, with its offset, and the place.
_APPLE_DATE = "com.apple.quicktime.creationdate"
_APPLE_PLACE = "com.apple.quicktime.location.ISO6709"
# A position as ISO 6709 writes it in MP4 and QuickTime files: "+36.5271-006.2886+012.345/".
_ISO6709 = re.compile(r"\s*([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)")
# The container's creation time when its writer set none: the epochs of QuickTime and of Unix.
_UNSET = ("1904-01-01", "1970-01-01")
_TURNS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class Header:
    """What a video's metadata says about its shot: `local`, the time where it was shot (Apple's
    creation date), `utc`, the container's creation time (UTC, as MP4 and QuickTime keep it; ""
    for none), the position (degrees, None for none), and how long it lasts (None: unsaid)."""

    local: str = ""
    utc: str = ""
    lat: float | None = None
    lon: float | None = None
    seconds: float | None = None


def named_video(path: object) -> bool:
    """Whether `path` is a file with a video's name (.mp4, .MOV, ...)."""
    return isinstance(path, Path) and path.suffix.lower() in EXTENSIONS


def clock(seconds: float) -> str:
    """A video's length as players show it: "0:42", "12:05", "1:02:03"."""
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def require() -> None:
    """Raise BadImage where PyAV is not installed."""
    if av is None:
        raise BadImage("a video: pip install av to read it", "video")


def frame(path: Path, side: int, check_size: Callable[[int, int], None]) -> Image.Image:
    """The picture the video at `path` stands for (see the module's docstring), upright, RGB, its
    short side scaled down to `side` where it is longer; `check_size` may refuse the frame's
    width and height first. Raises BadImage for a file with no picture FFmpeg can decode, or any
    video without PyAV."""
    require()
    try:
        with av.open(str(path)) as container:
            stream = _moving(container)
            if stream is None:
                raise BadImage("no picture in it (a truncated video, or sound alone)", "not_an_image")
            stream.thread_count = 1  # one frame: the build decodes several files at a time instead
            if container.duration:  # microseconds; a file that cannot seek gives its first frame
                with contextlib.suppress(av.FFmpegError):
                    container.seek(int(container.duration * AT), backward=True, any_frame=False)
            for decoded in container.decode(stream):
                return _picture(decoded, stream.sample_aspect_ratio, side, check_size)
    except (av.FFmpegError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)  # FFmpeg's words, without the path
        raise BadImage(f"corrupt or truncated video ({reason})", "corrupt_image", detail=reason) from None
    raise BadImage("corrupt or truncated video (no frame could be decoded)", "corrupt_image", detail="")


def _moving(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The container's first video stream that moves: not a cover picture (an MP4 of a song or a
    podcast keeps one as a video stream of a single frame)."""
    attached = av.stream.Disposition.attached_pic
    return next((s for s in container.streams.video if not s.disposition & attached), None)


def _picture(
    decoded: av.VideoFrame, aspect: Fraction | None, side: int, check_size: Callable[[int, int], None]
) -> Image.Image:
    """`decoded` as shown: stretched to its pixels' shape (`aspect`, for a camcorder's 720×576 of
    wide pixels), scaled down to `side`, turned as the file says."""
    width, height = decoded.width, decoded.height
    if aspect and aspect > 0 and aspect != 1:
        width = max(1, round(width * aspect))
    check_size(width, height)
    scale = min(1.0, side / min(width, height))
    picture = decoded.to_image(width=max(1, round(width * scale)), height=max(1, round(height * scale)))
    turn = _TURNS.get(round(getattr(decoded, "rotation", 0) or 0) % 360)  # counter-clockwise, as PIL turns
    return picture.transpose(turn) if turn is not None else picture


def header(path: Path) -> Header:
    """What the video at `path` says about when and where it was shot (nothing for no PyAV or a
    file FFmpeg cannot open)."""
    if av is None:
        return Header()
    try:
        with av.open(str(path)) as container:
            tags = dict(container.metadata)
            if (stream := _moving(container)) is not None:
                tags = dict(stream.metadata) | tags  # the container's first
            seconds = (
                round(container.duration / 1e6, 3) if container.duration and container.duration > 0 else None
            )
    except (av.FFmpegError, OSError, ValueError):
        return Header()
    utc = tags.get("creation_time", "")
    lat, lon = _position(tags.get(_APPLE_PLACE) or tags.get("location") or "")
    return Header(tags.get(_APPLE_DATE, ""), "" if utc.startswith(_UNSET) else utc, lat, lon, seconds)


def _position(text: str) -> tuple[float | None, float | None]:
    """The latitude and longitude of an ISO 6709 position in decimal degrees ("+36.5271-006.2886/"),
    (None, None) for anything else."""
    found = _ISO6709.match(text)
    return (float(found.group(1)), float(found.group(2))) if found else (None, None)


def playable(path: Path) -> Iterator[bytes]:
    """The video at `path` as an MP4 a browser plays while it comes (fragmented), its picture and
    sound copied as they are (nothing encoded again: a gigabyte in seconds) and nothing else: its
    container's metadata (the GPS position, the phone, the dates) stays behind, as a photo's EXIF
    does when the app shows one; its turn (display matrix) comes along. Sound MP4 cannot hold
    (PCM) is left out. Raises BadImage, before any byte, for a file with no picture a browser
    plays (H.264, HEVC, VP9, AV1) or none at all."""
    source, kept = _to_play(path)
    return _remuxed(source, kept)


def seekable_copy(path: Path, out: Path) -> None:
    """Writes at `out` the video at `path` as playable() sends it, but as an MP4 whose index comes
    first (`faststart`): a browser that gets it by ranges starts it at once and seeks anywhere in
    it. Raises BadImage as playable() does, and for a video whose packets FFmpeg cannot read;
    OSError where `out` cannot be written (a full disk)."""
    source, kept = _to_play(path)
    try:
        with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as muxed:
            for _ in _copied(source, kept, muxed):
                pass
    except av.FFmpegError as exc:
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
            raise OSError(exc.errno, exc.strerror) from None
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BadImage(f"corrupt or truncated video ({reason})", "corrupt_image", detail=reason) from None
    finally:
        source.close()


def _to_play(path: Path) -> tuple[av.container.InputContainer, list[av.stream.Stream]]:
    """The video at `path` opened, and the streams of it a browser plays (see playable())."""
    require()
    try:
        source = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BadImage(f"corrupt or truncated video ({reason})", "corrupt_image", detail=reason) from None
    kept = [s for s in [_moving(source)] if s is not None and s.codec_context.name in _PLAYED]
    if not kept:
        source.close()
        raise BadImage("a video a browser cannot play", "not_playable")
    kept += [s for s in source.streams.audio[:1] if s.codec_context.name in _HEARD]
    return source, kept


# What browsers play in an MP4, and the sound an MP4 holds.
_PLAYED = frozenset({"h264", "hevc", "vp9", "av1"})
_HEARD = frozenset({"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"})
# Bytes gathered before they are handed on.
_CHUNK = 256 * 1024
# The errors of writing a copy that say the disk, not the video, is at fault.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO})


def _remuxed(source: av.container.InputContainer, kept: list[av.stream.Stream]) -> Iterator[bytes]:
    """`kept` streams of `source` copied into a fragmented MP4, a chunk at a time; `source` is
    closed at the end, or when the reader stops early (a visitor who closed the tab)."""
    written = _Written()
    options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
    try:
        with av.open(written, "w", format="mp4", options=options) as out:
            for _ in _copied(source, kept, out):
                if written.size >= _CHUNK:
                    yield written.take()
        yield written.take()  # the last fragment, written as the output closed
    finally:
        source.close()


def _copied(
    source: av.container.InputContainer, kept: list[av.stream.Stream], out: av.container.OutputContainer
) -> Iterator[None]:
    """Copies `kept` streams of `source` into `out`, packet by packet, stopping after each."""
    copies = {stream.index: out.add_stream_from_template(stream) for stream in kept}
    for packet in source.demux(kept):
        if packet.dts is None:  # the demuxer's end-of-stream marks
            continue
        packet.stream = copies[packet.stream.index]
        out.mux(packet)
        yield


class _Written:
    """Where the MP4 is written: its bytes kept until taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        data, self.parts, self.size = b"".join(self.parts), [], 0
        return data
