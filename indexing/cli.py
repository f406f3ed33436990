"""Command line: `python -m indexing build | merge | search | info | duplicates | push | pull`.

Parses arguments, calls the engine, prints results. Known problems print one `error:` line and
exit with status 2; Ctrl-C during a build keeps what was already embedded.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from indexing import config
from indexing.errors import BadImage, BuscadorError, DiskError, disk_problem

if TYPE_CHECKING:
    from indexing.catalog import Catalog
    from indexing.embedder import Embedder
    from indexing.search import Hit, Searcher
    from indexing.sources import FolderSource
    from indexing.store import IndexStore
    from indexing.text_encoder import TextEncoder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m indexing",
        description="Buscador Visual: build and search a CLIP image index.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    model_help = f"CLIP model: Hub id or local directory (default: $CLIP_MODEL or {config.DEFAULT_MODEL})"
    precision_help = (
        "the model's precision (default: $CLIP_PRECISION or auto: bf16 where the hardware makes it "
        "faster, measured, fp32 elsewhere)"
    )

    build = sub.add_parser("build", help="index a folder of images or a Hugging Face dataset")
    build.add_argument(
        "paths",
        nargs="*",
        metavar="FOLDER",
        help="folder of images (searched recursively), or several (a laptop's and a NAS's: one index "
        "of them all); the index directory may follow, as --out: build photos my-index, build "
        "photos nas-photos --out my-index (with --dataset, the one positional: build --dataset NAME "
        "my-index)",
    )
    build.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        help="with a folder: leave out files and folders whose name or path in it matches this "
        "pattern (e.g. Exports, 'raw/*.png'; repeatable). Hidden ones and NAS or system "
        "housekeeping folders (@eaDir, #recycle, $RECYCLE.BIN, ...) are always left out",
    )
    build.add_argument(
        "--dataset", help="a Hugging Face dataset instead: Hub name, local folder or parquet file"
    )
    build.add_argument("--split", default="train", help="dataset split (default: train)")
    build.add_argument(
        "--image-column", help="dataset column holding the images (default: the first image column)"
    )
    build.add_argument("--limit", type=int, help="index at most this many dataset rows")
    build.add_argument(
        "--label-column", help="dataset column shown under each result, e.g. a caption or title"
    )
    build.add_argument(
        "--meta-columns",
        default="",
        help="comma-separated dataset columns kept with each row and returned with results, "
        "e.g. artist,url,license",
    )
    build.add_argument(
        "--date-column",
        help="dataset column saying when each image was taken (a date, a datetime, a text like "
        "2019-07-14 18:22:05, or Unix seconds), for taken: searches; else the images' EXIF",
    )
    build.add_argument(
        "--caption-column",
        help="dataset column with each image's caption, whose words caption: searches find "
        '(caption:"Eiffel Tower")',
    )
    build.add_argument(
        "--position-columns",
        metavar="LAT,LON",
        help="dataset columns saying where each image was taken (latitude and longitude in degrees), "
        "for near: searches, e.g. latitude,longitude; else the images' EXIF",
    )
    build.add_argument("--revision", help="dataset revision (branch, tag or commit) on the Hub")
    build.add_argument(
        "--out", type=Path, help=f"index directory (default: $INDEX_DIR or ./{config.DEFAULT_INDEX_DIR})"
    )
    build.add_argument("--model", help=model_help)
    build.add_argument("--precision", choices=config.PRECISIONS, help=precision_help)
    build.add_argument(
        "--runtime",
        choices=config.RUNTIMES,
        help="what runs the model on a CPU (default: $CLIP_RUNTIME or auto: OpenVINO on an x86-64 CPU "
        "where it is installed, converted once 1,000 images are done unless cached; torch elsewhere)",
    )
    build.add_argument(
        "--batch-size",
        type=int,
        help=f"images per model call (default: {config.BATCH_SIZE} on the CPU, "
        f"{config.GPU_BATCH_SIZE} on a GPU)",
    )
    _index_options(build)
    build.add_argument(
        "--shard",
        metavar="I/N",
        help="build only slice I of N of the source (I from 0), to merge later with `merge`",
    )
    build.add_argument(
        "--no-fast-decode",
        action="store_true",
        help="decode JPEGs (and a HEIC, not its thumbnail) at full size (slower; matches "
        "transformers' processor exactly)",
    )
    build.add_argument(
        "--decode",
        choices=config.DECODE_MODES,
        default="auto",
        help="where images are decoded: auto = with the model on a GPU, JPEGs on the GPU where "
        "torchvision is installed (gpu), else one process a core but one (processes); on the CPU, "
        "up to 4 threads",
    )
    build.add_argument("--workers", type=int, help="how many decode threads or processes")
    build.add_argument("--summary-json", type=Path, help="also write the build summary to this JSON file")
    build.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=config.WATCH_SECONDS,
        metavar="SECONDS",
        help="with a folder: after the build, look for new, changed or deleted images every SECONDS "
        f"(default {config.WATCH_SECONDS:g}) and index them, until Ctrl-C",
    )
    build.add_argument(
        "--dry-run",
        action="store_true",
        help="say which images a build would add, update and remove, and write nothing (no model needed)",
    )
    build.add_argument(
        "--replace",
        action="store_true",
        help="build the index of this folder or dataset into an index of another (its images are "
        "removed; those of the same content are reused); without it, refused",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    search = sub.add_parser("search", help="search an index by text or by image")
    search.add_argument("index", nargs="?", help="index directory (default: $INDEX_DIR or ./index)")
    search.add_argument(
        "words",
        nargs="*",
        metavar="DESCRIPTION",
        help="what to look for, as --text: search index a cat on a sofa (or search 'a cat on a sofa', "
        "the default index)",
    )
    search.add_argument(
        "--text",
        help="a description, e.g. 'a cat on a sofa'; -word leaves a word out: 'beach -people'; "
        "taken:2019, near:Madrid, is:video (or is:photo), tag:KEYWORD, rating:4 (4 stars or more) and "
        'caption:WORDS (caption:"Ana\'s birthday") search those photos alone',
    )
    search.add_argument(
        "--image", help="an image file or its http(s) address (with --text too: both together)"
    )
    search.add_argument("--like", type=int, metavar="ID", help="images like the indexed image with this id")
    search.add_argument("--negative", default="", help="comma-separated things to leave out")
    search.add_argument(
        "--image-weight", type=float, default=0.5, help="with --text and --image: the image's share (0 to 1)"
    )
    search.add_argument("-k", type=int, default=config.TOP_K_DEFAULT, help="number of results")
    search.add_argument("--offset", type=int, default=0, help="skip this many results (the next page)")
    search.add_argument(
        "--within",
        default="",
        metavar="FOLDER",
        help="search only the images in this folder of the collection (and its subfolders), e.g. "
        "holidays/2019",
    )
    search.add_argument(
        "--taken",
        metavar="PERIOD",
        help="search only the photos taken then, as their EXIF (or name) says: 2019, 2019-06, 2019-06-15, "
        "2018..2020, ..2015 (the same as taken:PERIOD in --text)",
    )
    search.add_argument(
        "--near",
        metavar="PLACE",
        help="search only the photos taken there, as their EXIF's GPS position says: a town (Madrid, "
        '"New York", "London, Canada"; photos within 25 km, or Madrid~5km) or a country (Spain, ES) '
        "(the same as near:PLACE in --text)",
    )
    search.add_argument(
        "--tag",
        metavar="KEYWORD",
        help="search only the photos with this keyword (XMP's, or a person named in Google Photos) "
        '(the same as tag:"KEYWORD" in --text)',
    )
    search.add_argument(
        "--rating",
        type=int,
        choices=range(1, 6),
        metavar="STARS",
        help="search only the photos rated this many stars or more, 1 to 5 (the same as rating:STARS in "
        "--text)",
    )
    search.add_argument(
        "--caption",
        metavar="WORDS",
        help="search only the photos whose caption (the title or description written in a photo editor "
        'or Google Photos) has these words (the same as caption:"WORDS" in --text)',
    )
    search.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="type one description after another, each searched as it comes (the model loads once): "
        "taken:, near:, is:, tag:, rating:, caption: and -word work as in --text; an empty line or "
        "Ctrl-D ends",
    )
    search.add_argument(
        "--text-model",
        help="a second text encoder for texts in other languages (default: $TEXT_MODEL), e.g. "
        f"{config.MULTILINGUAL_TEXT_MODEL}",
    )
    search.add_argument(
        "--language",
        default="en",
        help="the text's language: anything but en goes to --text-model when there is one (default: en)",
    )
    search.add_argument("--min-score", type=float, default=-1.0)
    search.add_argument("--model", help=model_help)
    search.add_argument("--precision", choices=config.PRECISIONS, help=precision_help)
    output = search.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print results as JSON")
    output.add_argument(
        "--paths",
        action="store_true",
        help="print each result's file alone (a dataset row's image address, else its key), one a line: "
        "for xargs and scripts",
    )
    search.add_argument(
        "--collapse",
        type=float,
        nargs="?",
        const=config.DUPLICATE_THRESHOLD,
        default=0.0,
        metavar="T",
        help="fold results at least T similar to a better one into it "
        f"(T: a cosine, {config.DUPLICATE_THRESHOLD} if left out; default: off)",
    )

    duplicates = sub.add_parser("duplicates", help="list groups of near-duplicate images in an index")
    duplicates.add_argument(
        "index", type=Path, nargs="?", help="index directory (default: $INDEX_DIR or ./index)"
    )
    duplicates.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"cosine from which two images are near-duplicates (default: $DUPLICATE_THRESHOLD or "
        f"{config.DUPLICATE_THRESHOLD})",
    )
    duplicates.add_argument(
        "--within", default="", metavar="FOLDER", help="only the images in this folder (and its subfolders)"
    )
    duplicates.add_argument("--json", action="store_true", help="print the groups as JSON")

    merge = sub.add_parser("merge", help="join shard builds (build --shard I/N) into one index")
    merge.add_argument("shards", type=Path, nargs="+", help="the folders of the N shard builds")
    merge.add_argument("--out", type=Path, required=True, help="folder of the merged index (empty)")
    _index_options(merge)

    info = sub.add_parser("info", help="describe an index")
    info.add_argument("index", type=Path, nargs="?", help="index directory (default: $INDEX_DIR or ./index)")

    push = sub.add_parser("push", help="upload an index to a Hugging Face dataset repository")
    push.add_argument("index", type=Path, help="index directory")
    push.add_argument("--repo", required=True, help="OWNER/NAME of the dataset repository")
    visibility = push.add_mutually_exclusive_group()
    visibility.add_argument(
        "--private",
        action="store_const",
        const=True,
        help="make the repository private (the default for an index of a folder of photos)",
    )
    visibility.add_argument(
        "--public",
        dest="private",
        action="store_const",
        const=False,
        help="make the repository public (the default for an index of a dataset)",
    )
    push.add_argument("--branch", help="branch to commit to (default: main)")

    pull = sub.add_parser("pull", help="download an index from a Hugging Face dataset repository")
    pull.add_argument("repo", help="OWNER/NAME of the dataset repository")
    pull.add_argument("--revision", help="branch, tag or commit (default: main)")
    pull.add_argument("--out", type=Path, help="also copy the index here")
    return parser


def _index_options(parser: argparse.ArgumentParser) -> None:
    from indexing.ann import INDEX_TYPES

    parser.add_argument(
        "--index-type",
        choices=INDEX_TYPES,
        default="auto",
        help=f"auto: exact up to {config.FLAT_LIMIT:,} images, then HNSW while it fits the memory "
        "budget, then IVF-PQ; approximate ones are tuned to a recall@10 of "
        f"{config.RECALL_FLOOR}, measured",
    )
    parser.add_argument(
        "--memory-budget",
        type=int,
        default=config.MEMORY_BUDGET_MB,
        metavar="MB",
        help=f"memory the search index may take, for --index-type auto (default: {config.MEMORY_BUDGET_MB})",
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        commands = {
            "build": _build,
            "search": _search,
            "info": _info,
            "duplicates": _duplicates,
            "merge": _merge,
            "push": _push,
            "pull": _pull,
        }
        return commands[args.command](args)
    except BuscadorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `info | head`: the reader took what it wanted and left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error again as Python exits
        return 141  # as a shell says of a command a closed pipe ended
    except DiskError as exc:
        resume = "; what was done so far is kept: run the same command again once that is fixed"
        print(f"error: {disk_problem(exc)}{resume if args.command == 'build' else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = ": what was embedded so far is kept; run the same command to resume"
        print(f"interrupted{kept if args.command == 'build' else ''}", file=sys.stderr)
        return 130


def _embedder(args: argparse.Namespace, fast_decode: bool = True) -> Embedder:
    from indexing.embedder import Embedder  # imported late: torch takes seconds to load

    return Embedder(
        args.model, fast_decode=fast_decode, precision=args.precision, runtime=getattr(args, "runtime", None)
    )


class _WhenAsked:
    """A model of a search, loaded (by `load`, which checks it fits the index) when the search first
    needs it: a listing of a period's, a place's or the videos' photos, or --like, needs no CLIP
    model, and an English text no second text model (a model takes seconds to load and 600 MB).
    Until then it stands for one that fits, with the `known` attributes the search asks first."""

    def __init__(self, load: Callable[[], Any], **known: Any) -> None:
        self.__dict__.update(known)
        self._load = load
        self._loaded: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._loaded is None:
            self._loaded = self._load()
        return getattr(self._loaded, name)


def _models_when_asked(args: argparse.Namespace, store: IndexStore) -> tuple[Embedder, TextEncoder | None]:
    """The CLIP model and the second text model (where one is set) of a search, each loaded when
    first needed (`_WhenAsked`); one that turns out not to fit the index is refused then, as
    Searcher refuses one."""
    name = config.text_model(args.text_model)

    def clip() -> Embedder:
        loaded = _embedder(args)
        store.require_model(loaded.model_name, loaded.dim)
        return loaded

    def text() -> TextEncoder:
        from indexing.text_encoder import TextEncoder

        loaded = TextEncoder(name)
        loaded.require_image_model(store.model)
        return loaded

    embedder = cast("Embedder", _WhenAsked(clip, model_name=store.model, dim=store.dim))
    checked_when_loaded = {"require_image_model": lambda _model: None}
    return embedder, cast("TextEncoder", _WhenAsked(text, **checked_when_loaded)) if name else None


def _build(args: argparse.Namespace) -> int:
    from indexing.changes import plan_build, refuse_absent
    from indexing.sources import DatasetSource, FolderSource, Shard

    folders, index = _folders_and_index(args)
    if bool(args.dataset) == bool(folders):
        raise BuscadorError("give a folder of images or --dataset NAME (one of them)")
    if index is not None and args.out is not None and index != args.out:
        raise BuscadorError(f"two index folders given, {index} and --out {args.out}: give one")
    if folders and (
        args.label_column
        or args.meta_columns
        or args.date_column
        or args.position_columns
        or args.caption_column
    ):
        raise BuscadorError(
            "--label-column, --meta-columns, --date-column, --position-columns and --caption-column are "
            "for datasets; a folder's label is its path, and when and where its photos were taken and "
            "their captions come from their EXIF and XMP"
        )
    positions = [c.strip() for c in (args.position_columns or "").split(",") if c.strip()]
    if args.position_columns is not None and len(positions) != 2:
        raise BuscadorError("--position-columns takes two columns, latitude first: latitude,longitude")
    if args.dataset and args.exclude:
        raise BuscadorError("--exclude is for folders; --limit and --shard choose a dataset's rows")
    if args.batch_size is not None and args.batch_size < 1:
        raise BuscadorError("--batch-size must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise BuscadorError("--workers must be at least 1")
    if args.memory_budget < 1:
        raise BuscadorError("--memory-budget must be at least 1 (MB)")
    if args.watch is not None and (args.dataset or args.shard or not 0 < args.watch < float("inf")):
        raise BuscadorError("--watch takes a number of seconds above 0, and works with a folder (no --shard)")
    shard = Shard.parse(args.shard) if args.shard else None
    if args.dataset:
        source = DatasetSource(
            args.dataset,
            split=args.split,
            image_column=args.image_column,
            limit=args.limit,
            revision=args.revision,
            label_column=args.label_column,
            meta_columns=[c.strip() for c in args.meta_columns.split(",") if c.strip()],
            date_column=args.date_column,
            position_columns=(positions[0], positions[1]) if positions else None,
            caption_column=args.caption_column,
        )
    else:
        source = FolderSource(*folders, exclude=args.exclude)
    out = config.index_dir(index or args.out)
    if args.dry_run:  # (without the build's modules: they load torch and transformers, seconds)
        if args.watch is not None:
            raise BuscadorError("--dry-run looks once: leave out --watch")
        plan = plan_build(source, out, shard=shard, progress=not args.no_progress, replace=args.replace)
        print(plan.report())
        return 0
    refuse_absent(source, out)  # before the model: a typing slip fails fast
    from indexing.build import build_index

    embedder = _embedder(args, fast_decode=not args.no_fast_decode)

    def build(source: DatasetSource | FolderSource) -> None:
        summary = build_index(
            source,
            out,
            embedder,
            batch_size=args.batch_size,
            index_type=args.index_type,
            memory_budget_mb=args.memory_budget,
            shard=shard,
            workers=args.workers,
            decode=args.decode,
            progress=not args.no_progress,
            replace=args.replace,
        )
        print(summary.report())
        print(f"index written to {out}", flush=True)
        if args.summary_json:
            args.summary_json.write_text(
                json.dumps(summary.as_dict() | {"skipped_images": summary.skipped}, indent=2)
            )

    if args.watch is None:
        build(source)
        return 0

    def listed() -> FolderSource:
        return FolderSource(*folders, exclude=args.exclude)

    return _watch(", ".join(folders), args.watch, listed, lambda: build(listed()))


def _folders_and_index(args: argparse.Namespace) -> tuple[list[str], Path | None]:
    """The folders a build indexes and the index folder its positionals name (None: --out's or the
    default): `build A`, `build A INDEX`, `build A B --out INDEX`, `build A B INDEX`; `build
    --dataset NAME INDEX`. A folder of images taken for the index, or an index for a folder of
    images, is refused with what to write instead."""
    from indexing.sources import holds_images
    from indexing.store import MANIFEST, holds_index

    paths = list(args.paths)
    if args.dataset:
        if len(paths) > 1:
            raise BuscadorError(f"with --dataset, give one index folder, not {len(paths)} folders")
        return [], Path(paths[0]) if paths else None
    if args.out is not None and paths and Path(paths[-1]) == args.out:
        paths = paths[:-1]  # build photos my-index --out my-index
    folders, index = (paths[:-1], Path(paths[-1])) if args.out is None and len(paths) > 1 else (paths, None)
    for folder in folders:
        if (Path(folder) / MANIFEST).exists():
            raise BuscadorError(f"{folder} is an index, not a folder of images: give the folders to index")
    if index is not None and index.is_dir() and not holds_index(index) and holds_images(index):
        raise BuscadorError(
            f"{index} is a folder of images, taken for the index: to index it too, name the index "
            f"with --out (build {' '.join(map(shlex.quote, [*folders, str(index)]))} --out INDEX)"
        )
    return folders, index


def _watch(where: str, every: float, listed: Callable[[], FolderSource], build: Callable[[], None]) -> int:
    """Build, then build again whenever the images of the folders `where` names change (new,
    changed, deleted: a new listing of names, sizes and times, checked every `every` seconds),
    until Ctrl-C. A build that fails (another build holds the index, a full disk) is reported and
    tried again at the next change; what each build did is kept, as always."""

    def listing() -> dict[str, str] | None:
        """Names and fingerprints of the folder's images; None while the folder is not there."""
        try:
            return {item.key: item.fingerprint for item in listed().items()}
        except BuscadorError:  # an unplugged disk, a network share away
            return None

    built = listing()  # a change made during a build is seen at the next look
    build()  # a problem with the first build (another model's index, ...) ends the command
    try:
        while True:
            print(f"watching {where} for new, changed or deleted images (Ctrl-C stops)", flush=True)
            while (now := listing()) == built or now is None:
                if now is None and built is not None:
                    print(f"{where} is not there now: still watching", flush=True)
                    built = None  # said once; the folder's return is a change
                time.sleep(every)
            built = now
            try:
                build()
            except BuscadorError as exc:
                print(f"error: {exc}; still watching", file=sys.stderr)
            except DiskError as exc:
                print(f"error: {disk_problem(exc)}; still watching", file=sys.stderr)
    except KeyboardInterrupt:
        print("stopped watching: the index holds what was built", flush=True)
        return 0


