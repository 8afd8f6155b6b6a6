"""Sentinel support: URL parsing (unit), URL validation, and a real Sentinel in front of a real redis-server."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import REDIS_SERVER, free_port, ping
from tts_ops.cache import CachedAudio, ResultCache, cache_key, parse_sentinel_url
from tts_ops.cache.urls import SENTINEL_PORT, SentinelSpec, validate_url
from tts_ops.errors import ConfigError

from .conftest import cache_config


def test_parse_host_list_and_defaults():
    spec = parse_sentinel_url("sentinel://10.0.0.1:26380,sentinel-b,[fd00::3]:26381")
    assert spec == SentinelSpec(hosts=(("10.0.0.1", 26380), ("sentinel-b", SENTINEL_PORT), ("fd00::3", 26381)))


def test_parse_db_credentials_and_options():
    spec = parse_sentinel_url("sentinel://app:p%40ss@h1:26379,h2:26379/3?sentinel_password=sp&ssl=true")
    assert spec.hosts == (("h1", 26379), ("h2", 26379))
    assert (spec.db, spec.username, spec.password) == (3, "app", "p@ss")
    assert (spec.sentinel_username, spec.sentinel_password, spec.ssl) == (None, "sp", True)
    # A bare userinfo is a password (as in redis:// URLs); ?db= and ?password= work too.
    spec = parse_sentinel_url("sentinel://secret@h1?db=2")
    assert (spec.username, spec.password, spec.db) == (None, "secret", 2)
    assert parse_sentinel_url("sentinel://h1?password=x").password == "x"


def test_parse_repeated_scheme_is_tolerated():
    assert parse_sentinel_url("sentinel://h1:1,sentinel://h2:2/1").hosts == (("h1", 1), ("h2", 2))


@pytest.mark.parametrize("url, message", [
    ("sentinel://", r"^a Sentinel URL needs at least one host and no empty entries$"),
    ("sentinel://h1,,h2", r"^a Sentinel URL needs at least one host and no empty entries$"),
    ("sentinel://h1:0", r"^bad Sentinel port 0 in 'h1:0'$"),
    ("sentinel://h1:99999", r"^bad Sentinel port 99999 in 'h1:99999'$"),
    ("sentinel://h1:port", r"^bad Sentinel host 'h1:port' \(expected host\[:port\] or \[ipv6\]:port\)$"),
    ("sentinel://h1/x", r"^bad database number 'x'$"),
    ("sentinel://h1?bogus=1", r"^unknown Sentinel URL option\(s\): bogus$"),
    ("sentinel://h1?ssl=maybe", r"^bad ssl option 'maybe' \(use true or false\)$"),
    ("redis://h1", r"^a Sentinel URL starts with sentinel://$"),
])
def test_parse_rejects(url, message):
    with pytest.raises(ValueError, match=message):
        parse_sentinel_url(url)


def test_validate_url():
    validate_url("redis://h:6379/0", None)
    validate_url("unix:///run/redis.sock?db=1", None)
    validate_url("sentinel://h1,h2", "mymaster")
    for url, master in [("sentinel://h1", None), ("redis://a,redis://b", None), ("http://h", None),
                        ("sentinel://h1:x", "m")]:
        with pytest.raises(ConfigError):
            validate_url(url, master)
    with pytest.raises(ConfigError):
        ResultCache.from_config(cache_config(redis_url="sentinel://h1:x", sentinel_master="m"))


@pytest.fixture
def sentinel(redis_own):
    """A real Sentinel (``redis-server --sentinel``) monitoring ``redis_own`` as master "mymaster"."""
    workdir = redis_own.dir
    port = free_port()
    conf = workdir / "sentinel.conf"   # Sentinel rewrites its config file: it must be writable
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {redis_own.port} 1\n")
    proc = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"redis-server --sentinel did not answer PING on port {port} within 10 s "
                        f"(exit code {proc.wait()})")
        time.sleep(0.02)
    yield port
    proc.kill()
    proc.wait()


async def test_real_sentinel_round_trip(redis_own, sentinel):
    url = f"sentinel://127.0.0.1:{free_port()},127.0.0.1:{sentinel}/0"   # first Sentinel is down: skipped
    cache = ResultCache.from_config(cache_config(redis_url=url, sentinel_master="mymaster"))
    await cache.start()
    raw = aioredis.Redis.from_url(redis_own.url)
    try:
        assert cache.up
        key = cache_key("test:", engine="e", model_version="1", voice="v", emotion="neutral", speed=1.0,
                        fmt="wav", sample_rate=None, text="sentinel")
        audio = CachedAudio(b"sentinel" * 100, "audio/wav", 16000, 0.1, {"via": "sentinel"})
        assert await cache.put(key, audio)
        assert await cache.get(key) == audio
        assert await raw.exists(key) == 1          # landed on the master the Sentinel named
        assert await cache.purge() == 1
    finally:
        await cache.close()
        await raw.aclose()


async def test_unknown_master_starts_down(sentinel):
    cache = ResultCache.from_config(cache_config(redis_url=f"sentinel://127.0.0.1:{sentinel}",
                                                 sentinel_master="nosuchmaster"))
    await cache.start()
    try:
        assert not cache.up
        assert await asyncio.wait_for(cache.get("test:audio:x"), 1) is None
    finally:
        await cache.close()
