"""Model store and model-format fixes for the inference side.

- ``catalog``: the models tts-ops can fetch, with pinned versions and checksums.
- ``store``: pull / verify / list models on disk (CLI `tts-ops models`, workers at boot, `tts-ops serve` at start).
- ``sources``: how files are fetched (pip download of a wheel, ModelScope, a local directory); used by ``store``.
- ``status``: a model's status, a verify result, the ``models list`` table; returned by ``store``.
- ``manifest``: the ``manifest.json`` recorded in each model directory; used by ``store``.
- ``tflite_patch``: in-memory rewrite of the FastSpeech2 flatbuffer so LiteRT can run it (engine at load time).

Only the light modules are re-exported: ``tflite_patch`` imports LiteRT's schema and is imported by the engine
directly.
"""

from inference.models.catalog import DEFAULT_MODEL, MODELS, ModelFile, ModelSpec, SourceKind, spec_for
from inference.models.status import ModelStatus, VerifyResult, format_list
from inference.models.store import ModelStore, default_store_dir

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelFile",
    "ModelSpec",
    "ModelStatus",
    "ModelStore",
    "SourceKind",
    "VerifyResult",
    "default_store_dir",
    "format_list",
    "spec_for",
]
