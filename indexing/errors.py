"""The one error type a user may see: it carries a message that says what went wrong and what to do."""


class BuscadorError(Exception):
    """A problem the user can act on; its message is shown as is, without a traceback."""


class BadImage(BuscadorError):
    """An input that is not a decodable image (corrupt, truncated, empty, too large, not an image)."""
