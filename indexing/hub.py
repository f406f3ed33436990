"""Hub sync: push a built index to a Hugging Face dataset repository, and pull it back.

Pulling goes through `snapshot_download`, so files land in the Hub cache ($HF_HOME), downloads
resume, and a warm cache downloads nothing again. Every pulled file is checked against the
SHA-256 the manifest records before the index is used.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from indexing import config
from indexing.errors import BuscadorError
from indexing.files import file_digest, replace_atomically
from indexing.sources import source_text
from indexing.store import CATALOG, INDEX, INDEX_FILES, MANIFEST, read_manifest


def commit_message(manifest: dict[str, Any]) -> str:
    origin = source_text(manifest.get("source") or {})
    return f"Index {manifest['count']} images from {origin} with {manifest['model']}"


def verify(index_dir: Path) -> dict[str, Any]:
    """The manifest, once every file matches the size and SHA-256 it records."""
    manifest = read_manifest(index_dir)
    for name in (INDEX, CATALOG):
        expected = manifest["files"].get(name)
        path = index_dir / name
        if expected is None or not path.is_file() or file_digest(path) != expected:
            raise BuscadorError(
                f"{path} does not match its manifest (incomplete download or a file changed); "
                "pull or build the index again"
            )
    return manifest


def push_index(
    index_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    branch: str | None = None,
    token: str | None = None,
    api: Any = None,
) -> str | None:
    """Upload manifest, FAISS index and catalog in one commit; returns the commit's URL, or None
    when the repository already holds the same index (same model and content), pushing nothing."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    manifest = verify(index_dir)
    api = api or HfApi(token=config.hub_token(token))
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, repo_type="dataset", branch=branch, exist_ok=True)
        remote = _remote_manifest(api, repo_id, branch)
        if remote and all(remote.get(f) == manifest.get(f) for f in ("model", "content_digest", "count")):
            return None
        info = api.upload_folder(
            folder_path=str(index_dir),
            repo_id=repo_id,
            repo_type="dataset",
            revision=branch,
            allow_patterns=list(INDEX_FILES),
            commit_message=commit_message(manifest),
        )
    except HfHubHTTPError as exc:
        raise BuscadorError(
            f"cannot push to {repo_id}: {str(exc).splitlines()[0]}. "
            "Check that HF_TOKEN is set to a token with write access."
        ) from None
    except OSError as exc:
        raise BuscadorError(f"cannot push to {repo_id}: {exc}") from None
    return str(getattr(info, "commit_url", None) or info)


def _remote_manifest(api: Any, repo_id: str, branch: str | None) -> dict[str, Any] | None:
    """The manifest of the index already in the repository, if there is a readable one."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

    with tempfile.TemporaryDirectory() as cache:
        try:
            path = api.hf_hub_download(
                repo_id, MANIFEST, repo_type="dataset", revision=branch, cache_dir=cache
            )
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except (EntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError):
            return None


def pull_index(
    repo_id: str, *, revision: str | None = None, out: Path | None = None, token: str | None = None
) -> Path:
    """Download (or reuse from the cache) the index in `repo_id`, verify it; returns its folder.

    With `out`, the verified files are also copied there (manifest last, each replaced atomically).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=revision,
                allow_patterns=list(INDEX_FILES),
                token=config.hub_token(token),
            )
        )
    except LocalEntryNotFoundError:
        raise BuscadorError(
            f"cannot download the index {where}: the Hub is unreachable and it is not in the cache"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise BuscadorError(f"cannot download the index {where}: {str(exc).splitlines()[0]}") from None
    verify(folder)
    if out is None:
        return folder
    out.mkdir(parents=True, exist_ok=True)
    for name in (INDEX, CATALOG, MANIFEST):
        replace_atomically(out / name, lambda tmp, name=name: shutil.copyfile(folder / name, tmp))
    return out
