"""What a build of a source would change in an index: the source's listing against the catalog
(new, changed, unchanged, a sidecar edited, gone, kept where the source could not look), the
collection an index is of (a build of another one refused), and the dry run that says it all
without doing any of it (`build --dry-run`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from indexing import xmp
from indexing.catalog import CATALOG, Catalog
from indexing.errors import BuscadorError
from indexing.header_pass import reread
from indexing.images import IMAGE_EXTENSIONS
from indexing.progress import progress_bar
from indexing.sources import (
    Shard,
    Source,
    SourceItem,
    adds_folders,
    folder_roots,
    same_collection,
    source_text,
)
from indexing.store import check_index_folder, read_manifest


@dataclass
class Diff:
    """Compares a source's items with what the catalog already holds."""

    known: dict[str, str]  # key → fingerprint in the catalog
    seen: set[str] = field(default_factory=set)
    unchanged: int = 0
    # key → fingerprint of the unchanged images whose XMP sidecar alone changed (or came, or went)
    retold: dict[str, str] = field(default_factory=dict)

    def changed(
        self,
        items: Iterable[SourceItem],
        bar: tqdm | None,
        unchanged: Callable[[SourceItem], None] = lambda _: None,
    ) -> Iterator[SourceItem]:
        """The new or changed items; counts the rest as unchanged (and as progress on `bar`, where
        given), each handed to `unchanged`."""
        for item in items:
            self.seen.add(item.key)
            if self.same(item):
                self.unchanged += 1
                if bar is not None:
                    bar.update(1)
                unchanged(item)
            else:
                yield item

    def same(self, item: SourceItem) -> bool:
        """Whether `item`'s image is indexed as it is now (its sidecar may have changed: `retold`)."""
        known = self.known.get(item.key)
        if known == item.fingerprint:
            return True
        if known is not None and xmp.image_part(known) == xmp.image_part(item.fingerprint):
            self.retold[item.key] = item.fingerprint
            return True
        return False


def one_collection(catalog: Catalog, out_dir: Path, source: Source, *, replace: bool) -> None:
    """Refuse a build of another folder or dataset into an index that holds images (it would remove
    them all, to embed them again if that was not meant) unless `replace`; the collection an index
    is of is the one its catalog recorded, else its manifest names (an index built before). More
    folders than an index has are welcome: none of its images is lost."""
    was = _recorded_source(catalog, out_dir)
    now = source.describe()
    if replace or not isinstance(was, dict) or same_collection(was, now) or adds_folders(was, now):
        return
    count = catalog.ids().size
    if count:
        was_text, now_text = (source_text(d | {"exclude": []}) for d in (was, now))
        raise BuscadorError(
            f"{out_dir} is the index of {was_text} ({count:,} image{'' if count == 1 else 's'}); a build "
            f"of {now_text} into it would remove them. Build into another folder (a new index), or add "
            f"--replace to make it the index of {now_text} (images already embedded, by content, are "
            "not embedded again)",
            "other_collection",
        )


def refuse_absent(source: Source, out_dir: Path) -> None:
    """Refuse a folder of `source` that is not there unless the index in `out_dir` is of it already:
    then its disk is away, and its images stay; else it is a typing slip. Reads the index's
    recorded source (its catalog's, else its manifest's) only when a folder is absent."""
    if not source.absent:
        return
    was = None
    if (out_dir / CATALOG).exists():
        try:
            catalog = Catalog(out_dir / CATALOG, readonly=True)
        except BuscadorError:  # of another format: its manifest says
            was = _recorded_source(None, out_dir)
        else:
            try:
                was = _recorded_source(catalog, out_dir)
            finally:
                catalog.close()
    known = {str(folder) for folder in folder_roots(was).values()} if isinstance(was, dict) else set()
    if absent := [folder for folder in source.absent if folder not in known]:
        raise BuscadorError(f"{absent[0]} is not a folder")


def _recorded_source(catalog: Catalog | None, out_dir: Path) -> object:
    """The source the index in `out_dir` is of, as its `describe()` gave it: the one its catalog
    recorded, else the one its manifest names (an index built before); None for none."""
    recorded = catalog.get_meta("source") if catalog is not None else None
    try:
        return json.loads(recorded) if recorded else read_manifest(out_dir).get("source")
    except (ValueError, BuscadorError):
        return None


def nothing_found(source: Source) -> str:
    """What a build (or its dry run) that found no image at all says: what the source held instead
    (files of other kinds, by extension), or that it held nothing."""
    where = source_text(source.describe())
    if not source.others:
        return f"no image in {where}: it is empty, nothing to index"
    kinds = ", ".join(f"{n} {suffix or 'without extension'}" for suffix, n in source.others.most_common(5))
    return (
        f"no image in {where}, only files of other kinds ({kinds}): nothing to index. Images are "
        f"{' '.join(sorted(IMAGE_EXTENSIONS))} files"
    )


def unlisted(diff: Diff, source: Source) -> tuple[list[str], list[str]]:
    """Indexed images the source did not list: those it no longer has, and those kept as they
    were because the source could not list where they are this time (a folder it had no
    permission for, a disk that failed). A source that lists no image at all keeps every one: the
    empty mount point of a disk not mounted, or a sync gone wrong, is no collection deleted (an
    index to empty is deleted instead)."""
    if diff.known and not diff.seen:
        return [], list(diff.known)
    missing, kept = [], []
    for key in diff.known:
        if key not in diff.seen:
            (kept if within(key, source.unreachable) else missing).append(key)
    return missing, kept


