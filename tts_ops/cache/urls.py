"""Redis connection set-up for the result cache: URL parsing (Sentinel included) and client construction.

Runs in the daemon process on its event loop; building a client does no I/O (redis-py connects lazily on the
first command). Every client gets the cache's fail-fast profile: short connect/operation timeouts, no retries
(the circuit breaker is the retry policy: a failed cache lookup becomes a miss instead of a slower request), a
bounded pool, and a periodic PING on connections idle for a while, so a socket silently dropped by a firewall is
found before a request uses it. RESP2 is pinned: with RESP3 redis-py (8.x) skips its check for dead pooled
connections on checkout, so after a Redis restart every stale socket failed one request (and enough of them
re-opened the breaker right after recovery); the cache needs nothing RESP3 offers.

Accepted URLs:

* ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS) and ``unix:///path/to.sock?db=0``:
  handed to ``redis.asyncio.from_url`` unchanged; query options (``?password=``...) are redis-py's.
* ``sentinel://[user:password@]host1[:port],host2[:port][/db][?options]`` with ``sentinel_master`` naming the
  monitored master. redis-py has no URL form for Sentinel, so it is parsed here: the comma-separated host list
  is the Sentinels (port defaults to 26379, ``[v6addr]:port`` allowed; a repeated ``sentinel://`` before later
  hosts is tolerated because the config loader accepts it), the userinfo and ``/db`` apply to the master.
  Options: ``db``, ``username``/``password`` (master, override the userinfo), ``sentinel_username`` and
  ``sentinel_password`` (Sentinel ACLs are separate from the master's), ``ssl=true`` (TLS to the master).
  Percent-encoding is decoded in userinfo and options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from tts_ops.errors import ConfigError

__all__ = ["SentinelSpec", "parse_sentinel_url", "build_client", "MAX_CONNECTIONS"]

MAX_CONNECTIONS = 32
SENTINEL_PORT = 26379
# Idle seconds after which a pooled connection is PINGed before reuse (one extra round trip, rarely paid).
HEALTH_CHECK_INTERVAL_S = 30
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_OPTIONS = {"db", "username", "password", "sentinel_username", "sentinel_password", "ssl"}


@dataclass(frozen=True)
class SentinelSpec:
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def _host_port(entry: str) -> tuple[str, int]:
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\](?::(?P<p6>\d+))?|(?P<host>[^:\[\]/]+)(?::(?P<port>\d+))?", entry)
    if not match:
        raise ValueError(f"bad Sentinel host {entry!r} (expected host[:port] or [ipv6]:port)")
    host = match["v6"] or match["host"]
    port = int(match["p6"] or match["port"] or SENTINEL_PORT)
    if not 0 < port < 65536:
        raise ValueError(f"bad Sentinel port {port} in {entry!r}")
    return host, port


def parse_sentinel_url(url: str) -> SentinelSpec:
    """Parse ``sentinel://...`` (format in the module docstring); raises ValueError naming the problem."""
    scheme = "sentinel://"
    if not url.startswith(scheme):
        raise ValueError("a Sentinel URL starts with sentinel://")
    rest = re.sub(r",\s*sentinel://", ",", url[len(scheme):])
    rest, _, query = rest.partition("?")
    userinfo, at, rest = rest.rpartition("@")
    rest, _, path = rest.partition("/")
    entries = [e.strip() for e in rest.split(",")]
    if not entries or any(not e for e in entries):
        raise ValueError("a Sentinel URL needs at least one host and no empty entries")
    hosts = tuple(_host_port(e) for e in entries)
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        # "sentinel://secret@h" (no colon) is a password, as in redis:// URLs.
        username, password = (unquote(user) or None, unquote(secret)) if colon else (None, unquote(user))
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ValueError(f"unknown Sentinel URL option(s): {', '.join(sorted(unknown))}")
    db_text = path.strip("/") or options.get("db", "0")
    if not db_text.isdigit():
        raise ValueError(f"bad database number {db_text!r}")
    ssl = options.get("ssl", "").lower()
    if ssl not in _TRUE | _FALSE:
        raise ValueError(f"bad ssl option {options['ssl']!r} (use true or false)")
    return SentinelSpec(
        hosts=hosts, db=int(db_text),
        username=options.get("username", username) or None,
        password=options.get("password", password) or None,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
        ssl=ssl in _TRUE,
    )


def _fail_fast(connect_timeout_s: float, op_timeout_s: float) -> dict[str, Any]:
    return {
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": op_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "protocol": 2,
    }


def validate_url(url: str, sentinel_master: str | None) -> None:
    """Raise ConfigError when the URL cannot be used (called from ``ResultCache.from_config``, no I/O)."""
    try:
        if url.startswith("sentinel://"):
            if not sentinel_master:
                raise ValueError("sentinel_master is required with a sentinel:// URL")
            parse_sentinel_url(url)
        elif "," in url:
            raise ValueError("a comma-separated host list is only valid with sentinel://")
        elif url.split("://", 1)[0] not in ("redis", "rediss", "unix"):
            raise ValueError("must start with redis://, rediss://, unix:// or sentinel://")
    except ValueError as exc:
        raise ConfigError(f"cache.redis_url: {exc}") from None


def build_client(url: str, sentinel_master: str | None, *, connect_timeout_s: float, op_timeout_s: float,
                 max_connections: int = MAX_CONNECTIONS) -> tuple[Redis, Sentinel | None]:
    """A Redis client with the fail-fast profile, plus the Sentinel manager to close with it (or None)."""
    validate_url(url, sentinel_master)
    common = _fail_fast(connect_timeout_s, op_timeout_s)
    if not url.startswith("sentinel://"):
        return Redis.from_url(url, max_connections=max_connections, decode_responses=False, **common), None
    spec = parse_sentinel_url(url)
    assert sentinel_master is not None  # validate_url refused a sentinel:// URL without it
    sentinel_kwargs = dict(common, username=spec.sentinel_username, password=spec.sentinel_password)
    sentinel = Sentinel(list(spec.hosts), sentinel_kwargs=sentinel_kwargs)
    client = sentinel.master_for(sentinel_master, db=spec.db, username=spec.username, password=spec.password,
                                 ssl=spec.ssl, max_connections=max_connections, decode_responses=False, **common)
    return client, sentinel
