"""Hub sync: push a built index to a Hugging Face dataset repository, and pull it back.

Pulling goes through the Hub cache ($HF_HOME), so downloads resume and a warm cache downloads
nothing again. The app pulls what search needs (manifest, catalog, vectors, FAISS index) and
fetches a thumbnail shard the first time one of its images is shown (`thumbnail_fetcher`);
`pull --out` copies everything. Every pulled file is checked against the SHA-256 the manifest
records before it is used.
"""

from __future__ import annotations

import importlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from indexing import config
from indexing.errors import BuscadorError
from indexing.files import file_digest, replace_atomically
from indexing.sources import source_text
from indexing.store import MANIFEST, SEARCH_FILES, check_index_folder, read_manifest
from indexing.thumbnails import FOLDER as THUMBNAILS

log = logging.getLogger(__name__)
# What a push uploads, and a full pull downloads.
ALL_FILES = [*SEARCH_FILES, f"{THUMBNAILS}/*.sqlite"]


def unreachable() -> tuple[type[Exception], ...]:
    """The errors of the HTTP library huggingface_hub talks through (httpx; httpx2 since its 2.x)
    when the Hub cannot be reached: no network, a name that does not resolve, a timeout, a dropped
    connection. They are not OSErrors, and its API calls (not its downloads) let them through."""
    found = []
    for name in ("httpx", "httpx2"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]


def commit_message(manifest: dict[str, Any]) -> str:
    origin = source_text(manifest.get("source") or {})
    return f"Index {manifest['count']} images from {origin} with {manifest['model']}"


def verify(index_dir: Path, *, thumbnails: bool = False) -> dict[str, Any]:
    """The manifest, once every search file (and with `thumbnails`, every thumbnail shard)
    matches the size and SHA-256 it records."""
    manifest = read_manifest(index_dir)
    recorded = dict(manifest["files"]) | (manifest.get("thumbnails", {}) if thumbnails else {})
    for name, expected in recorded.items():
        if not _matches(index_dir / name, expected):
            raise BuscadorError(
                f"{index_dir / name} does not match its manifest (incomplete download or a file "
                "changed); pull or build the index again"
            )
    return manifest


def _matches(path: Path, expected: dict[str, Any] | None) -> bool:
    return expected is not None and path.is_file() and file_digest(path) == expected


def push_index(
    index_dir: Path,
    repo_id: str,
    *,
    private: bool | None = None,
    branch: str | None = None,
    token: str | None = None,
    api: Any = None,
) -> str | None:
    """Upload the index (search files and thumbnail shards) in one commit; returns the commit's
    URL, or None when the repository already holds the same index (same model and content),
    pushing nothing. A repository it makes is `private`, by default when the index is of a
    folder (someone's photos: their thumbnails, names, dates and towns), else public (a dataset's,
    already on the Hub); one already there keeps its visibility."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    manifest = verify(index_dir, thumbnails=True)
    if private is None:
        private = of_a_folder(manifest)
    api = api or HfApi(token=config.hub_token(token))
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, repo_type="dataset", branch=branch, exist_ok=True)
        remote = _remote_manifest(api, repo_id, branch)
        # Dates and places: read by a later version, the images the same.
        same = ("model", "content_digest", "count", "dates_taken", "places")
        if remote and all(remote.get(f) == manifest.get(f) for f in same):
            return None
        info = api.upload_folder(
            folder_path=str(index_dir),
            repo_id=repo_id,
            repo_type="dataset",
            revision=branch,
            allow_patterns=ALL_FILES,  # the Hub stores again only the files that changed
            commit_message=commit_message(manifest),
        )
    except HfHubHTTPError as exc:
        raise BuscadorError(
            f"cannot push to {repo_id}: {str(exc).splitlines()[0]}. "
            "Check that HF_TOKEN is set to a token with write access."
        ) from None
    except unreachable() as exc:
        raise BuscadorError(
            f"cannot push to {repo_id}: the Hub is unreachable ({_first_line(exc)})"
        ) from None
    except OSError as exc:
        raise BuscadorError(f"cannot push to {repo_id}: {exc}") from None
    return str(getattr(info, "commit_url", None) or info)


def of_a_folder(manifest: dict[str, Any]) -> bool:
    """Whether an index is of a folder of someone's photos (not of a dataset)."""
    return manifest.get("source", {}).get("kind") == "folder"


