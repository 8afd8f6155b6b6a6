"""Redis backend of the result cache: GET / SET EX / SCAN+UNLINK behind a circuit breaker, never raising.

Runs in the daemon process on its event loop, using ``redis.asyncio`` (non-blocking sockets; connection set-up
in ``tts_ops.cache.urls``). The cache is a side channel: every Redis problem - refused or timed-out connection,
READONLY replica, OOM, a redis-py bug - becomes a miss or a skipped store plus a counter, never an exception
for the request. Each operation gets a hard deadline (connect + operation timeout) on top of redis-py's socket
timeouts, so no request waits on Redis longer than that. Failures feed the breaker; its transitions are logged
here, once per outage (WARNING "unavailable") and once on recovery (INFO "recovered"); single failures only at
DEBUG, so an outage under load does not flood the journal.

Concurrency is capped by a semaphore equal to the pool size: waiting for a free connection under a burst is
local saturation, not a Redis failure, so it is counted as ``skipped_busy`` and never trips the breaker. With the
fleet single flight (``tts_ops.cache.fleet``) one pooled connection is reserved for its pub/sub subscription, so
the semaphore admits one operation fewer and the pool is never asked for a connection it does not have.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from tts_ops.cache.audio import CachedAudio, EnvelopeError, pack, unpack
from tts_ops.cache.breaker import BreakerState, CircuitBreaker, Transition
from tts_ops.cache.urls import MAX_CONNECTIONS, build_client

__all__ = ["RedisBackend", "glob_escape"]


if sys.version_info >= (3, 11):
    from asyncio import timeout
else:  # Python 3.10: aiohttp already depends on async-timeout there (same semantics, asyncio.TimeoutError)
    from async_timeout import timeout

log = logging.getLogger("tts_ops.cache")

_SKIPPED = object()   # not attempted (breaker open, not started, pool saturated)
_FAILED = object()    # attempted and failed (counted, fed to the breaker)
SCAN_COUNT = 1000
# Exceptions expected from a sick Redis; anything else is a bug somewhere and is logged with its traceback.
_EXPECTED = (RedisError, OSError, TimeoutError)


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis MATCH pattern (a prefix may contain * ? [ ] or backslash)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class RedisBackend:
    name = "redis"

    def __init__(self, url: str, sentinel_master: str | None, *, prefix: str, ttl_s: int, connect_timeout_s: float,
                 op_timeout_s: float, breaker: CircuitBreaker, counters: dict[str, int], log_url: str,
                 max_connections: int = MAX_CONNECTIONS, reserve_pubsub: bool = False) -> None:
        self._url = url
        self._sentinel_master = sentinel_master
        self.log_url = log_url
        self.ttl_s = int(ttl_s)
        self.connect_timeout_s = connect_timeout_s
        self.op_timeout_s = op_timeout_s
        self.deadline_s = connect_timeout_s + op_timeout_s
        self.breaker = breaker
        self.counters = counters
        self.max_connections = max_connections
        # Only our audio keys, never the whole prefix: other subsystems may one day share the prefix.
        self.purge_pattern = glob_escape(prefix) + "audio:*"
        self._client: Redis | None = None
        self._sentinel: Any = None
        self._slots = asyncio.Semaphore(max_connections - 1 if reserve_pubsub else max_connections)
        self._in_flight = 0
        self._background: set[asyncio.Task] = set()

    @property
    def up(self) -> bool:
        return self._client is not None and self.breaker.state is BreakerState.CLOSED

    async def start(self) -> None:
        self._client, self._sentinel = build_client(
            self._url, self._sentinel_master, connect_timeout_s=self.connect_timeout_s,
            op_timeout_s=self.op_timeout_s, max_connections=self.max_connections)
        try:
            async with timeout(self.deadline_s):
                await self._client.ping()
        except Exception as exc:  # a dead cache must not stop the daemon from starting
            self.counters["errors"] += 1
            if self.breaker.trip() is Transition.OPENED:
                self._log_unavailable(exc, at_start=True)
        else:
            log.info("cache: using Redis at %s (ttl %d s)", self.log_url, self.ttl_s)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        client, sentinel, self._client, self._sentinel = self._client, self._sentinel, None, None
        for closing in ([client] if client else []) + list(getattr(sentinel, "sentinels", [])):
            try:
                await closing.aclose()
            except Exception as exc:  # shutting down; nothing useful to do with it
                log.debug("cache: closing a Redis client failed: %r", exc)

    async def get(self, key: str) -> CachedAudio | None:
        raw = await self._call(lambda client: client.get(key))
        if raw is _SKIPPED or raw is _FAILED or raw is None:
            return None
        try:
            return unpack(raw)
        except EnvelopeError as exc:
            # Redis worked, the value is not ours (other writer, older format): a miss, not a breaker failure;
            # the next put overwrites it.
            self.counters["errors"] += 1
            log.debug("cache: unreadable value at %s: %s", key, exc)
            return None

    async def put(self, key: str, audio: CachedAudio, header: bytes) -> bool:
        value = pack(header, audio)
        result = await self._call(lambda client: client.set(key, value, ex=self.ttl_s))
        return result is not _SKIPPED and result is not _FAILED

    async def purge(self) -> int:
        deleted, cursor = 0, 0
        while True:
            page = await self._call(  # B023: each lambda is awaited before the loop rebinds what it reads
                lambda client: client.scan(cursor, match=self.purge_pattern, count=SCAN_COUNT))  # noqa: B023
            if page is _SKIPPED or page is _FAILED:
                break
            cursor, keys = page
            if keys:
                # UNLINK frees the values in a Redis background thread: no multi-ms stall on big audio items.
                count = await self._call(lambda client: client.unlink(*keys))  # noqa: B023
                if count is _SKIPPED or count is _FAILED:
                    break
                deleted += int(count)
            if cursor == 0:
                return deleted
        log.warning("cache: purge of %s stopped after %d keys: Redis unavailable", self.log_url, deleted)
        return deleted

    def stats(self) -> dict[str, Any]:
        return {"in_flight": self._in_flight}

    async def run(self, op: Callable[[Redis], Awaitable[Any]]) -> tuple[bool, Any]:
        """``op`` under the breaker, deadline and concurrency cap of every cache operation: (True, reply), or
        (False, None) when skipped or failed (counted and fed to the breaker). Never raises (cancellation aside)."""
        result = await self._call(op)
        if result is _SKIPPED or result is _FAILED:
            return False, None
        return True, result

    def pubsub(self) -> PubSub | None:
        """A pub/sub object of the pooled client (the caller closes it); None before ``start()``."""
        return None if self._client is None else self._client.pubsub()

    async def _call(self, op: Callable[[Redis], Awaitable[Any]]) -> Any:
        client = self._client
        if client is None or self.breaker.state is BreakerState.OPEN:
            self.counters["bypassed"] += 1
            return _SKIPPED
        if self._slots.locked():
            try:
                async with timeout(self.op_timeout_s):
                    await self._slots.acquire()
            except asyncio.TimeoutError:
                self.counters["skipped_busy"] += 1
                return _SKIPPED
        else:
            await self._slots.acquire()  # free slot: returns without suspending
        self._in_flight += 1
        try:
            if not self.breaker.allow():
                # HALF_OPEN with the probe already out: wait for its verdict instead of piling on.
                self.counters["bypassed"] += 1
                return _SKIPPED
            try:
                async with timeout(self.deadline_s):
                    result = await op(client)
            except asyncio.CancelledError:
                # Our caller went away (client disconnected): no verdict on Redis, let someone else probe.
                self.breaker.release_probe()
                raise
            except Exception as exc:  # the cache never raises to the request
                self._failed(exc)
                return _FAILED
            self._succeeded()
            return result
        finally:
            self._in_flight -= 1
            self._slots.release()

    def _failed(self, exc: BaseException) -> None:
        self.counters["errors"] += 1
        log.debug("cache: Redis operation failed: %s: %s", type(exc).__name__, exc)
        if self.breaker.record_failure() is Transition.OPENED:
            self._log_unavailable(exc)
            # Idle pooled sockets are probably dead too: drop them now (nobody uses Redis while the breaker is
            # open) so the probe and the first requests after recovery start on fresh connections.
            task = asyncio.create_task(self._drop_idle_connections())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _drop_idle_connections(self) -> None:
        client = self._client
        try:
            if client is not None:
                async with timeout(self.deadline_s):
                    await client.connection_pool.disconnect(inuse_connections=False)
        except Exception as exc:  # best effort; a dead socket also fails (and is dropped) on use
            log.debug("cache: dropping idle Redis connections failed: %s: %s", type(exc).__name__, exc)

    def _succeeded(self) -> None:
        outage_s = self.breaker.outage_s
        if self.breaker.record_success() is Transition.RECOVERED:
            log.info("cache: Redis at %s recovered after %.1f s; cache back in use", self.log_url, outage_s)

    def _log_unavailable(self, exc: BaseException, at_start: bool = False) -> None:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("cache: Redis at %s unavailable%s (%s); serving without cache, retrying every %.1f s",
                    self.log_url, " at start" if at_start else "", reason, self.breaker.reset_s,
                    exc_info=not isinstance(exc, _EXPECTED))