def kept_note(kept: list[str], diff: Diff, source: Source) -> str:
    s = "s" if len(kept) > 1 else ""
    if not diff.seen:
        return (
            f"no image in {source_text(source.describe())} now: kept the index's {len(kept)} image{s} "
            "as they were (is its disk mounted?); to empty the index, delete its folder"
        )
    return f"kept {len(kept)} indexed image{s} as they were: where they are could not be read this time"


@dataclass
class BuildPlan:
    """What a build would do, found by listing the source and reading the catalog alone: nothing
    decoded, embedded or written (`build --dry-run`)."""

    new: list[str]
    changed: list[str]
    removed: list[str]
    retold: list[str]  # unchanged images whose XMP sidecar changed: when and where read again
    moved: list[tuple[str, str]]  # (from, to): a folder's file under a new name, its size and time the same
    kept: list[str]  # indexed images where the source could not list this time: left as they are
    kept_line: str  # what says so
    unchanged: int
    skipped: list[str]  # what the source could not list or will not read, one line each
    nothing_found: str = ""  # where the source holds no image at all: what it holds instead
    reread: int = 0  # headers read again once: the index was read by an older header reader

    def report(self, most: int = 10) -> str:
        moves = f"{len(self.moved)} moved, " if self.moved else ""
        lines = [
            f"dry run, nothing written: {len(self.new)} new, {len(self.changed)} changed, "
            f"{moves}{len(self.removed)} removed, {self.unchanged} unchanged"
        ]
        listed = [("new", self.new), ("changed", self.changed), ("removed", self.removed)]
        listed.append(("moved (keeping their ids)", [f"{was} → {now}" for was, now in self.moved]))
        for name, keys in [*listed, ("sidecar edited, when and where read again", self.retold)]:
            if keys:
                more = f", … and {len(keys) - most} more" if len(keys) > most else ""
                lines.append(f"{name}: {', '.join(keys[:most])}{more}")
        if self.reread:
            lines.append(f"{self.reread} headers read again, once: this version reads more in them")
        if self.kept:
            lines.append(self.kept_line)
        lines += [f"skipped {line}" for line in self.skipped]
        lines += [self.nothing_found] if self.nothing_found else []
        if self.new or self.changed:
            lines.append(
                "(files that turn out unreadable are found, and skipped, when the build decodes them)"
            )
        return "\n".join(lines)


def plan_build(
    source: Source, out_dir: Path, *, shard: Shard | None = None, progress: bool = True, replace: bool = False
) -> BuildPlan:
    """What `build_index(source, out_dir, shard=shard, replace=replace)` would do, without doing
    any of it (what it would refuse, it refuses)."""
    check_index_folder(out_dir)
    refuse_absent(source, out_dir)
    known: dict[str, str] = {}
    again = 0
    if (out_dir / CATALOG).exists():
        catalog = Catalog(out_dir / CATALOG, readonly=True)
        try:
            one_collection(catalog, out_dir, source, replace=replace)
            known = catalog.fingerprints()
            again = len(reread(catalog, source, known))
        finally:
            catalog.close()
    diff = Diff(known)
    items, total = listed(source, shard)
    new: dict[str, str] = {}  # key → fingerprint
    changed = []
    with progress_bar(total, "listing", "img", shown=progress) as bar:
        for item in diff.changed(items, bar):
            if item.key in known:
                changed.append(item.key)
            else:
                new[item.key] = item.fingerprint
            bar.update(1)
    removed, kept = unlisted(diff, source)
    moved = _moves(removed, new, known) if source.of_files else []
    for was, now in moved:
        removed.remove(was)
        del new[now]
    kept_line = kept_note(kept, diff, source) if kept else ""
    skipped = [*source.warnings, *(line for line, _, _ in left_out(source))]
    nothing = nothing_found(source) if not diff.seen and not skipped and not known else ""
    retold = list(diff.retold)
    return BuildPlan(
        list(new), changed, removed, retold, moved, kept, kept_line, diff.unchanged, skipped, nothing, again
    )


def _moves(removed: list[str], new: dict[str, str], known: dict[str, str]) -> list[tuple[str, str]]:
    """The removed files that came back under a new name (from, to), as far as a listing tells: a
    move or a rename keeps a file's size and time. The build knows them by their content, and
    gives each its old id."""
    gone: dict[str, list[str]] = {}
    for key in removed:
        gone.setdefault(xmp.image_part(known[key]), []).append(key)
    found = []
    for key, fingerprint in new.items():
        if was := gone.get(xmp.image_part(fingerprint)):
            found.append((was.pop(0), key))
    return found


def listed(source: Source, shard: Shard | None) -> tuple[Iterator[SourceItem], int | None]:
    """The items a build of `source` (or of its `shard` slice) goes through, and about how many
    (None: not known before listing them)."""
    total = source.total()
    if shard is None:
        return source.items(), total
    return shard.items(source), None if total is None else shard.share(total)


def within(key: str, places: list[str]) -> bool:
    """Whether `key` is one of `places` or in one of its folders ("x/", or "" for all)."""
    return any(
        key == place or ((place.endswith("/") or not place) and key.startswith(place)) for place in places
    )


def left_out(source: Source) -> list[tuple[str, list[str], str]]:
    """The files a source left out (formats it cannot read), one entry a format: (a line saying
    how many and what to do, their names, the reason)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, kind, advice in source.left_out:
        grouped.setdefault((kind, advice), []).append(name)
    return [
        (f"{len(names)} {kind} file{'s' if len(names) > 1 else ''}: {advice}", names, f"{kind}: {advice}")
        for (kind, advice), names in grouped.items()
    ]