def _search(args: argparse.Namespace) -> int:
    from indexing.search import Searcher, last_words
    from indexing.store import IndexStore

    _description_from_words(args)
    store = IndexStore(config.index_dir(args.index))  # before the model: a missing index fails fast
    embedder, text_encoder = _models_when_asked(args, store)
    searcher = Searcher(store, embedder, text_encoder=text_encoder)
    options = {
        "k": args.k,
        "min_score": args.min_score,
        "offset": args.offset,
        "collapse": args.collapse,
        "within": args.within,
    }
    if args.interactive:
        if args.text is not None or args.image is not None or args.like is not None:
            raise BuscadorError(
                "--interactive reads the descriptions as you type them: leave out --text, --image and --like"
            )
        return _one_after_another(searcher, args, options)
    narrowed = _filters(args)
    if args.like is not None:
        if args.text is not None or args.image is not None or narrowed:
            raise BuscadorError(
                "--like searches by an indexed image alone: leave out --text, --image, --taken, --near, "
                "--tag, --rating and --caption"
            )
        hits = searcher.by_id(args.like, **options)
    elif args.text is None and args.image is None and not narrowed:
        raise BuscadorError(
            "give --text, --image (or both), --like ID, or --taken, --near, --tag, --rating or --caption "
            "alone (a period's, a place's, a keyword's, a rating's or a caption's photos), or -i to type "
            "descriptions one after another"
        )
    else:
        text = " ".join(filter(None, [args.text, narrowed]))
        try:
            hits = searcher.by_query(
                text,
                _query_image(args.image),
                negative=args.negative,
                image_weight=args.image_weight,
                language=args.language,
                **options,
            )
        except BadImage as exc:
            raise BuscadorError(f"{args.image}: {exc}") from None
        if args.text and (read := searcher.words_read(args.text, args.language)):
            print(
                f"note: the description is too long for the model: it read up to “…{last_words(read)}”",
                file=sys.stderr,
            )
        if args.text and (captioned := searcher.captioned(text, args.within)):
            words, n = captioned
            have = "1 photo has" if n == 1 else f"{n:,} photos have"
            print(
                f"note: {have} “{words}” in {'its' if n == 1 else 'their'} caption: add "
                f'caption:"{words}" to search among {"it" if n == 1 else "them"}',
                file=sys.stderr,
            )
    _print_hits(hits, args)
    return 0


