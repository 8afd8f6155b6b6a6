"""In-process LRU backend of the result cache, used when no Redis URL is configured.

Runs in the daemon process on its event loop. Every operation is a few dict moves with no I/O, so the async
methods never await anything and cannot block the loop; they are async only to share the Redis backend's
interface. Bounded by bytes, not item count, because items range from a few KB (one word) to megabytes (a long
paragraph as WAV). Expiry uses the monotonic clock, so wall-clock jumps neither revive nor kill entries; expired
entries are dropped when read or when LRU pressure reaches them (TTL is uniform, so they are never the reason
memory grows past the budget).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tts_ops.cache.audio import CachedAudio, decode_header

__all__ = ["MemoryBackend", "ITEM_OVERHEAD"]

# Rough per-entry cost beyond header and data (key string, dict slot, entry object), so a flood of tiny items
# cannot hold far more memory than the budget says.
ITEM_OVERHEAD = 200
# Headers up to this size are kept decoded after the first hit. A larger one carries timestamps, whose Python
# objects weigh several times their JSON and are not in the entry's cost: it is decoded on every hit instead.
DECODED_MAX_HEADER_BYTES = 2048


@dataclass(slots=True)
class _Entry:
    header: bytes
    data: bytes
    expires: float
    cost: int
    #: The header decoded by the first hit: later hits copy it instead of parsing the JSON again (a visible share
    #: of a cache hit's CPU, bench/frontend_wrk.py). It shares ``data`` with the entry, so it costs no audio bytes;
    #: only small headers are kept (DECODED_MAX_HEADER_BYTES).
    decoded: CachedAudio | None = None


class MemoryBackend:
    """Byte-bounded LRU with TTL; never raises to the caller."""

    name = "memory"
    breaker = None

    def __init__(self, max_bytes: int, ttl_s: float, counters: dict[str, int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.counters = counters
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    @property
    def up(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._clear()

    async def get(self, key: str) -> CachedAudio | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            self.counters["expired"] += 1
            return None
        self._entries.move_to_end(key)
        audio = entry.decoded or decode_header(entry.header, entry.data)
        if entry.decoded is None and len(entry.header) <= DECODED_MAX_HEADER_BYTES:
            entry.decoded = audio
        # Every caller gets its own meta dict (CachedAudio's contract); the audio bytes are immutable.
        return CachedAudio(audio.data, audio.content_type, audio.sample_rate, audio.duration_s, dict(audio.meta))

    async def put(self, key: str, audio: CachedAudio, header: bytes) -> bool:
        cost = len(header) + len(audio.data) + len(key) + ITEM_OVERHEAD
        if cost > self.max_bytes:
            self.counters["skipped_too_big"] += 1
            return False
        if key in self._entries:
            self._drop(key)
        now = self._clock()
        while self._bytes + cost > self.max_bytes and self._entries:
            old_key, old = next(iter(self._entries.items()))
            self._drop(old_key)
            self.counters["expired" if old.expires <= now else "evictions"] += 1
        self._entries[key] = _Entry(header, bytes(audio.data), now + self.ttl_s, cost)
        self._bytes += cost
        return True

    async def purge(self) -> int:
        return self._clear()

    def stats(self) -> dict[str, Any]:
        return {"items": len(self._entries), "bytes": self._bytes, "max_bytes": self.max_bytes}

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).cost

    def _clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        self._bytes = 0
        return count
