"""Fixtures of the result-cache tests: real ``redis-server`` processes (TCP on a free loopback port, and a Unix
socket in a short /tmp directory), without persistence, that a test can stop and restart to simulate outages."""

from __future__ import annotations

import pytest

from tests.support.redis_server import RedisServer
from tts_ops.cache import ResultCache
from tts_ops.config import CacheConfig


@pytest.fixture(scope="session")
def redis_tcp():
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_unix():
    server = RedisServer(unix=True)
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_own():
    """A server of the test's own, free to be killed, frozen and restarted."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


def cache_config(**overrides) -> CacheConfig:
    """Test settings: short breaker reset so outage tests take a second, not minutes."""
    base = {"prefix": "test:", "ttl_s": 60, "breaker_failures": 3, "breaker_reset_s": 0.3,
            "connect_timeout_s": 0.25, "op_timeout_s": 0.25}
    base.update(overrides)
    return CacheConfig(**base)


@pytest.fixture
async def cache():
    """A started in-process (memory) ResultCache with the test settings."""
    c = ResultCache.from_config(cache_config())
    await c.start()
    yield c
    await c.close()
