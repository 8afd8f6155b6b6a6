"""The shared vocabulary of tts-ops: the words both processes (the daemon and its workers) and the CLI agree on.

Imported by ``tts_ops`` (daemon, CLI) and ``inference`` (worker process, in-process synthesis). It imports only
the standard library, so importing it costs nothing and can never pull numpy, aiohttp or a model runtime into a
process that does not need them (an import-linter contract in pyproject.toml guards this).

- ``formats``: the one audio-format table (name, aliases, content type, file extension, codec).
- ``emotions``: the seven emotions, their aliases (English and Chinese) and their Chinese labels.
- ``engines``: a descriptor per engine (voices, default voice, chunking, whether it needs a pull, presets).
- ``limits``: the numeric bounds of a request (speed, sample rate, pauses) and of the pool.
- ``exit_codes``: what a worker's, the daemon's and the CLI's exit status means.
- ``headers``: the HTTP header names of the worker reply and of the public API.
- ``messages``: the typed job sent to a worker and its reply's metadata (``to_wire`` / ``from_wire``).
- ``errors``: ``InvalidRequest``, the one error the vocabulary raises (the client's mistake, naming the field).
"""

from tts_vocab.emotions import EMOTION_ALIASES, EMOTION_LABELS_ZH, EMOTIONS, normalize_emotion
from tts_vocab.engines import ENGINE_IDS, ENGINES, SAMBERT_VOICES, EngineDescriptor, engine_descriptor
from tts_vocab.errors import InvalidRequest
from tts_vocab.formats import FORMATS, AudioFormat, format_for_path, normalize_format
from tts_vocab.messages import SynthesisJob, SynthesisReply

__all__ = [
    "EMOTIONS", "EMOTION_ALIASES", "EMOTION_LABELS_ZH", "normalize_emotion",
    "ENGINES", "ENGINE_IDS", "SAMBERT_VOICES", "EngineDescriptor", "engine_descriptor",
    "InvalidRequest",
    "FORMATS", "AudioFormat", "format_for_path", "normalize_format",
    "SynthesisJob", "SynthesisReply",
]
