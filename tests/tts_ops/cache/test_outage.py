"""Redis outages under load: killed (connection refused) and frozen (no answer) servers never fail a call, the
breaker opens with one WARNING, calls are bypassed fast while it is open, and recovery logs one INFO."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from tts_ops.cache import CachedAudio, ResultCache, cache_key
from tts_ops.cache.breaker import Transition

from .conftest import cache_config

AUDIO = CachedAudio(b"\x01\x02" * 5000, "audio/wav", 16000, 0.3, {"engine": "fastspeech2-baker"})
OP_TIMEOUT = 0.25
RESET = 0.3


def key(i: int | str) -> str:
    return cache_key("test:", engine="fastspeech2-baker", model_version="1", voice="baker", emotion="neutral",
                     speed=1.0, fmt="wav", sample_rate=None, text=f"outage {i}")


def records(caplog, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "tts_ops.cache" and r.levelno == level and text in r.getMessage()]


class Load:
    """50 tasks doing get/put in a loop; records any exception."""

    def __init__(self, cache: ResultCache, tasks: int = 50) -> None:
        self.cache = cache
        self.errors: list[BaseException] = []
        self.calls = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._run(i)) for i in range(tasks)]

    async def _run(self, i: int) -> None:
        while not self._stop.is_set():
            try:
                if i % 2:
                    await self.cache.get(key(i % 7))
                else:
                    await self.cache.put(key(i % 7), AUDIO)
            except BaseException as exc:
                self.errors.append(exc)
                return
            self.calls += 1
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached within {timeout} s"
        await asyncio.sleep(0.01)


def count_failed_probes(cache: ResultCache, monkeypatch) -> list[Transition]:
    """Record each failed half-open probe (HALF_OPEN -> OPEN) of the Redis backend's breaker. The breaker is
    private to the backend and logs nothing on a re-open, so this wrapper is the only way to wait for probes."""
    breaker = cache._backend.breaker
    reopened: list[Transition] = []
    original = breaker.record_failure

    def record_failure() -> Transition:
        transition = original()
        if transition is Transition.REOPENED:
            reopened.append(transition)
        return transition

    monkeypatch.setattr(breaker, "record_failure", record_failure)
    return reopened


@pytest.mark.parametrize("failure", ["killed", "frozen"])
async def test_outage_under_load_and_recovery(redis_own, caplog, monkeypatch, failure):
    caplog.set_level(logging.DEBUG, logger="tts_ops.cache")
    cache = ResultCache.from_config(cache_config(redis_url=redis_own.url, op_timeout_s=OP_TIMEOUT,
                                                 connect_timeout_s=OP_TIMEOUT, breaker_reset_s=RESET))
    await cache.start()
    assert cache.up
    reopened = count_failed_probes(cache, monkeypatch)
    load = Load(cache)
    try:
        await wait_for(lambda: cache.stats()["hits"] > 0, what="hits under load")
        assert cache.stats()["errors"] == 0
        if failure == "killed":
            await asyncio.to_thread(redis_own.stop)
        else:
            redis_own.pause()
        await wait_for(lambda: not cache.up, timeout=2 * OP_TIMEOUT + 1)
        # Just opened: calls skip Redis entirely (counted as bypassed, not as failed attempts); at most one of them
        # can be the half-open probe if the reset period ran out meanwhile.
        bypassed = cache.stats()["bypassed"]
        calls = [cache.get(key(i)) for i in range(25)] + [cache.put(key(i), AUDIO) for i in range(25)]
        assert set(await asyncio.gather(*calls)) == {None, False}
        assert cache.stats()["bypassed"] - bypassed >= 49
        # Several failed half-open probes (each RESET apart): still one WARNING, checked after the load stops.
        await wait_for(lambda: len(reopened) >= 2, timeout=5 * (RESET + 2 * OP_TIMEOUT), what="2 failed probes")
        assert not cache.up and cache.stats()["bypassed"] > 0
        if failure == "killed":
            await asyncio.to_thread(redis_own.start)
        else:
            redis_own.resume()
        await wait_for(lambda: cache.up, timeout=RESET + 2 * OP_TIMEOUT + 2, what="recovery")
        # The load goes on through the recovered cache: hits again, and over a thousand calls in all.
        hits = cache.stats()["hits"]
        await wait_for(lambda: cache.stats()["hits"] > hits and load.calls > 1000, timeout=10,
                       what="hits after recovery and 1000 calls")
    finally:
        await load.stop()
    try:
        assert load.errors == []
        assert len(records(caplog, logging.WARNING, "unavailable")) == 1
        assert len(records(caplog, logging.INFO, "recovered")) == 1
        assert [r for r in caplog.records if r.levelno >= logging.WARNING and "unavailable" not in r.getMessage()] == []
        assert load.calls > 1000
        stats = cache.stats()
        assert stats["outages"] == 1 and stats["breaker"] == "closed"
        # Hits resume (a killed server comes back empty, so store first).
        assert await cache.put(key("after"), AUDIO) and await cache.get(key("after")) == AUDIO
    finally:
        await cache.close()


async def test_frozen_redis_costs_at_most_the_deadline(redis_own):
    # A hung Redis accepts connections but never answers: every call must still return within
    # connect + operation timeout, and once the breaker opens, immediately.
    cache = ResultCache.from_config(cache_config(redis_url=redis_own.url, op_timeout_s=OP_TIMEOUT,
                                                 connect_timeout_s=OP_TIMEOUT, breaker_reset_s=30))
    await cache.start()
    try:
        await cache.put(key("frozen"), AUDIO)
        redis_own.pause()
        # Without the deadlines these calls would hang until Redis is resumed (never, here): the wait_for is a
        # hang guard, not a speed check.
        results = await asyncio.wait_for(asyncio.gather(*[cache.get(key("frozen")) for _ in range(20)]), 60)
        assert results == [None] * 20
        assert not cache.up
        before = cache.stats()
        assert await cache.get(key("frozen")) is None
        after = cache.stats()
        assert after["bypassed"] == before["bypassed"] + 1 and after["errors"] == before["errors"]
    finally:
        redis_own.resume()
        await cache.close()


async def test_cancelled_probe_does_not_wedge_the_breaker(redis_own):
    cache = ResultCache.from_config(cache_config(redis_url=redis_own.url, op_timeout_s=OP_TIMEOUT,
                                                 connect_timeout_s=OP_TIMEOUT, breaker_reset_s=RESET))
    await cache.start()
    try:
        redis_own.pause()
        await asyncio.gather(*[cache.get(key("p")) for _ in range(3)])
        assert cache.stats()["breaker"] == "open"
        await wait_for(lambda: cache.stats()["breaker"] == "half_open", timeout=RESET + 2, what="half-open")
        probe = asyncio.create_task(cache.get(key("p")))       # the half-open probe, stuck on a frozen Redis
        await wait_for(lambda: cache.stats()["in_flight"] == 1, what="probe sent to Redis")
        probe.cancel()                                         # its client went away
        with pytest.raises(asyncio.CancelledError):
            await probe
        redis_own.resume()
        assert await cache.put(key("p"), AUDIO)                # the next caller may probe, and it succeeds
        assert cache.up
    finally:
        redis_own.resume()
        await cache.close()
