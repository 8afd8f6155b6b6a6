"""Fleet single flight: instances sharing one Redis synthesize a key once, not once per instance.

Runs in the daemon process on its event loop, beside the in-process ``SingleFlight``: only the in-process leader
of a key comes here, so at most one caller per instance talks to Redis about a key. Process of one lead:

1. ``SET <prefix>lease:<key> <token> NX PX lease_ttl`` with a token unique to this lead. Taken: synthesize here,
   renewing the lease every ttl/3 (compare-and-``PEXPIRE`` script) so a slow synthesis keeps it; when done the
   cache stores the audio, then ``finish`` drops the lease (compare-and-``DEL`` script: never another instance's
   lease) and publishes on ``<prefix>fleet:done:<key>``.
2. Held by another instance: wait for its result. One pattern subscription per process (its own pooled
   connection, started on the first wait) wakes the waiter on the holder's message; every ``POLL_S`` the waiter
   also looks by itself, so a lost message or a dead subscription costs at most one poll. Each look is: the
   audio in the cache (done: "waited hit"), else ``SET NX`` again - it succeeds once the holder released without
   a result (its synthesis failed, the audio was too big to cache) or its lease lapsed (instance killed: at most
   lease_ttl + one poll), and the waiter synthesizes here under its own lease. After ``fleet_wait_s`` the waiter
   synthesizes here without a lease.
3. Redis unavailable (breaker open or half-open, a command failing): synthesize here at once, like the cache
   itself the lease never fails or stalls a request beyond the backend's operation deadline.

Streams (``claim``) take a free lease but never wait for one. A streamed follower on another instance would get
its first byte only when the whole result is stored (the point of streaming is the early first byte), and
relaying chunks between instances is a different feature; so a stream always produces here at once. Taking the
lease when it is free still lets whole-text requests on other instances wait for the stream's stored result
instead of synthesizing the same text again, for one Redis round trip before the stream starts.

``LocalFleet`` is the no-op used with the in-process cache or ``fleet_single_flight: false``: the memory backend
needs nothing. Counters (in ``ResultCache.stats()``): see ``FLEET_COUNTERS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from tts_ops.cache.audio import CachedAudio
from tts_ops.cache.redis_backend import glob_escape

__all__ = ["FLEET_COUNTERS", "FleetFlight", "FleetRedis", "Lease", "Led", "LocalFleet", "RedisFleet"]

log = logging.getLogger("tts_ops.cache")

#: fleet_leases_taken: leases this instance took (first try, after waiting, or for a stream);
#: fleet_waited_hits: waits answered by another instance's stored result (no synthesis here);
#: fleet_waited_synthesized: waits that ended in a synthesis here (holder released without a result, its lease
#: lapsed, or fleet_wait_s passed); fleet_lease_errors: leads that skipped the lease because Redis was unavailable;
#: fleet_leases_lost: leases found gone or taken over while their synthesis still ran (renewal came too late).
FLEET_COUNTERS = ("fleet_leases_taken", "fleet_waited_hits", "fleet_waited_synthesized", "fleet_lease_errors",
                  "fleet_leases_lost")
POLL_S = 0.2               # own look at the cache and the lease while waiting, whatever pub/sub says
LISTEN_RETRY_S = 1.0       # a failed subscription is retried no sooner, so a dead Redis is not hammered
_LISTEN_BLOCK_S = 1.0      # one read of the subscription; bounds how long close() waits for the listener

# Compare-and-act scripts: only the holder of the token may renew or drop the lease.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class FleetRedis(Protocol):
    """What the fleet needs of the Redis backend (``RedisBackend``): breaker-guarded commands that never raise."""

    @property
    def up(self) -> bool: ...
    async def get(self, key: str) -> CachedAudio | None: ...
    async def run(self, op: Callable[[Redis], Awaitable[Any]]) -> tuple[bool, Any]:
        """(True, reply), or (False, None) when skipped (breaker open) or failed (counted, fed to the breaker)."""
    def pubsub(self) -> PubSub | None:
        """A pub/sub object on a connection reserved for it; None before ``start()``."""


@dataclass(eq=False)
class Lease:
    """One lease held (or tried) by this instance for one key."""

    name: str        # the lease key in Redis
    channel: str     # where its end is published
    token: str
    ttl_ms: int
    renewer: asyncio.Task | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Led:
    """What the in-process leader got: audio synthesized here (under ``lease`` when one was held), or audio another
    instance stored while this one waited (``remote``: nothing to store or release)."""

    audio: CachedAudio
    lease: Lease | None = None
    remote: bool = False


class FleetFlight(Protocol):
    """The fleet side of single flight, as ``ResultCache`` uses it."""

    async def lead(self, key: str, factory: Callable[[], Awaitable[CachedAudio]]) -> Led: ...
    async def claim(self, key: str) -> Lease | None: ...
    async def finish(self, lease: Lease | None) -> None: ...
    def abandon(self, lease: Lease | None) -> None: ...
    async def close(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class LocalFleet:
    """No fleet: each instance synthesizes for itself (in-process cache, or ``fleet_single_flight: false``)."""

    async def lead(self, key: str, factory: Callable[[], Awaitable[CachedAudio]]) -> Led:
        return Led(await factory())

    async def claim(self, key: str) -> Lease | None:
        return None

    async def finish(self, lease: Lease | None) -> None:
        pass

    def abandon(self, lease: Lease | None) -> None:
        pass

    async def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {"fleet_single_flight": False, **dict.fromkeys(FLEET_COUNTERS, 0)}


class _Listener:
    """The one pattern subscription of this process: wakes the waiters of a channel when its message arrives."""

    def __init__(self, redis: FleetRedis, pattern: str) -> None:
        self._redis = redis
        self._pattern = pattern
        self._events: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task | None = None
        self._failed_at: float | None = None

    @contextlib.contextmanager
    def watch(self, channel: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._events.setdefault(channel, set()).add(event)
        self._ensure_running()
        try:
            yield event
        finally:
            waiting = self._events.get(channel)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._events[channel]

    def _ensure_running(self) -> None:
        if self._task is not None and not self._task.done():
            return
        now = asyncio.get_running_loop().time()
        if self._failed_at is not None and now - self._failed_at < LISTEN_RETRY_S:
            return  # waiters poll meanwhile
        self._task = asyncio.create_task(self._listen(), name="cache-fleet-listener")

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        if pubsub is None:
            return
        try:
            await pubsub.psubscribe(self._pattern)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_LISTEN_BLOCK_S)
                if message is not None and message.get("type") == "pmessage":
                    channel = message["channel"]
                    self._wake(channel.decode() if isinstance(channel, bytes) else str(channel))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # waiters fall back to polling; retried on a later wait
            self._failed_at = asyncio.get_running_loop().time()
            log.debug("cache: fleet subscription failed: %s: %s", type(exc).__name__, exc)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _wake(self, channel: str) -> None:
        for event in self._events.get(channel, ()):
            event.set()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class RedisFleet:
    """Leases in the shared Redis (module docstring); every Redis call goes through the backend's breaker."""

    def __init__(self, redis: FleetRedis, *, prefix: str, lease_ttl_s: float, wait_s: float,
                 poll_s: float = POLL_S) -> None:
        self._redis = redis
        self._prefix = prefix
        self.ttl_ms = max(1, int(lease_ttl_s * 1000))
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.counters = dict.fromkeys(FLEET_COUNTERS, 0)
        self._listener = _Listener(redis, glob_escape(prefix) + "fleet:done:*")
        self._background: set[asyncio.Task] = set()

    def _lease(self, key: str) -> Lease:
        # Outside "<prefix>audio:*": a cache purge must not drop the leases of syntheses in progress.
        name = key.removeprefix(self._prefix)
        return Lease(f"{self._prefix}lease:{name}", f"{self._prefix}fleet:done:{name}", secrets.token_hex(16),
                     self.ttl_ms)

    async def lead(self, key: str, factory: Callable[[], Awaitable[CachedAudio]]) -> Led:
        """The audio of ``key``: synthesized here under a lease, found after another instance's synthesis, or
        synthesized here without a lease when Redis is unavailable or the wait is over."""
        lease = self._lease(key)
        taken = await self._acquire(lease) if self._redis.up else None
        if taken is None:
            self.counters["fleet_lease_errors"] += 1
            return Led(await factory())
        if taken:
            return await self._synthesize(lease, factory)
        outcome = await self._wait(key, lease)
        if isinstance(outcome, CachedAudio):
            self.counters["fleet_waited_hits"] += 1
            return Led(outcome, remote=True)
        self.counters["fleet_waited_synthesized"] += 1
        if outcome == "leased":
            return await self._synthesize(lease, factory)
        if outcome == "error":
            self.counters["fleet_lease_errors"] += 1
        return Led(await factory())

    async def claim(self, key: str) -> Lease | None:
        """The lease of ``key`` if it is free (a stream: never waits), renewed until ``finish``/``abandon``."""
        lease = self._lease(key)
        taken = await self._acquire(lease) if self._redis.up else None
        if taken is None:
            self.counters["fleet_lease_errors"] += 1
        if not taken:
            return None
        self._start_renewing(lease)
        return lease

    async def finish(self, lease: Lease | None) -> None:
        """Drop ``lease`` and tell the waiters (after the result was stored, or not, when it could not be)."""
        if lease is None:
            return
        if lease.renewer is not None:
            lease.renewer.cancel()
        await self._redis.run(lambda client: client.eval(_RELEASE, 1, lease.name, lease.token))
        await self._redis.run(lambda client: client.publish(lease.channel, b"done"))

    def abandon(self, lease: Lease | None) -> None:
        """``finish`` in the background: for a synthesis that failed or was cancelled (awaiting in a cancelled task
        would be cut short, and the waiters should retry at once rather than at the lease's expiry)."""
        if lease is None:
            return
        if lease.renewer is not None:
            lease.renewer.cancel()
        task = asyncio.create_task(self.finish(lease), name="cache-fleet-release")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        await self._listener.close()
        if self._background:  # releases in progress: let them reach Redis, briefly
            await asyncio.wait(list(self._background), timeout=1.0)

    def stats(self) -> dict[str, Any]:
        return {"fleet_single_flight": True, **self.counters}

    async def _acquire(self, lease: Lease) -> bool | None:
        """True when taken, False when another holder has it, None when Redis did not answer."""
        ok, reply = await self._redis.run(lambda client: client.set(lease.name, lease.token, nx=True,
                                                                    px=lease.ttl_ms))
        if not ok:
            return None
        if reply:
            self.counters["fleet_leases_taken"] += 1
        return bool(reply)

    async def _synthesize(self, lease: Lease, factory: Callable[[], Awaitable[CachedAudio]]) -> Led:
        self._start_renewing(lease)
        try:
            return Led(await factory(), lease)
        except BaseException:
            self.abandon(lease)
            raise

    async def _wait(self, key: str, lease: Lease) -> CachedAudio | str:
        """Another instance holds the lease: its stored audio, or "leased" (we hold the lease now), "timeout"
        (fleet_wait_s passed) or "error" (Redis unavailable)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        with self._listener.watch(lease.channel) as done:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return "timeout"
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(done.wait(), min(self.poll_s, remaining))
                done.clear()
                if not self._redis.up:
                    return "error"
                audio = await self._redis.get(key)
                if audio is not None:
                    return audio
                taken = await self._acquire(lease)
                if taken is None:
                    return "error"
                if taken:
                    return await self._recheck(key, lease)

    async def _recheck(self, key: str, lease: Lease) -> CachedAudio | str:
        # The holder may have stored and released between our GET and our SET: one more look spares a second
        # synthesis of a result that is already there.
        try:
            audio = await self._redis.get(key)
        except BaseException:
            self.abandon(lease)
            raise
        if audio is None:
            return "leased"
        self.abandon(lease)
        return audio

    def _start_renewing(self, lease: Lease) -> None:
        lease.renewer = asyncio.create_task(self._renew(lease), name="cache-fleet-renew")

    async def _renew(self, lease: Lease) -> None:
        while True:
            await asyncio.sleep(lease.ttl_ms / 3000)
            ok, renewed = await self._redis.run(
                lambda client: client.eval(_RENEW, 1, lease.name, lease.token, lease.ttl_ms))
            if ok and not renewed:
                # Lapsed (the loop stalled past the TTL) or taken over: another instance may synthesize too; ours
                # carries on, the duplicate costs work, not correctness.
                self.counters["fleet_leases_lost"] += 1
                log.debug("cache: fleet lease %s lost while its synthesis ran", lease.name)
                return
