"""Error hierarchy of the inference side (worker process and in-process synthesis); the exit codes are the shared
vocabulary's (tts_vocab.exit_codes), re-exported.

Three families matter to callers:
- ``BootError``: the engine cannot start (missing package, missing or corrupt model). A worker exits with
  ``EXIT_BOOT_FAILURE`` so the supervisor can halt restarts instead of spinning.
- ``TextError``: the client's input cannot be synthesised (normalises to nothing, unknown voice...). Maps to 4xx.
  It is an ``InvalidRequest`` (tts_vocab), like the vocabulary's own field errors.
- ``EngineFailure``: the engine ran but produced something unusable (NaN, silence, clipping) or raised. Maps to
  5xx and is retryable on another worker.
"""

from tts_vocab.errors import InvalidRequest
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE, EXIT_OK, EXIT_RUNTIME_CRASH

__all__ = ["EXIT_BOOT_FAILURE", "EXIT_OK", "EXIT_RUNTIME_CRASH", "InferenceError", "BootError", "ModelStoreError",
           "TextError", "EngineFailure", "InvalidRequest"]


class InferenceError(Exception):
    """Base of every error raised on the inference side."""


class BootError(InferenceError):
    """The engine cannot be loaded: a package, a model file or a checksum is missing or wrong."""


class ModelStoreError(BootError):
    """Pulling or verifying a model failed (registry unreachable, checksum mismatch, unknown model)."""


class TextError(InferenceError, InvalidRequest):
    """The request's text or options cannot be synthesised; the client's mistake (HTTP 400). Callers catch its
    base, ``InvalidRequest``, which the shared vocabulary raises for a bad format, emotion or field."""


class EngineFailure(InferenceError):
    """The engine failed at run time or produced invalid audio; not the client's fault (HTTP 5xx, retryable)."""
