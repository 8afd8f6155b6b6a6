"""HTTP-facing errors of the public listener (daemon process), re-exported from ``tts_ops.service.errors`` where
they are defined so that the service can raise them without importing the http layer."""

from __future__ import annotations

from tts_ops.service.errors import HttpError, RequestError, ServiceError

__all__ = ["HttpError", "RequestError", "ServiceError"]
