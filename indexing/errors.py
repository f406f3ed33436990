"""The errors a user may see: each carries an English message, plus a code and parameters that a
front end (the app) can put into the visitor's own language."""

from __future__ import annotations

import sqlite3


class BuscadorError(Exception):
    """A problem the user can act on; its message is shown as is, without a traceback.

    `code` names the problem ("empty_query", "bad_k", ...) and `params` hold the values its
    message mentions, so the app can say the same thing in Spanish.
    """

    def __init__(self, message: str, code: str = "error", **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class BadImage(BuscadorError):
    """An input that is not a decodable image (corrupt, truncated, empty, too large, not an image)."""


# Errors of the disk rather than of the program (full, failing, not allowed): said in one line.
DiskError = (OSError, sqlite3.OperationalError)


def disk_problem(exc: OSError | sqlite3.OperationalError) -> str:
    """One line for a DiskError: its reason and, where known, the file ("No space left on device
    (index/vectors.f16)")."""
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"{getattr(exc, 'strerror', None) or exc}{where}"
