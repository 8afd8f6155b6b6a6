"""Reload rules (daemon process, pure logic): which settings a SIGHUP can apply and which only a restart can, and
the config a reload actually runs with.

Settings only read when the listeners, cache, logging or metrics are built at start are restart-only. A reload
keeps their running values (so status and every component describe what actually runs) and warns that a restart
is needed. ``graceful_timeout_s`` is the public runner's shutdown_timeout, fixed when the runner is built (aiohttp
offers no public way to change it), so the drain deadline and the supervisor's drain budget keep the start value
too.
"""

from __future__ import annotations

from typing import Any

from tts_ops.config.schema import Config

__all__ = ["RESTART_ONLY", "effective_config", "restart_only_changes"]

# Section -> the restart-only settings in it; None = the whole section.
RESTART_ONLY: dict[str, tuple[str, ...] | None] = {
    "server": ("host", "port", "max_body_bytes", "graceful_timeout_s", "event_loop"), "admin": None, "cache": None,
    "logging": None, "metrics": None, "paths": None, "instance": None,
    # The scorer process is started (or not) with the daemon; its queue and threads are fixed then.
    "quality": None}


def restart_only_changes(old: Config, new: Config) -> dict[str, list[str]]:
    """Per section, the names of changed settings that only a restart applies. Names only, never values: some
    are secrets (admin.token, cache.redis_url)."""
    changes = {}
    for section, fields in RESTART_ONLY.items():
        before, after = getattr(old, section).model_dump(), getattr(new, section).model_dump()
        changed = [key for key in (fields or sorted(before)) if before.get(key) != after.get(key)]
        if changed:
            changes[section] = changed
    return changes


def effective_config(old: Config, new: Config) -> Config:
    """``new`` with the restart-only settings kept at the values the running daemon uses."""
    kept: dict[str, Any] = {section: getattr(old, section) for section, fields in RESTART_ONLY.items() if not fields}
    server_fields = RESTART_ONLY["server"] or ()
    kept["server"] = new.server.model_copy(update={key: getattr(old.server, key) for key in server_fields})
    return new.model_copy(update=kept)
