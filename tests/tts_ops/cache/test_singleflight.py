"""Single flight through ResultCache.get_or_create (memory backend): one factory call per key at a time."""

from __future__ import annotations

import asyncio

import pytest

from tts_ops.cache import CachedAudio, SharedCallCancelled

KEY = "test:audio:sf"


def audio(payload: bytes = b"pcm" * 1000) -> CachedAudio:
    return CachedAudio(payload, "audio/wav", 16000, 0.5, {"engine": "fastspeech2-baker"})


class Factory:
    """A stand-in synthesis: sleeps ``delay`` seconds, or with ``gated`` runs until the test sets ``release``."""

    def __init__(self, delay: float = 0.2, error: Exception | None = None, gated: bool = False) -> None:
        self.calls = 0
        self.cancelled = False
        self.finished = False
        self.delay = delay
        self.error = error
        self.started = asyncio.Event()
        self.release = asyncio.Event() if gated else None

    async def __call__(self) -> CachedAudio:
        self.calls += 1
        self.started.set()
        try:
            if self.release is not None:
                await self.release.wait()
            else:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error:
            raise self.error
        self.finished = True
        return audio(b"call%d" % self.calls)


async def until(predicate, what: str, timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the loop; fail when it is not true within ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not reached within {timeout} s"
        await asyncio.sleep(0.001)


def waiters(cache, key: str = KEY) -> int:
    """Callers currently waiting on the flight of ``key``: the only observable proof that a caller has joined a
    flight before the test cancels it (private state, read-only)."""
    flight = cache._flights._flights.get(key)
    return 0 if flight is None else flight.waiters


async def test_twenty_concurrent_share_one_call(cache):
    factory = Factory()
    results = await asyncio.gather(*[cache.get_or_create(KEY, factory) for _ in range(20)])
    assert factory.calls == 1
    assert {r[0].data for r in results} == {b"call1"}
    assert [r[1] for r in results] == ["MISS"] * 20
    assert sorted(r[2] for r in results) == ["follower"] * 19 + ["leader"]  # one synthesis to account for
    stats = cache.stats()
    assert stats["single_flight_shared"] == 19 and stats["misses"] == 20 and stats["stores"] == 1
    assert stats["single_flight_in_progress"] == 0
    # Stored: the next request is a plain hit without calling the factory.
    again, status, role = await cache.get_or_create(KEY, factory)
    assert (status, role) == ("HIT", "hit") and again.data == b"call1" and factory.calls == 1


async def test_exception_reaches_every_waiter_and_nothing_is_stored(cache):
    factory = Factory(error=RuntimeError("worker crashed"))
    results = await asyncio.gather(*[cache.get_or_create(KEY, factory) for _ in range(10)], return_exceptions=True)
    assert factory.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "worker crashed" for r in results)
    assert await cache.get(KEY) is None and cache.stats()["stores"] == 0
    # The failure is not remembered: the next request runs the factory again.
    ok = Factory(delay=0)
    assert (await cache.get_or_create(KEY, ok))[0].data == b"call1" and ok.calls == 1


async def test_cancelled_follower_does_not_cancel_the_leader(cache):
    factory = Factory(gated=True)
    leader = asyncio.create_task(cache.get_or_create(KEY, factory))
    await asyncio.wait_for(factory.started.wait(), 5)
    follower = asyncio.create_task(cache.get_or_create(KEY, factory))
    await until(lambda: waiters(cache) == 2, "follower joined the flight")
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower
    assert waiters(cache) == 1 and not factory.cancelled
    factory.release.set()
    result, status, role = await asyncio.wait_for(leader, 5)
    assert result.data == b"call1" and (status, role) == ("MISS", "leader")
    assert factory.calls == 1 and factory.finished and not factory.cancelled


async def test_cancelled_leader_does_not_cancel_the_follower(cache):
    factory = Factory(gated=True)
    leader = asyncio.create_task(cache.get_or_create(KEY, factory))
    await asyncio.wait_for(factory.started.wait(), 5)
    follower = asyncio.create_task(cache.get_or_create(KEY, factory))
    await until(lambda: waiters(cache) == 2, "follower joined the flight")
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert waiters(cache) == 1 and not factory.cancelled
    factory.release.set()
    result, status, role = await asyncio.wait_for(follower, 5)
    assert result.data == b"call1" and factory.calls == 1 and not factory.cancelled
    # The request that started the call is gone: the one that got the result accounts for the synthesis.
    assert (status, role) == ("MISS", "leader")
    assert (await cache.get(KEY)).data == b"call1"


async def test_all_waiters_gone_cancels_the_factory(cache):
    factory = Factory(gated=True)  # never released: only the waiters leaving can end it
    tasks = [asyncio.create_task(cache.get_or_create(KEY, factory)) for _ in range(3)]
    await asyncio.wait_for(factory.started.wait(), 5)
    await until(lambda: waiters(cache) == 3, "all three joined the flight")
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await until(lambda: factory.cancelled, "the factory task saw its cancellation")
    assert factory.calls == 1 and not factory.finished
    assert cache.stats()["single_flight_in_progress"] == 0 and await cache.get(KEY) is None
    # A new request right after starts a fresh call rather than joining the dead one.
    fresh = Factory(delay=0)
    assert (await cache.get_or_create(KEY, fresh))[0].data == b"call1"


async def test_factory_cancelled_from_inside_is_an_error_not_a_cancellation(cache):
    async def factory():
        raise asyncio.CancelledError()

    results = await asyncio.gather(*[cache.get_or_create(KEY, factory) for _ in range(3)], return_exceptions=True)
    assert all(isinstance(r, SharedCallCancelled) for r in results)


async def test_different_keys_do_not_share(cache):
    factory = Factory(delay=0.05)
    await asyncio.gather(cache.get_or_create(KEY, factory), cache.get_or_create(KEY + "2", factory))
    assert factory.calls == 2
