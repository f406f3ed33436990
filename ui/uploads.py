"""Uploads: what visitors' uploaded pictures leave on the app's disk.

Gradio keeps each upload in a folder of its own, named after its content's hash, and deletes the
picture config.UPLOADS_KEPT_S after it came (the Blocks' `delete_cache`) but not that folder: a
busy demo would pile up one empty folder a picture. They are removed here, once empty for a while
(a folder just made, its picture not written yet, is not).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Gradio's folders of uploads: a SHA-1 or SHA-256 in hex (its other folders are left alone).
_HASHED = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def remove_emptied(root: Path, older_than_s: float) -> int:
    """Remove the empty upload folders in `root` left as they are for more than `older_than_s`
    seconds; how many went. One that is not empty, or that cannot be removed, stays."""
    now, gone = time.time(), 0
    try:
        entries = os.scandir(root)
    except OSError:  # no upload yet: no folder
        return 0
    with entries:
        for entry in entries:
            try:
                if (
                    _HASHED.fullmatch(entry.name)
                    and entry.is_dir(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s
                ):
                    os.rmdir(entry.path)  # refused where a picture is in it
                    gone += 1
            except OSError:
                continue
    return gone


def keep_tidy(root: Path, older_than_s: float, every_s: float) -> None:
    """Call `remove_emptied(root, older_than_s)` every `every_s` seconds on a daemon thread, for
    as long as the app runs."""

    def loop() -> None:
        while True:
            time.sleep(every_s)
            if gone := remove_emptied(root, older_than_s):
                log.info("removed %d emptied upload folders", gone)

    threading.Thread(target=loop, name="upload-folders", daemon=True).start()