def _one_after_another(searcher: Searcher, args: argparse.Namespace, options: dict[str, Any]) -> int:
    """`search --interactive`: each line typed is a description, or an image's file (a file dropped
    on the terminal, which writes its path) or web address, searched at once with the search's
    options (--taken, --near, --tag and --rating among them); a query that cannot run says why
    and the next one is asked for. The prompt goes to the error output: the results alone go to the output."""
    also = _filters(args)
    if sys.stdin.isatty():
        print(
            "type a description (taken:2019, near:Madrid, is:video, -word work here too), or drop "
            "an image here; an empty line or Ctrl-D ends",
            file=sys.stderr,
        )
    while True:
        print("search> ", end="", file=sys.stderr, flush=True)
        try:
            line = sys.stdin.readline()
        except KeyboardInterrupt:  # Ctrl-C ends it as Ctrl-D does
            line = ""
        if not line.strip():
            print(file=sys.stderr)
            return 0
        try:
            image = _typed_image(line.strip())
            text = " ".join(filter(None, [None if image else line.strip(), also]))
            hits = searcher.by_query(text, _query_image(image), language=args.language, **options)
        except BuscadorError as exc:  # (BadImage among them)
            print(f"error: {exc}", file=sys.stderr)
            continue
        _print_hits(hits, args)


