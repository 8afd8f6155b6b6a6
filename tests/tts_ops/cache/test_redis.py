"""Redis backend against a real redis-server (TCP and Unix socket): round trip, TTL, limits, purge, start-up."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import free_port
from tts_ops.cache import CachedAudio, ResultCache, cache_key

from .conftest import cache_config

AUDIO = CachedAudio(data=bytes(range(256)) * 400, content_type="audio/wav", sample_rate=16000, duration_s=3.2,
                    meta={"engine": "sambert-hifigan", "model_version": "1.0.2", "worker": "w3",
                          "synthesis_s": 0.412, "text_chars": 12, "note": "中文"})


def key(text: str = "你好，世界", prefix: str = "test:") -> str:
    return cache_key(prefix, engine="sambert-hifigan", model_version="1.0.2", voice="zhitian_emo",
                     emotion="neutral", speed=1.0, fmt="wav", sample_rate=16000, text=text)


@pytest.fixture(params=["redis_tcp", "redis_unix"])
def server(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
async def raw(server):
    client = aioredis.Redis.from_url(server.url)
    yield client
    await client.aclose()


async def make(url: str, **overrides) -> ResultCache:
    cache = ResultCache.from_config(cache_config(redis_url=url, **overrides))
    await cache.start()
    return cache


async def test_round_trip_and_ttl(server, raw):
    cache = await make(server.url, ttl_s=120)
    try:
        assert cache.backend == "redis" and cache.up and cache.stats()["breaker"] == "closed"
        k = key(f"round trip {server.url}")
        assert await cache.get(k) is None
        assert await cache.put(k, AUDIO)
        assert await cache.get(k) == AUDIO
        ttl = await raw.ttl(k)
        assert 0 < ttl <= 120
        # Stored as one string: 4-byte header length, JSON header, then the audio bytes untouched.
        value = await raw.get(k)
        (size,) = struct.unpack(">I", value[:4])
        assert value[4 + size:] == AUDIO.data and b'"worker":"w3"' in value[4:4 + size]
        stats = cache.stats()
        assert (stats["hits"], stats["misses"], stats["stores"], stats["errors"]) == (1, 1, 1, 0)
    finally:
        await cache.close()


async def test_max_item_bytes_is_not_stored(redis_tcp):
    cache = await make(redis_tcp.url, max_item_bytes=50_000)
    raw = aioredis.Redis.from_url(redis_tcp.url)
    try:
        k = key("too big")
        assert not await cache.put(k, AUDIO)          # 102 400 bytes of audio
        assert await raw.exists(k) == 0
        assert cache.stats()["skipped_too_big"] == 1
    finally:
        await cache.close()
        await raw.aclose()


async def test_foreign_value_is_a_miss_not_an_outage(redis_tcp):
    cache = await make(redis_tcp.url)
    raw = aioredis.Redis.from_url(redis_tcp.url)
    try:
        k = key("foreign")
        for junk in (b"", b"\x00\x00", b"\xff\xff\xff\xffjunk", b"\x00\x00\x00\x02{}", b"\x00\x00\x00\x01xaudio"):
            await raw.set(k, junk)
            assert await cache.get(k) is None
        assert cache.stats()["errors"] == 5 and cache.stats()["breaker"] == "closed" and cache.up
        assert await cache.put(k, AUDIO) and await cache.get(k) == AUDIO
    finally:
        await cache.close()
        await raw.aclose()


async def test_single_flight_with_redis(redis_tcp):
    cache = await make(redis_tcp.url)
    calls = 0

    async def factory() -> CachedAudio:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return AUDIO

    try:
        k = key("single flight redis")
        results = await asyncio.gather(*[cache.get_or_create(k, factory) for _ in range(20)])
        assert calls == 1 and all(r[:2] == (AUDIO, "MISS") for r in results)
        assert sorted(r[2] for r in results) == ["follower"] * 19 + ["leader"]
        again = await cache.get_or_create(k, factory)
        assert again[:2] == (AUDIO, "HIT") and again[2] in ("hit", "late") and calls == 1
    finally:
        await cache.close()


async def test_purge_deletes_only_our_keys(redis_tcp):
    prefix = "te?t[1]:"      # glob characters in the prefix must be matched literally
    # This test is about what purge deletes, not about fail-fast timeouts: generous ones, so a busy CI machine
    # cannot trip the breaker half-way.
    cache = await make(redis_tcp.url, prefix=prefix, connect_timeout_s=5.0, op_timeout_s=5.0)
    raw = aioredis.Redis.from_url(redis_tcp.url)
    try:
        ours = [key(f"purge {i}", prefix=prefix) for i in range(2500)]   # several SCAN pages
        small = CachedAudio(b"x", "audio/wav", 16000, 0.1, {})
        for k in ours[:5]:                                # a few through the cache itself (its own key format)
            assert await cache.put(k, small)
        stored = await raw.get(ours[0])
        async with raw.pipeline(transaction=False) as pipe:   # the rest in bulk, same value, no burst of puts
            for k in ours[5:]:
                pipe.set(k, stored, ex=60)
            await pipe.execute()
        assert await raw.exists(*ours) == len(ours)
        foreign = {"other:audio:1": b"a", "other:x": b"b", "test1:audio:zz": b"c", "te?t[1]:config": b"d",
                   key("lookalike", prefix="tezt1:"): b"e"}
        await raw.mset(foreign)
        assert await cache.purge() == len(ours)
        assert [await raw.get(k) for k in foreign] == list(foreign.values())
        assert sum([await raw.exists(k) for k in ours[:50]]) == 0
    finally:
        await raw.delete(*foreign)
        await cache.close()
        await raw.aclose()


async def test_unreachable_at_start_starts_down(caplog):
    caplog.set_level(logging.INFO, logger="tts_ops.cache")
    cache = ResultCache.from_config(cache_config(redis_url=f"redis://:hunter2@127.0.0.1:{free_port()}/0"))
    await cache.start()                                   # no exception
    try:
        assert not cache.up and cache.stats()["breaker"] == "open"
        assert await cache.get(key()) is None
        assert not await cache.put(key(), AUDIO)
        stats = cache.stats()                             # bypassed: no connection attempt, no new error
        assert stats["bypassed"] == 2 and stats["errors"] == 1 and stats["misses"] == 1
        assert "hunter2" not in stats["url"]
        warnings = [r for r in caplog.records if r.name == "tts_ops.cache" and r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "unavailable at start" in warnings[0].getMessage()
        assert "hunter2" not in warnings[0].getMessage()
    finally:
        await cache.close()


async def test_sentinel_without_sentinels_starts_down():
    # Nothing listens on the port: master discovery fails, start() still returns and the cache is just down.
    url = f"sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/0"
    cache = ResultCache.from_config(cache_config(redis_url=url, sentinel_master="mymaster"))
    await cache.start()
    try:
        assert not cache.up and await cache.get(key()) is None
    finally:
        await cache.close()