def _remote_manifest(api: Any, repo_id: str, branch: str | None) -> dict[str, Any] | None:
    """The manifest of the index already in the repository, if there is a readable one."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    with tempfile.TemporaryDirectory() as cache:
        try:
            path = api.hf_hub_download(
                repo_id, MANIFEST, repo_type="dataset", revision=branch, cache_dir=cache
            )
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (
            EntryNotFoundError,
            RepositoryNotFoundError,
            HfHubHTTPError,
            OSError,
            ValueError,
            *unreachable(),
        ):
            return None


def pull_index(
    repo_id: str, *, revision: str | None = None, out: Path | None = None, token: str | None = None
) -> Path:
    """Download (or reuse from the cache) what search needs of the index in `repo_id`, verify it;
    returns its folder in the Hub cache, whose name is the commit it comes from.

    With `out`, the thumbnails are downloaded too and everything is copied there (each file
    replaced atomically, the manifest last): a complete local copy to build on.
    """
    if out is not None:
        check_index_folder(out)
    folder = _download(repo_id, revision, token, ALL_FILES if out else list(SEARCH_FILES))
    manifest = verify(folder, thumbnails=out is not None)
    if out is None:
        return folder
    out.mkdir(parents=True, exist_ok=True)
    for name in [*manifest.get("thumbnails", {}), *manifest["files"], MANIFEST]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(out / name, lambda tmp, name=name: shutil.copyfile(folder / name, tmp))
    return out


def _download(repo_id: str, revision: str | None, token: str | None, patterns: list[str]) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RevisionNotFoundError

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        return Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=revision,
                allow_patterns=patterns,
                token=config.hub_token(token),
            )
        )
    except LocalEntryNotFoundError:
        raise BuscadorError(
            f"cannot download the index {where}: the Hub is unreachable and it is not in the cache"
        ) from None
    except RevisionNotFoundError:
        raise BuscadorError(
            f"cannot download the index {where}: {repo_id} has no branch, tag or commit {revision!r}"
        ) from None
    except HfHubHTTPError as exc:
        if getattr(exc.response, "status_code", None) in (401, 403, 404):  # the Hub says no more
            readers = (
                "your HF_TOKEN can read"
                if config.hub_token(token)
                else "anyone can read (a private one needs HF_TOKEN set to a token that can read it)"
            )
            raise BuscadorError(
                f"cannot download the index {where}: there is no dataset repository {repo_id} that {readers}"
            ) from None
        raise BuscadorError(f"cannot download the index {where}: {str(exc).splitlines()[0]}") from None
    except unreachable() as exc:  # a connection dropped halfway: the next pull resumes
        raise BuscadorError(
            f"cannot download the index {where}: the Hub is unreachable ({_first_line(exc)})"
        ) from None
    except (OSError, ValueError) as exc:
        raise BuscadorError(f"cannot download the index {where}: {str(exc).splitlines()[0]}") from None


def drop_pulled(folder: Path) -> None:
    """Remove an index pulled into `folder` (a snapshot of the Hub cache, named after its commit)
    from the cache, but for the files that other snapshots there share with it. A long-running
    app that pulls each new commit would otherwise keep every one it ever served on its disk."""
    _drop_commits(folder, lambda repo: {folder.name})


def drop_other_pulls(folder: Path) -> None:
    """Remove from the cache every other commit of the repository whose index was pulled into
    `folder`: what earlier runs of an app with a lasting cache (a Space's persistent storage) left."""

    def others(repo: Any) -> set[str]:
        if Path(repo.repo_path).resolve() != folder.parents[1].resolve():  # repo/snapshots/commit
            return set()
        return {revision.commit_hash for revision in repo.revisions if revision.commit_hash != folder.name}

    _drop_commits(folder, others)


def _drop_commits(folder: Path, commits: Callable[[Any], set[str]]) -> None:
    """Delete `commits(cached repo)` of each repository of the cache that holds `folder`."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache = scan_cache_dir(folder.parents[2])
        doomed = set().union(*(commits(repo) for repo in cache.repos))
        if not doomed:
            return
        strategy = cache.delete_revisions(*doomed)
        strategy.execute()
    except (CacheNotFound, IndexError, OSError, ValueError) as exc:
        log.warning("could not remove old index commits from the Hub cache: %s", exc)
        return
    log.info(
        "removed %d old index commit(s) from the Hub cache (%s)",
        len(doomed),
        strategy.expected_freed_size_str,
    )


def latest_commit(repo_id: str, *, revision: str | None = None, token: str | None = None) -> str:
    """The commit that `revision` (a branch, tag or commit; the default branch when None) of the
    index repository `repo_id` names now: one call to the Hub's API, nothing downloaded."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        info = HfApi().dataset_info(repo_id, revision=revision or "main", token=config.hub_token(token))
    except unreachable() as exc:
        raise BuscadorError(
            f"cannot ask the Hub about the index {where}: the Hub is unreachable ({_first_line(exc)})"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise BuscadorError(
            f"cannot ask the Hub about the index {where}: {str(exc).splitlines()[0]}"
        ) from None
    if not info.sha:
        raise BuscadorError(f"the Hub did not say which commit {where} is at")
    return str(info.sha)


def thumbnail_fetcher(
    repo_id: str, folder: Path, *, token: str | None = None
) -> Callable[[str], Path | None]:
    """For an index pulled into `folder` (a snapshot of the Hub cache, named after its commit):
    downloads one thumbnail shard of that same commit into it, checked against the manifest."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    recorded = read_manifest(folder).get("thumbnails", {})

    def fetch(name: str) -> Path | None:
        if name not in recorded:
            return None
        try:
            path = Path(
                hf_hub_download(
                    repo_id, name, repo_type="dataset", revision=folder.name, token=config.hub_token(token)
                )
            )
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError, *unreachable()) as exc:
            log.warning("cannot download thumbnails %s of %s: %s", name, repo_id, _first_line(exc))
            return None
        if not _matches(path, recorded[name]):
            log.warning("%s of %s does not match its manifest: not shown", name, repo_id)
            path.unlink(missing_ok=True)  # the next request downloads it again
            return None
        return path

    return fetch
