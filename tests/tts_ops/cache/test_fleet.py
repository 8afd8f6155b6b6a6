"""Fleet single flight against a real redis-server: two ResultCaches on one Redis stand for two instances."""

from __future__ import annotations

import asyncio
import itertools

import pytest
import redis.asyncio as aioredis

from tts_ops.cache import CachedAudio, ResultCache, cache_key
from tts_ops.cache.fleet import FLEET_COUNTERS, RedisFleet

from .conftest import cache_config

_texts = itertools.count()


def fresh_key() -> str:
    """A key no other test used: the session's Redis is shared."""
    return cache_key("test:", engine="fastspeech2-baker", model_version="1", voice="baker", emotion="neutral",
                     speed=1.0, fmt="wav", sample_rate=24000, text=f"fleet {next(_texts)}")


def lease_name(key: str) -> str:
    return "test:lease:" + key.removeprefix("test:")


class Synth:
    """A stand-in synthesis counted per instance: runs until ``release`` is set (or at once without a gate)."""

    def __init__(self, name: str, gated: bool = False, error: Exception | None = None) -> None:
        self.name = name
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.error = error
        if not gated:
            self.release.set()

    async def __call__(self) -> CachedAudio:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return CachedAudio(b"pcm-from-" + self.name.encode() * 500, "audio/wav", 24000, 1.0, {"worker": "w1"})


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not reached within {timeout} s"
        await asyncio.sleep(0.01)


