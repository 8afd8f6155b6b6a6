"""Result cache of synthesized audio: the facade the HTTP front end uses (``ResultCache``), plus ``cache_key``.

Runs in the daemon process on its event loop. The cache is a best-effort side channel: a cache problem never
fails or noticeably delays a request. Backends (Redis with a circuit breaker, or an in-process byte-bounded LRU)
turn every failure into a miss or a skipped store and a counter; this facade adds a last safety net, the size
limit, the counters and the in-process single flight that makes concurrent identical requests share one
synthesis. Typical use in a handler::

    key = cache_key(cfg.cache.prefix, engine=..., model_version=..., voice=..., emotion=..., speed=...,
                    fmt=..., sample_rate=..., text=text)
    audio, status, role = await cache.get_or_create(key, synthesize)  # status "HIT"/"MISS" (X-Cache header)

``role`` says whether this caller's request did the synthesis ("leader"): only the leader's synthesis is counted
as engine work (metrics, synthesis.log); a "follower" shared it (still a MISS for the client), "late" and "hit"
answers came from a finished result. Streamed answers share their synthesis the same way with ``join_stream``
(see ``singleflight.StreamFlights``).

Counting: ``hits``/``misses`` count lookups (``get`` and ``get_or_create``); a request that waited for another
request's synthesis (whole or streamed) is a MISS and also counts in ``single_flight_shared``; one that arrived
while the finished result was being stored is a HIT. ``bypassed`` counts Redis operations skipped because the
breaker was open.

With Redis and ``cache.fleet_single_flight`` the in-process leader of a key also coordinates with the other
instances through a lease in Redis (``fleet.RedisFleet``): a result another instance synthesized while this one
waited is a MISS with role "follower" for every local caller (nothing was synthesized here), and is not stored
again. The fleet's outcome counters (``fleet.FLEET_COUNTERS``) are part of ``stats()``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tts_ops.cache.audio import CachedAudio, encode_header, envelope_size
from tts_ops.cache.breaker import BreakerState, CircuitBreaker
from tts_ops.cache.fleet import FleetFlight, Lease, Led, LocalFleet, RedisFleet
from tts_ops.cache.keys import cache_key, normalize_text
from tts_ops.cache.memory import MemoryBackend
from tts_ops.cache.redis_backend import RedisBackend
from tts_ops.cache.singleflight import SharedCallCancelled, SingleFlight, StreamFlights, StreamReader
from tts_ops.cache.urls import parse_sentinel_url, validate_url
from tts_ops.config.render import redact_url  # the config's own redaction, so logs match dump_effective
from tts_ops.config.schema import CacheConfig

__all__ = ["CacheBackend", "CachedAudio", "ResultCache", "cache_key", "normalize_text", "parse_sentinel_url",
           "SharedCallCancelled", "BreakerState", "COUNTERS", "StreamReader"]

log = logging.getLogger("tts_ops.cache")

COUNTERS = ("hits", "misses", "errors", "stores", "skipped_too_big", "bypassed", "skipped_busy",
            "single_flight_shared", "evictions", "expired")


class CacheBackend(Protocol):
    """What ``ResultCache`` needs of a backend (``MemoryBackend``, ``RedisBackend``): failures become misses."""

    counters: dict[str, int]
    @property
    def breaker(self) -> CircuitBreaker | None:
        """The circuit breaker of a remote backend (Redis); None for local ones."""

    @property
    def name(self) -> str: ...
    @property
    def up(self) -> bool: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def get(self, key: str) -> CachedAudio | None: ...
    async def put(self, key: str, audio: CachedAudio, header: bytes) -> bool: ...
    async def purge(self) -> int: ...
    def stats(self) -> dict[str, Any]: ...


class _DisabledBackend:
    """``cache.enabled: false`` (or an LRU budget of 0 without Redis): always a miss, never stores."""

    name = "disabled"
    up = False
    breaker = None

    def __init__(self, counters: dict[str, int]) -> None:
        self.counters = counters

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def get(self, key: str) -> None:
        return None

    async def put(self, key: str, audio: CachedAudio, header: bytes) -> bool:
        return False

    async def purge(self) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {}


class ResultCache:
    """Facade over one backend; no method raises because of the cache (factory errors do propagate)."""

    def __init__(self, backend: CacheBackend, *, max_item_bytes: int, ttl_s: int, url: str | None = None,
                 fleet: FleetFlight | None = None) -> None:
        self._backend = backend
        self._fleet: FleetFlight = fleet if fleet is not None else LocalFleet()
        self.counters: dict[str, int] = backend.counters
        self.max_item_bytes = max_item_bytes
        self.ttl_s = ttl_s
        self.url = url                     # redacted, for stats and logs only
        self._flights: SingleFlight[Led] = SingleFlight()
        self._streams: StreamFlights[Any, CachedAudio] = StreamFlights()
        self._warned_unencodable = False

    @classmethod
    def from_config(cls, cfg: CacheConfig) -> ResultCache:
        """Build from the ``cache`` config section; no I/O, call ``start()`` next.

        Raises ConfigError only for a URL that can never work (bad Sentinel host list...); an unreachable
        Redis is not an error here nor in ``start()``.
        """
        counters = dict.fromkeys(COUNTERS, 0)
        if not cfg.enabled or (not cfg.redis_url and cfg.memory_max_bytes == 0):
            return cls(_DisabledBackend(counters), max_item_bytes=cfg.max_item_bytes, ttl_s=cfg.ttl_s)
        backend: CacheBackend
        if not cfg.redis_url:
            backend = MemoryBackend(cfg.memory_max_bytes, cfg.ttl_s, counters)
            return cls(backend, max_item_bytes=cfg.max_item_bytes, ttl_s=cfg.ttl_s)
        validate_url(cfg.redis_url, cfg.sentinel_master)
        url = redact_url(cfg.redis_url)
        breaker = CircuitBreaker(cfg.breaker_failures, cfg.breaker_reset_s)
        redis = RedisBackend(cfg.redis_url, cfg.sentinel_master, prefix=cfg.prefix, ttl_s=cfg.ttl_s,
                             connect_timeout_s=cfg.connect_timeout_s, op_timeout_s=cfg.op_timeout_s,
                             breaker=breaker, counters=counters, log_url=url,
                             reserve_pubsub=cfg.fleet_single_flight)
        fleet = (RedisFleet(redis, prefix=cfg.prefix, lease_ttl_s=cfg.lease_ttl_s, wait_s=cfg.fleet_wait_s)
                 if cfg.fleet_single_flight else None)
        return cls(redis, max_item_bytes=cfg.max_item_bytes, ttl_s=cfg.ttl_s, url=url, fleet=fleet)

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def up(self) -> bool:
        """Whether the backend is usable now: memory always, Redis while its breaker is closed, disabled never."""
        return bool(self._backend.up)

    async def start(self) -> None:
        try:
            await self._backend.start()
        except Exception:  # the daemon starts without its cache rather than not at all
            log.exception("cache: backend %s failed to start; serving without cache", self.backend)

    async def close(self) -> None:
        try:
            await self._fleet.close()  # first: its releases and subscription use the backend's client
            await self._backend.close()
        except Exception as exc:
            log.debug("cache: closing the backend failed: %r", exc)

    async def get(self, key: str) -> CachedAudio | None:
        if self.backend == "disabled":
            return None
        audio = await self._lookup(key)
        self.counters["hits" if audio is not None else "misses"] += 1
        return audio

    async def put(self, key: str, audio: CachedAudio) -> bool:
        """Store ``audio`` under ``key`` with the configured TTL; False when skipped (disabled, too big, down)."""
        if self.backend == "disabled":
            return False
        try:
            header = encode_header(audio)
        except Exception as exc:  # e.g. meta not JSON-able: a caller bug, reported once
            self.counters["errors"] += 1
            if not self._warned_unencodable:
                self._warned_unencodable = True
                log.warning("cache: result not cacheable (%s: %s); further cases counted in errors only",
                            type(exc).__name__, exc)
            return False
        if envelope_size(header, audio) > self.max_item_bytes:
            self.counters["skipped_too_big"] += 1
            return False
        try:
            stored = await self._backend.put(key, audio, header)
        except Exception as exc:  # backends do not raise; this is the safety net
            self.counters["errors"] += 1
            log.debug("cache: put failed: %r", exc)
            return False
        if stored:
            self.counters["stores"] += 1
        return bool(stored)

    async def get_or_create(self, key: str, factory: Callable[[], Awaitable[CachedAudio]]
                            ) -> tuple[CachedAudio, str, str]:
        """(audio, status, role): the cached audio ("HIT", role "hit"), or ``factory()``'s result stored for next
        time ("MISS"; role "leader" for the caller whose call ran it, "follower" for one that shared it).

        Concurrent calls for one key run ``factory`` once; all of them get its result or its exception (nothing
        is stored then). A caller cancelled while waiting does not cancel the factory unless it was the last
        one waiting. With the cache disabled this is just ``await factory()``: no sharing, no counting.
        """
        if self.backend == "disabled":
            return await factory(), "MISS", "leader"
        if key not in self._flights:
            cached = await self._lookup(key)
            if cached is not None:
                self.counters["hits"] += 1
                return cached, "HIT", "hit"
        # Re-checked inside run(): another request may have started the same synthesis during the lookup.
        led, role = await self._flights.run(key, lambda: self._fleet.lead(key, factory),
                                            after=lambda led: self._store(key, led))
        audio = led.audio
        if led.remote and role == "leader":
            role = "follower"  # another instance synthesized it: nobody here accounts for engine work
        if role != "leader":
            self.counters["single_flight_shared"] += 1
        status = "HIT" if role == "late" else "MISS"
        self.counters["hits" if status == "HIT" else "misses"] += 1
        return audio, status, role

    def join_stream(self, key: str, produce: Callable[[Callable[[Any], None]], Awaitable[CachedAudio]]
                    ) -> StreamReader[Any, CachedAudio]:
        """A reader of the streamed synthesis of ``key`` (``StreamFlights.join``): concurrent identical streams
        share one production, whose result is stored when it completes. The caller has already looked ``key``
        up. With the cache disabled every stream is its own production, as with ``get_or_create``."""
        if self.backend == "disabled":
            return StreamFlights[Any, CachedAudio]().join(key, produce)
        # Only the call that starts the production runs these two, so the lease cell is that production's.
        held: list[Lease | None] = [None]

        async def leased(emit: Callable[[Any], None]) -> CachedAudio:
            held[0] = await self._fleet.claim(key)  # never waits: see the fleet module on streams
            try:
                return await produce(emit)
            except BaseException:
                self._fleet.abandon(held[0])
                raise

        async def store(value: CachedAudio) -> None:
            try:
                await self.put(key, value)
            finally:
                await self._fleet.finish(held[0])

        reader = self._streams.join(key, leased, after=store)
        if reader.role != "leader":
            self.counters["single_flight_shared"] += 1
        return reader

    async def purge(self) -> int:
        """Delete our cached audio (Redis: SCAN MATCH <prefix>audio:* + UNLINK, never FLUSHDB); count deleted."""
        try:
            count = await self._backend.purge()
        except Exception as exc:
            log.warning("cache: purge failed: %r", exc)
            return 0
        log.info("cache: purged %d item(s) from %s", count, self.backend)
        return count

    def stats(self) -> dict[str, Any]:
        lookups = self.counters["hits"] + self.counters["misses"]
        breaker = self._backend.breaker
        data: dict[str, Any] = {
            "backend": self.backend,
            "url": self.url,
            "up": self.up,
            "breaker": breaker.state.value if breaker is not None else None,
            "outages": breaker.opened_count if breaker is not None else 0,
            **self.counters,
            "hit_ratio": round(self.counters["hits"] / lookups, 4) if lookups else 0.0,
            "single_flight_in_progress": len(self._flights) + len(self._streams),
            "ttl_s": self.ttl_s,
            "max_item_bytes": self.max_item_bytes,
            **self._fleet.stats(),
        }
        data.update(self._backend.stats())
        return data

    async def _store(self, key: str, led: Led) -> None:
        """The in-process flight's last step: store what was synthesized here, then end its fleet lease (after the
        store, so the instances woken by it find the audio)."""
        if led.remote:
            return  # read from the cache: already there
        try:
            await self.put(key, led.audio)
        finally:
            await self._fleet.finish(led.lease)

    async def _lookup(self, key: str) -> CachedAudio | None:
        try:
            return await self._backend.get(key)
        except Exception as exc:  # backends do not raise; this is the safety net
            self.counters["errors"] += 1
            log.debug("cache: get failed: %r", exc)
            return None