def _print_hits(hits: list[Hit], args: argparse.Namespace) -> None:
    """The results as --json, --paths or the default lines say."""
    from indexing.ratings import stars
    from indexing.sources import WEB_ADDRESS
    from indexing.video import clock

    if args.json:
        print(json.dumps([h.as_dict() for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        print("no results above the minimum score", file=sys.stderr if args.paths else sys.stdout)
    if args.paths:
        where = [hit.path or (hit.meta or {}).get(WEB_ADDRESS) or hit.key for hit in hits]  # file, web, row
        print("".join(f"{place}\n" for place in where), end="")
        return
    for hit in hits:
        taken = f", a video of {clock(hit.seconds)}" if hit.seconds else ""
        taken += f", taken {hit.taken[:10]}" if hit.taken else ""
        if hit.place:  # a town's "Cadiz, Spain"; a photo near none has its country alone
            taken += f", {'near' if ', ' in hit.place else 'in'} {hit.place}"
        taken += f", tagged {', '.join(hit.tags)}" if hit.tags else ""
        taken += f", {rated}" if (rated := stars(hit.rating)) else ""
        taken += f", “{' / '.join(hit.caption.splitlines())}”" if hit.caption else ""
        folded = f", +{len(hit.folded)} similar: ids {', '.join(map(str, hit.folded))}" if hit.folded else ""
        score = f"{hit.score:.4f}" if hit.score is not None else "     —"  # a period browsed
        print(f"{hit.rank:>3}  {score}  {hit.path or hit.label}  (id {hit.id}{taken}{folded})")


def _filters(args: argparse.Namespace) -> str:
    """--taken, --near, --tag, --rating and --caption as a query writes them: taken:PERIOD
    near:"PLACE"~KM tag:"KEYWORD" rating:STARS caption:"WORDS" ("" for none)."""
    from indexing.dates import parse_period

    # As taken: in the text, once checked whole ("last summer" is not cut to "last").
    period = "taken:" + "".join(parse_period(args.taken).text.split()) if args.taken is not None else ""
    place = ""
    if args.near is not None:  # "Madrid~5km" → near:"Madrid"~5km
        name, tilde, far = args.near.replace('"', "").rpartition("~")
        place = f'near:"{name}"~{far}' if tilde else f'near:"{far}"'
    tag = f'tag:"{args.tag.replace(chr(34), "")}"' if args.tag else ""
    stars = f"rating:{args.rating}" if args.rating is not None else ""
    caption = f'caption:"{args.caption.replace(chr(34), "")}"' if args.caption else ""
    return " ".join(filter(None, [period, place, tag, stars, caption]))


def _description_from_words(args: argparse.Namespace) -> None:
    """The words after the index as the description (`--text`); a first word that names no file
    or folder and is no path (no "/"), without --text, is the description's too, searched in the
    default index."""
    first = args.index  # as typed: "./idx" is a path
    if first is not None and args.text is None and "/" not in first and not Path(first).exists():
        args.words, args.index = [first, *args.words], None
    if args.words:
        if args.text is not None:
            raise BuscadorError("give the description once: after the index, or with --text")
        args.text = " ".join(args.words)


def _typed_image(line: str) -> str | None:
    """The image file (or web address) a line names alone, as a terminal writes a file dropped on
    it ('/home/ana/My Photos/a.jpg', quoted or with its spaces escaped); None for a description."""
    from indexing.images import IMAGE_EXTENSIONS, is_url

    try:
        words = shlex.split(line)
    except ValueError:  # an unclosed quote: a description's
        return None
    if len(words) != 1:
        return None
    word = words[0]
    named = "/" in word or Path(word).suffix.lower() in IMAGE_EXTENSIONS  # (a file "cat" is no photo)
    return word if is_url(word) or (named and Path(word).expanduser().is_file()) else None


def _query_image(given: str | None) -> Path | bytes | None:
    """--image: a file, or the bytes at the web address given (raises BadImage when they cannot be
    had)."""
    from indexing.images import is_url, read_url

    if given is None:
        return None
    return read_url(given) if is_url(given) else Path(given).expanduser()


def _images_say(count: int, what: str) -> str:
    """ "1 image says when it was taken", "12 images say when they were taken" (`what`: when, where)."""
    return f"1 image says {what} it was taken" if count == 1 else f"{count} images say {what} they were taken"


def _span(first: str, last: str) -> str:
    """The days from `first` to `last` (dates taken), or the one day."""
    return f"on {first[:10]}" if first[:10] == last[:10] else f"{first[:10]} to {last[:10]}"


def _info(args: argparse.Namespace) -> int:
    from indexing import ann
    from indexing.sources import source_text
    from indexing.store import read_manifest

    index = config.index_dir(args.index)
    manifest = read_manifest(index)
    print(f"index:       {index.resolve()} (format {manifest['format_version']})")
    print(f"images:      {manifest['count']}")
    print(f"model:       {manifest['model']} ({manifest['embedding_dim']}-d)")
    recall = manifest.get("recall_at_10", 1.0)
    exactness = (
        "exact" if manifest["index_type"] == "flat" else f"approximate, recall@10 {recall:.3f} measured"
    )
    print(f"index type:  {manifest['index_type']} ({manifest['metric']}, {exactness})")
    settings = manifest.get("search") or {}
    if settings:
        print(f"search:      {', '.join(f'{name} {value}' for name, value in settings.items())}")
    if manifest.get("warning"):
        print(f"warning:     {manifest['warning']}")
    if ghosts := len(manifest.get("ghosts", [])):
        print(
            f"removed:     {ghosts} removed image{'s' if ghosts != 1 else ''} still in the index, "
            f"left out of every search (built again past {ann.GHOST_SHARE:.0%} of it)"
        )
    print(f"precision:   {manifest.get('precision', {}).get('image', 'fp32')} (image embeddings)")
    print(f"source:      {source_text(manifest.get('source', {}))}")
    print(f"built at:    {manifest['built_at']}")
    unused = manifest.get("vectors", {}).get("rows", manifest["count"]) - manifest["count"]
    # Ids are kept for good, so removed and changed images leave their rows behind (a shard
    # build's ids are positions in the whole source: its gaps are the other shards').
    if unused > 0 and "shard" not in manifest.get("source", {}):
        print(
            f"unused:      {unused} vector rows of removed or changed images (a build into a new "
            "folder drops them)"
        )
    if manifest.get("source", {}).get("kind") == "folder" and (
        folders := _most(index, lambda c, n: c.top_folders(n))
    ):
        print(f"folders:     {folders} (search one alone with --within)")
    if tags := manifest.get("tags"):
        top = _counts(list(tags["top"].items()), more=False)
        have = "1 image has some" if tags["count"] == 1 else f"{tags['count']} images have some"
        print(f"keywords:    {have}; {top} (search one with tag:KEYWORD in a query)")
    if ratings := manifest.get("ratings"):
        stars = _counts([(f"{n}★", count) for n, count in ratings.items()], more=False)
        print(f"ratings:     {sum(ratings.values()):,} rated: {stars} (rating:4 in a query: 4 stars or more)")
    if captions := manifest.get("captions"):
        have = "1 image has one" if captions == 1 else f"{captions:,} images have one"
        print(f"captions:    {have} (search their words with caption:WORDS in a query)")
    if videos := manifest.get("videos"):
        print(f"videos:      {videos} (search them alone with is:video in a query, the photos with is:photo)")
    if dates := manifest.get("dates_taken"):
        print(
            f"dates:       {_images_say(dates['count'], 'when')}, {_span(dates['first'], dates['last'])} "
            "(search a period alone with --taken, or taken:2019 in a query)"
        )
        if years := dates.get("years"):
            print(f"years:       {_counts(list(years.items()), more=False)}")
    if places := manifest.get("places"):
        from indexing.places import country_name

        print(
            f"places:      {_images_say(places['count'], 'where')} (search near a town or "
            "in a country alone with --near, or near:Madrid in a query)"
        )
        countries = list(places.get("countries", {}).items())
        shown = _counts([(country_name(code), n) for code, n in countries[:8]], more=len(countries) > 8)
        print(f"countries:   {shown}")
        if "towns" in places:  # the manifest's ten (an index built before it named them: the catalog's)
            towns = _counts(list(places["towns"].items())[:8], more=len(places["towns"]) > 8)
        else:
            towns = _most(index, lambda c, n: [(f"{town}, {code}", k) for town, code, k in c.top_towns(n)])
        print(f"towns:       {towns}")
    size = sum(f["size"] for f in manifest["files"].values())
    thumbs = manifest.get("thumbnails", {})
    print(f"size:        {size / 1e6:.1f} MB to search", end="")
    shards = f"{len(thumbs)} shard{'s' if len(thumbs) != 1 else ''}"
    print(f", {sum(f['size'] for f in thumbs.values()) / 1e6:.1f} MB of thumbnails in {shards}")
    return 0


def _most(index: Path, counted: Callable[[Catalog, int], list[tuple[str, int]]], most: int = 8) -> str:
    """The `most` biggest of what `counted` finds in the index's catalog, as one line: "2019
    (1,204), work (300), …" (the ellipsis when there may be more)."""
    from indexing.catalog import CATALOG, Catalog

    catalog = Catalog(index / CATALOG, readonly=True)
    try:
        found = counted(catalog, most)
    finally:
        catalog.close()
    return _counts(found, more=len(found) == most)


def _counts(counted: list[tuple[str, int]], *, more: bool) -> str:
    """Names with their counts as one line, "2019 (1,204), work (300)", and ", …" when `more`."""
    return ", ".join(f"{name} ({count:,})" for name, count in counted) + (", …" if more else "")


def _duplicates(args: argparse.Namespace) -> int:
    import time

    from indexing.duplicates import find_duplicates
    from indexing.search import duplicate_threshold
    from indexing.store import IndexStore, folder_name

    threshold = duplicate_threshold(config.duplicate_threshold(args.threshold))
    if threshold == 0:
        raise BuscadorError("the near-duplicate threshold must be above 0 to find duplicates")
    store = IndexStore(config.index_dir(args.index))
    started = time.perf_counter()
    folder = folder_name(args.within)
    groups = find_duplicates(store, threshold, within=folder, progress=True)
    seconds = time.perf_counter() - started
    if args.json:
        data = [{"size": len(g), "members": [asdict(m) for m in g]} for g in groups]
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    images = sum(len(g) for g in groups)
    print(
        f"{len(groups)} group{'s' if len(groups) != 1 else ''} of near-duplicates (cosine ≥ {threshold}), "
        f"{images} images, "
        f"among {store.count_in(folder)} ({seconds:.1f}s)"
    )
    for n, group in enumerate(groups, start=1):
        print(f"group {n}: {len(group)} images")
        for member in group:
            stars = f", {member.stars}" if member.stars else ""
            print(f"  {member.similarity:.4f}  {member.label}  (id {member.id}{stars})")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from indexing.merge import merge_shards

    manifest = merge_shards(
        args.shards, args.out, index_type=args.index_type, memory_budget_mb=args.memory_budget, progress=True
    )
    kind = manifest["index_type"]
    quality = "exact" if kind == "flat" else f"recall@10 {manifest['recall_at_10']:.3f}"
    count, shards = manifest["count"], len(args.shards)
    print(f"{count} images from {shards} shards merged into {args.out} ({kind}, {quality})")
    if manifest.get("warning"):
        print(f"warning: {manifest['warning']}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from indexing.hub import of_a_folder, push_index
    from indexing.store import read_manifest

    url = push_index(args.index, args.repo, private=args.private, branch=args.branch)
    if url is None:
        print(f"nothing to push: {args.repo} already holds this index (same model and content)")
    else:
        print(f"pushed {args.index} to {url}")
    if args.private is None and of_a_folder(read_manifest(args.index)):
        print(
            "(an index of a folder holds its photos' thumbnails, names, dates and towns: a repository "
            "made for it is private, which an app pulling it reads with HF_TOKEN; --public makes a new "
            "one public)"
        )
    return 0


def _pull(args: argparse.Namespace) -> int:
    from indexing.hub import pull_index

    path = pull_index(args.repo, revision=args.revision, out=args.out)
    print(f"index ready at {path}")
    return 0
