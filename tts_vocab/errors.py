"""The vocabulary's one error (all processes): a value from a client or a peer process is not one we accept.

``inference.errors.TextError`` and the daemon's request errors build on it, so a caller that catches
``InvalidRequest`` handles every "the input is wrong" case, whichever layer detected it.
"""

from __future__ import annotations


class InvalidRequest(ValueError):
    """A request value is invalid. ``field`` names it (``"speed"``), None when the whole body is wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