async def released(raw, key: str, timeout: float = 5.0) -> bool:
    """Whether the lease of ``key`` is gone within ``timeout``: callers get the result before the flight's last
    step (store, then release) has run."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await raw.exists(lease_name(key)):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.fixture
async def raw(redis_tcp):
    client = aioredis.Redis.from_url(redis_tcp.url)
    yield client
    await client.aclose()


@pytest.fixture
async def make():
    """Factory of started Redis caches (fleet on unless overridden), closed at the end of the test."""
    made: list[ResultCache] = []

    async def build(url: str, **overrides) -> ResultCache:
        cache = ResultCache.from_config(cache_config(redis_url=url, **overrides))
        await cache.start()
        made.append(cache)
        return cache

    yield build
    for cache in made:
        await cache.close()


async def test_two_instances_synthesize_a_key_once(redis_tcp, make, raw):
    a, b = await make(redis_tcp.url), await make(redis_tcp.url)
    key = fresh_key()
    synth_a, synth_b = Synth("a", gated=True), Synth("b", gated=True)
    on_a = [asyncio.create_task(a.get_or_create(key, synth_a)) for _ in range(5)]
    await synth_a.started.wait()
    on_b = [asyncio.create_task(b.get_or_create(key, synth_b)) for _ in range(5)]
    await until(lambda: b.stats()["single_flight_in_progress"] == 1, "b's leader waiting")
    await asyncio.sleep(0.5)  # b polls meanwhile: it must keep waiting, not synthesize
    assert synth_b.calls == 0 and await raw.exists(lease_name(key))
    synth_a.release.set()
    results = await asyncio.gather(*on_a, *on_b)
    assert (synth_a.calls, synth_b.calls) == (1, 0)
    assert {audio.data for audio, _, _ in results} == {b"pcm-from-" + b"a" * 500}
    assert [role for _, _, role in results].count("leader") == 1  # only a's leader accounts for the synthesis
    assert {status for _, status, _ in results[5:]} == {"MISS"}  # b's requests waited for a synthesis
    assert a.stats()["fleet_leases_taken"] == 1 and b.stats()["fleet_waited_hits"] == 1
    assert b.stats()["fleet_leases_taken"] == 0 and b.stats()["stores"] == 0  # nothing stored twice
    assert await released(raw, key)


async def test_killed_holder_lease_lapses_and_the_waiter_synthesizes(redis_tcp, make, raw):
    # A holder that died: the lease was taken by a raw client and is never renewed nor released.
    cache = await make(redis_tcp.url, lease_ttl_s=1.0)
    key = fresh_key()
    assert await raw.set(lease_name(key), b"dead-instance", nx=True, px=1000)
    synth = Synth("here")
    audio, status, role = await asyncio.wait_for(cache.get_or_create(key, synth), 10)
    assert synth.calls == 1 and (status, role) == ("MISS", "leader") and audio.data.startswith(b"pcm-from-here")
    stats = cache.stats()
    assert stats["fleet_waited_synthesized"] == 1 and stats["fleet_leases_taken"] == 1
    assert stats["fleet_waited_hits"] == 0 and stats["fleet_lease_errors"] == 0
    assert await released(raw, key)  # the flight's last step ran: store, then release
    assert await cache.get(key) == audio  # stored for the others


async def test_failed_holder_releases_and_the_waiter_takes_over(redis_tcp, make):
    a, b = await make(redis_tcp.url, lease_ttl_s=30.0), await make(redis_tcp.url, lease_ttl_s=30.0)
    key = fresh_key()
    failing, synth_b = Synth("a", gated=True, error=RuntimeError("worker died")), Synth("b")
    on_a = asyncio.create_task(a.get_or_create(key, failing))
    await failing.started.wait()
    on_b = asyncio.create_task(b.get_or_create(key, synth_b))
    await until(lambda: b.stats()["single_flight_in_progress"] == 1, "b waiting")
    failing.release.set()
    with pytest.raises(RuntimeError):
        await on_a
    # Released on failure: b does not sit out a 30 s lease (the wait_for bound fails the test if it did).
    audio, _, role = await asyncio.wait_for(on_b, 5)
    assert synth_b.calls == 1 and role == "leader" and b.stats()["fleet_waited_synthesized"] == 1


async def test_wait_is_bounded_by_fleet_wait_s(redis_tcp, make, raw):
    cache = await make(redis_tcp.url, fleet_wait_s=0.5, lease_ttl_s=60.0)
    key = fresh_key()
    await raw.set(lease_name(key), b"slow-instance", px=60000)
    synth = Synth("here")
    await asyncio.wait_for(cache.get_or_create(key, synth), 10)
    stats = cache.stats()
    assert synth.calls == 1 and stats["fleet_waited_synthesized"] == 1 and stats["fleet_leases_taken"] == 0
    assert await raw.get(lease_name(key)) == b"slow-instance"  # someone else's lease is never deleted


async def test_lease_is_renewed_while_the_synthesis_runs(redis_tcp, make, raw):
    cache = await make(redis_tcp.url, lease_ttl_s=0.3)
    key = fresh_key()
    synth = Synth("here", gated=True)
    task = asyncio.create_task(cache.get_or_create(key, synth))
    await synth.started.wait()
    await asyncio.sleep(1.0)  # more than three lease lifetimes
    assert await raw.exists(lease_name(key)), "lease lapsed although its synthesis still runs"
    synth.release.set()
    await task
    assert await released(raw, key) and cache.stats()["fleet_leases_lost"] == 0


async def test_pubsub_wakes_the_waiter_before_its_next_poll(redis_tcp, make):
    a = await make(redis_tcp.url)
    b = await make(redis_tcp.url)
    assert isinstance(b._fleet, RedisFleet)
    b._fleet.poll_s = 30.0  # only the holder's message can end the wait within the bound below
    key = fresh_key()
    synth_a, synth_b = Synth("a", gated=True), Synth("b")
    on_a = asyncio.create_task(a.get_or_create(key, synth_a))
    await synth_a.started.wait()
    on_b = asyncio.create_task(b.get_or_create(key, synth_b))
    await until(lambda: b.stats()["single_flight_in_progress"] == 1, "b waiting")
    await asyncio.sleep(0.3)  # the subscription is set up on b's first wait
    synth_a.release.set()
    await on_a
    audio, _, role = await asyncio.wait_for(on_b, 5)
    assert synth_b.calls == 0 and role == "follower" and b.stats()["fleet_waited_hits"] == 1


async def test_redis_down_synthesizes_at_once(redis_own, make):
    cache = await make(redis_own.url, breaker_failures=1, fleet_wait_s=60.0)
    await asyncio.to_thread(redis_own.stop)
    synth = Synth("here")
    audio, status, _ = await asyncio.wait_for(cache.get_or_create(fresh_key(), synth), 5)
    assert synth.calls == 1 and status == "MISS"
    assert cache.stats()["fleet_lease_errors"] == 1 and cache.stats()["fleet_leases_taken"] == 0


async def test_stream_takes_a_free_lease_and_whole_requests_elsewhere_wait_for_it(redis_tcp, make):
    a, b = await make(redis_tcp.url), await make(redis_tcp.url)
    key = fresh_key()
    release = asyncio.Event()

    async def produce(emit):
        emit(b"first bytes")
        await release.wait()
        return CachedAudio(b"streamed" * 100, "audio/wav", 24000, 1.0, {})

    async with a.join_stream(key, produce) as reader:
        first = await reader.__anext__()
        assert first == b"first bytes"  # the stream did not wait for anything
        synth_b = Synth("b")
        on_b = asyncio.create_task(b.get_or_create(key, synth_b))
        await until(lambda: b.stats()["single_flight_in_progress"] == 1, "b waiting")
        release.set()
        async for _ in reader:
            pass
    audio, _, role = await asyncio.wait_for(on_b, 5)
    assert synth_b.calls == 0 and audio.data == b"streamed" * 100 and role == "follower"
    assert a.stats()["fleet_leases_taken"] == 1


async def test_fleet_off_or_memory_backend_never_leases(redis_tcp, make, raw):
    off = await make(redis_tcp.url, fleet_single_flight=False)
    key = fresh_key()
    await raw.set(lease_name(key), b"other", px=60000)
    synth = Synth("here")
    await asyncio.wait_for(off.get_or_create(key, synth), 5)
    assert synth.calls == 1  # positive control above: with the fleet on this lease makes it wait
    memory = ResultCache.from_config(cache_config())
    stats = memory.stats()
    assert stats["fleet_single_flight"] is False and off.stats()["fleet_single_flight"] is False
    assert all(stats[name] == 0 for name in FLEET_COUNTERS)
