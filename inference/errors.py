"""Error hierarchy and exit codes of the inference side (worker process and in-process synthesis).

Three families matter to callers:
- ``BootError``: the engine cannot start (missing package, missing or corrupt model). A worker exits with
  ``EXIT_BOOT_FAILURE`` so the supervisor can halt restarts instead of spinning.
- ``TextError``: the client's input cannot be synthesised (normalises to nothing, unknown voice...). Maps to 4xx.
- ``EngineFailure``: the engine ran but produced something unusable (NaN, silence, clipping) or raised. Maps to
  5xx and is retryable on another worker.
"""

EXIT_OK = 0
EXIT_RUNTIME_CRASH = 1
# Same value as gunicorn's WORKER_BOOT_ERROR: "do not restart me in a tight loop, the deployment is broken".
EXIT_BOOT_FAILURE = 3


class InferenceError(Exception):
    """Base of every error raised on the inference side."""


class BootError(InferenceError):
    """The engine cannot be loaded: a package, a model file or a checksum is missing or wrong."""


class ModelStoreError(BootError):
    """Pulling or verifying a model failed (registry unreachable, checksum mismatch, unknown model)."""


class TextError(InferenceError, ValueError):
    """The request's text or options cannot be synthesised; the client's mistake (HTTP 400)."""


class EngineFailure(InferenceError):
    """The engine failed at run time or produced invalid audio; not the client's fault (HTTP 5xx, retryable)."""
