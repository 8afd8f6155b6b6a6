"""The cached value: ``CachedAudio`` and its stored binary envelope (shared by the memory and Redis backends).

Runs in the daemon process on its event loop; encoding is one small ``json.dumps`` plus one concatenation, so
it stays on the loop. Envelope layout, one Redis string per item (a single ``SET EX`` stores value and TTL
atomically, which a hash cannot)::

    4 bytes  big-endian length H of the header
    H bytes  UTF-8 JSON header {"v": 1, "content_type", "sample_rate", "duration_s", "meta"}
    rest     the audio bytes, untouched

Both backends validate the header at ``put`` time, so a non-JSON-able ``meta`` is refused the same way with
the in-process LRU as with Redis, instead of only failing in production.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CachedAudio", "EnvelopeError", "encode_header", "decode_header", "envelope_size",
           "pack", "unpack"]

ENVELOPE_VERSION = 1
_LEN = struct.Struct(">I")
# Far above any real header (a few hundred bytes; timings add ~80 bytes per character of text): a larger length
# means the value is not ours.
_MAX_HEADER = 8 * 1024 * 1024


@dataclass(frozen=True)
class CachedAudio:
    """Synthesized audio as cached: the encoded bytes plus what the front end needs to answer without a worker.

    ``meta`` is free-form JSON-able provenance (engine, model_version, worker, synthesis_s, ...). Values handed
    out by the cache carry a fresh ``meta`` dict, so a caller setting or removing its keys cannot corrupt the cache;
    the values in it (the ``headers`` dict, the ``timings``) may be shared between hits: read them, never mutate.
    """

    data: bytes
    content_type: str
    sample_rate: int
    duration_s: float
    meta: dict[str, Any] = field(default_factory=dict)


class EnvelopeError(ValueError):
    """A stored value is not a valid envelope (foreign writer, older format, truncation)."""


def encode_header(audio: CachedAudio) -> bytes:
    """The JSON header of ``audio``; raises TypeError/ValueError when ``meta`` is not JSON-able."""
    if not isinstance(audio.data, (bytes, bytearray, memoryview)):
        raise TypeError(f"CachedAudio.data must be bytes, got {type(audio.data).__name__}")
    header = {"v": ENVELOPE_VERSION, "content_type": audio.content_type, "sample_rate": int(audio.sample_rate),
              "duration_s": float(audio.duration_s), "meta": audio.meta}
    return json.dumps(header, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_header(raw: bytes | memoryview, data: bytes) -> CachedAudio:
    try:
        header = json.loads(bytes(raw))
        if header.get("v") != ENVELOPE_VERSION:
            raise EnvelopeError(f"envelope version {header.get('v')!r}, expected {ENVELOPE_VERSION}")
        return CachedAudio(data=data, content_type=str(header["content_type"]),
                           sample_rate=int(header["sample_rate"]), duration_s=float(header["duration_s"]),
                           meta=dict(header.get("meta") or {}))
    except EnvelopeError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise EnvelopeError(f"bad envelope header: {exc}") from None


def envelope_size(header: bytes, audio: CachedAudio) -> int:
    """Bytes the item occupies once packed: what ``max_item_bytes`` limits."""
    return _LEN.size + len(header) + len(audio.data)


def pack(header: bytes, audio: CachedAudio) -> bytes:
    return b"".join((_LEN.pack(len(header)), header, audio.data))


def unpack(value: bytes) -> CachedAudio:
    if len(value) < _LEN.size:
        raise EnvelopeError(f"value of {len(value)} bytes is shorter than the envelope length field")
    (size,) = _LEN.unpack_from(value)
    end = _LEN.size + size
    if size > _MAX_HEADER or end > len(value):
        raise EnvelopeError(f"header length {size} does not fit a value of {len(value)} bytes")
    view = memoryview(value)
    # One copy of the audio bytes (bytes slicing); the header is parsed from a view without copying.
    return decode_header(view[_LEN.size:end], value[end:])
