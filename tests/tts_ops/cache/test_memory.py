"""In-process LRU backend through the ResultCache facade: byte budget, LRU order, TTL, size limit, purge."""

from __future__ import annotations

from collections import Counter

from tts_ops.cache import CachedAudio, ResultCache
from tts_ops.cache.audio import encode_header
from tts_ops.cache.memory import ITEM_OVERHEAD, MemoryBackend

from .conftest import cache_config


def audio(n: int, fill: bytes = b"a", **meta) -> CachedAudio:
    return CachedAudio(data=fill * n, content_type="audio/wav", sample_rate=16000, duration_s=n / 32000,
                       meta={"engine": "fastspeech2-baker", **meta})


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def backend(max_bytes: int, ttl_s: float = 60, clock=None) -> MemoryBackend:
    return MemoryBackend(max_bytes, ttl_s, Counter(), **({"clock": clock} if clock else {}))


def item_cost(key: str, a: CachedAudio) -> int:
    return len(encode_header(a)) + len(a.data) + len(key) + ITEM_OVERHEAD


async def test_round_trip_returns_independent_meta():
    cache = ResultCache.from_config(cache_config())
    await cache.start()
    assert cache.backend == "memory" and cache.up
    assert await cache.put("test:audio:k", audio(1000, worker="w1"))
    got = await cache.get("test:audio:k")
    assert got == audio(1000, worker="w1")
    got.meta["worker"] = "mutated"
    assert (await cache.get("test:audio:k")).meta["worker"] == "w1"
    stats = cache.stats()
    assert stats["items"] == 1 and stats["hits"] == 2 and stats["stores"] == 1 and stats["hit_ratio"] == 1.0
    assert await cache.get("test:audio:nope") is None
    assert cache.stats()["misses"] == 1


async def test_timed_entries_are_decoded_per_hit_so_their_objects_stay_out_of_the_budget():
    """Timings' Python objects weigh several times their JSON and are not in the entry's cost: such a header is not
    kept decoded, so every hit gets its own copy (nested lists included) and the memory stays what the budget says."""
    timings = {"chars": [[i, i + 1, i * 0.1, i * 0.1 + 0.1] for i in range(200)]}
    b = backend(10_000_000)
    assert await b.put("k", audio(1000, timings=timings), encode_header(audio(1000, timings=timings)))
    first = await b.get("k")
    assert first is not None and first.meta["timings"] == timings
    first.meta["timings"]["chars"].clear()
    second = await b.get("k")
    assert second is not None and second.meta["timings"] == timings


async def test_lru_eviction_by_bytes():
    a = audio(10_000)
    cost = item_cost("k0", a)
    b = backend(3 * cost + 10)
    header = encode_header(a)
    for i in range(3):
        assert await b.put(f"k{i}", a, header)
    assert await b.get("k0") is not None          # k0 becomes most recently used; k1 is now the oldest
    assert await b.put("k3", a, header)
    assert await b.get("k1") is None
    assert all([await b.get(k) for k in ("k0", "k2", "k3")])
    assert b.stats()["items"] == 3 and b.stats()["bytes"] <= b.max_bytes
    assert b.counters["evictions"] == 1
    # One big item displaces as many small ones as needed.
    big = audio(2 * 10_000 + 100)
    assert await b.put("kbig", big, encode_header(big))
    assert b.stats()["bytes"] <= b.max_bytes and b.counters["evictions"] == 3


async def test_replacing_a_key_does_not_leak_bytes():
    b = backend(1_000_000)
    a = audio(5000)
    for _ in range(10):
        await b.put("k", a, encode_header(a))
    assert b.stats() == {"items": 1, "bytes": item_cost("k", a), "max_bytes": 1_000_000}


async def test_item_larger_than_the_budget_is_skipped():
    b = backend(5000)
    a = audio(6000)
    assert not await b.put("k", a, encode_header(a))
    assert b.counters["skipped_too_big"] == 1 and b.stats()["items"] == 0


async def test_ttl_uses_the_monotonic_clock():
    clock = Clock()
    b = backend(1_000_000, ttl_s=10, clock=clock)
    a = audio(100)
    await b.put("k", a, encode_header(a))
    clock.now = 9.9
    assert await b.get("k") is not None
    clock.now = 10.0
    assert await b.get("k") is None
    assert b.counters["expired"] == 1 and b.stats()["items"] == 0 and b.stats()["bytes"] == 0


async def test_max_item_bytes_skip_and_purge():
    cache = ResultCache.from_config(cache_config(max_item_bytes=4096))
    assert not await cache.put("test:audio:big", audio(5000))
    assert await cache.put("test:audio:small", audio(1000))
    assert cache.stats()["skipped_too_big"] == 1
    assert await cache.get("test:audio:big") is None
    assert await cache.purge() == 1
    assert await cache.get("test:audio:small") is None


async def test_unencodable_meta_is_skipped_not_raised(caplog):
    cache = ResultCache.from_config(cache_config())
    bad = CachedAudio(b"x", "audio/wav", 16000, 0.1, meta={"obj": object()})
    assert not await cache.put("test:audio:k", bad)
    assert not await cache.put("test:audio:k", bad)
    assert cache.stats()["errors"] == 2
    assert len([r for r in caplog.records if r.name == "tts_ops.cache" and r.levelname == "WARNING"]) == 1


async def test_disabled_cache():
    for cfg in (cache_config(enabled=False), cache_config(memory_max_bytes=0)):
        cache = ResultCache.from_config(cfg)
        await cache.start()
        assert cache.backend == "disabled" and not cache.up
        assert not await cache.put("test:audio:k", audio(10))
        assert await cache.get("test:audio:k") is None
        calls: list[int] = []

        async def factory(calls: list[int] = calls) -> object:  # bound now: each config gets its own list
            calls.append(1)
            return audio(10)

        assert (await cache.get_or_create("test:audio:k", factory))[1] == "MISS"
        assert (await cache.get_or_create("test:audio:k", factory))[1] == "MISS"
        assert len(calls) == 2 and await cache.purge() == 0
        assert cache.stats()["backend"] == "disabled"
        await cache.close()
