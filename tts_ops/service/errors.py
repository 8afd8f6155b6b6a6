"""Errors of the synthesis service that carry the HTTP status they are answered with (daemon process). The service
raises them without knowing about requests; handlers in ``tts_ops.http`` render them in their API's own shape:
``{"error": "..."}`` for the reference API, OpenAI's ``{"error": {"message", "type", "param", "code"}}`` for /v1.
"""

from __future__ import annotations

from tts_ops.errors import TtsOpsError

__all__ = ["HttpError", "RequestError", "ServiceError"]


class HttpError(TtsOpsError):
    """An error with the HTTP status and headers it should be answered with."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code
        self.headers = headers or {}

    @property
    def is_client_error(self) -> bool:
        return 400 <= self.status < 500


class RequestError(HttpError):
    """The client's request is invalid (400, 401, 413, 415)."""


class ServiceError(HttpError):
    """The service cannot answer now (502, 503 with Retry-After, 504)."""
