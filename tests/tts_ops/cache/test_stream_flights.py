"""Shared streamed productions (``StreamFlights`` through ``ResultCache.join_stream``, memory backend): readers
replay then follow one production; a reader leaving, even the one that started it, does not stop it for the
others; errors reach every reader; the last reader leaving cancels it; the key is always released."""

from __future__ import annotations

import asyncio

import pytest

from tts_ops.cache import CachedAudio, ResultCache, SharedCallCancelled

from .conftest import cache_config

KEY = "test:audio:stream"


class Production:
    """emit(b"0"), emit(b"1")... one item per gate opened; then a CachedAudio of everything (or ``error``)."""

    def __init__(self, items: int = 4, error: Exception | None = None) -> None:
        self.items = items
        self.error = error
        self.gates = [asyncio.Event() for _ in range(items)]
        self.calls = 0
        self.cancelled = False

    async def __call__(self, emit) -> CachedAudio:
        self.calls += 1
        try:
            for n in range(self.items):
                await self.gates[n].wait()
                if self.error is not None and n == self.items - 1:
                    raise self.error
                emit(str(n).encode())
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return CachedAudio(b"".join(str(n).encode() for n in range(self.items)), "audio/pcm", 24000, 0.5, {})

    def open(self, n: int) -> None:
        self.gates[n].set()


async def read_all(reader, got: list) -> CachedAudio:
    async with reader:
        async for item in reader:
            got.append(item)
        return reader.result


async def until(predicate, what: str = "condition") -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


async def test_follower_replays_then_follows_and_the_result_is_stored_once(cache):
    production = Production()
    leader_got, follower_got = [], []
    leader_reader = cache.join_stream(KEY, production)
    leader = asyncio.create_task(read_all(leader_reader, leader_got))
    production.open(0)
    production.open(1)
    await until(lambda: len(leader_got) == 2, "the leader's first items")
    follower_reader = cache.join_stream(KEY, production)
    assert (leader_reader.role, follower_reader.role) == ("leader", "follower")
    follower = asyncio.create_task(read_all(follower_reader, follower_got))
    await until(lambda: len(follower_got) == 2, "the follower to replay what was produced")
    production.open(2)
    production.open(3)
    results = await asyncio.gather(leader, follower)
    assert leader_got == follower_got == [b"0", b"1", b"2", b"3"]
    assert results[0] is results[1] and results[0].data == b"0123" and production.calls == 1
    assert [leader_reader.claim(), follower_reader.claim()] == [True, False]  # one accounts for the work
    stats = cache.stats()
    assert stats["single_flight_shared"] == 1 and stats["single_flight_in_progress"] == 0
    assert (await cache.get(KEY)).data == b"0123"


async def test_leader_cancelled_mid_stream_does_not_stop_the_follower(cache):
    production = Production()
    leader_got, follower_got = [], []
    leader = asyncio.create_task(read_all(cache.join_stream(KEY, production), leader_got))
    follower = asyncio.create_task(read_all(cache.join_stream(KEY, production), follower_got))
    production.open(0)
    await until(lambda: leader_got and follower_got, "both readers to start")
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    for n in range(1, 4):
        production.open(n)
    result = await follower
    assert follower_got == [b"0", b"1", b"2", b"3"] and result.data == b"0123"
    assert production.calls == 1 and not production.cancelled
    assert cache.stats()["single_flight_in_progress"] == 0


async def test_error_reaches_every_reader_after_its_items_and_releases_the_key(cache):
    production = Production(error=RuntimeError("worker crashed"))
    got = [[], [], []]
    tasks = [asyncio.create_task(read_all(cache.join_stream(KEY, production), g)) for g in got]
    for n in range(4):
        production.open(n)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "worker crashed" for r in results)
    assert got == [[b"0", b"1", b"2"]] * 3 and production.calls == 1
    assert cache.stats()["single_flight_in_progress"] == 0 and await cache.get(KEY) is None
    retry = Production(items=1)
    retry.open(0)
    assert (await read_all(cache.join_stream(KEY, retry), [])).data == b"0" and retry.calls == 1


async def test_last_reader_leaving_cancels_the_production_and_a_new_one_starts_fresh(cache):
    production = Production()
    got = [[], []]
    tasks = [asyncio.create_task(read_all(cache.join_stream(KEY, production), g)) for g in got]
    production.open(0)
    await until(lambda: got[0] and got[1], "both readers to start")
    tasks[0].cancel()
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert not production.cancelled and KEY in cache._streams  # one reader still wants it
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)
    assert KEY not in cache._streams  # released at once: nobody can join a dying production
    await until(lambda: production.cancelled, "the production to be cancelled")
    fresh = Production(items=1)
    fresh.open(0)
    reader = cache.join_stream(KEY, fresh)
    assert reader.role == "leader"
    assert (await read_all(reader, [])).data == b"0" and fresh.calls == 1


async def test_production_cancelled_from_inside_is_an_error_for_its_readers(cache):
    async def produce(emit):
        raise asyncio.CancelledError()

    results = await asyncio.gather(*[read_all(cache.join_stream(KEY, produce), []) for _ in range(2)],
                                   return_exceptions=True)
    assert all(isinstance(r, SharedCallCancelled) for r in results)
    assert cache.stats()["single_flight_in_progress"] == 0


async def test_disabled_cache_does_not_share():
    cache = ResultCache.from_config(cache_config(enabled=False))
    production = Production(items=1)
    production.open(0)
    first, second = cache.join_stream(KEY, production), cache.join_stream(KEY, production)
    assert (first.role, second.role) == ("leader", "leader")
    await asyncio.gather(read_all(first, []), read_all(second, []))
    assert production.calls == 2
