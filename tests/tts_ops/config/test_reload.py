"""Reload rules (tts_ops.config.reload): which changed settings only a restart applies, and the config a reload
runs with. Pure functions over two configs: no daemon."""

from __future__ import annotations

from pathlib import Path

from tts_ops.config import RESTART_ONLY, Config, effective_config, restart_only_changes
from tts_ops.config.engine_options import render_digest


def make_config(tmp_path: Path, **sections) -> Config:
    base: dict = {"paths": {"state_dir": tmp_path / "state", "runtime_dir": tmp_path / "run"},
                  "output": {"dir": tmp_path / "output"}, "logging": {"dir": tmp_path / "logs"},
                  "workers": {"count": 1}}
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return Config(**base)


def test_restart_only_sections_are_pinned():
    # Written out by hand: a key moving in or out of this table changes what a SIGHUP does.
    assert RESTART_ONLY == {"server": ("host", "port", "max_body_bytes", "graceful_timeout_s", "event_loop"),
                            "admin": None, "cache": None, "logging": None, "metrics": None, "paths": None,
                            "instance": None, "quality": None}


def test_restart_only_changes_name_keys_never_values(tmp_path):
    old = make_config(tmp_path)
    new = make_config(tmp_path, server={"port": 5999, "queue_limit": 3, "api_keys": ["k" * 20]},
                      admin={"token": "s3cret-token-value"}, cache={"ttl_s": 5}, logging={"level": "DEBUG"},
                      metrics={"enabled": False}, output={"save": True})
    changes = restart_only_changes(old, new)
    assert changes == {"server": ["port"], "admin": ["token"], "cache": ["ttl_s"], "logging": ["level"],
                       "metrics": ["enabled"]}
    assert "s3cret" not in repr(changes)
    assert restart_only_changes(old, old) == {}  # control: nothing changed, nothing reported


def test_effective_config_keeps_the_running_restart_only_values(tmp_path):
    old = make_config(tmp_path)
    new = make_config(tmp_path, server={"port": 5999, "graceful_timeout_s": 5, "queue_limit": 3},
                      admin={"token": "s3cret-token-value"}, cache={"ttl_s": 5}, workers={"max_rss_mb": 999},
                      output={"save": True})
    effective = effective_config(old, new)
    # Live settings are taken, restart-only ones keep their running values.
    assert effective.server.queue_limit == 3 and effective.workers.max_rss_mb == 999 and effective.output.save
    assert effective.server.port == old.server.port
    assert effective.server.graceful_timeout_s == old.server.graceful_timeout_s
    assert effective.admin == old.admin and effective.cache == old.cache and effective.paths == old.paths
    assert restart_only_changes(old, effective) == {}


def test_render_digest_follows_the_settings_that_change_the_audio():
    """A reload of the loudness target or an emotion preset changes the cache key's ``render`` part."""
    base = Config()
    louder = base.model_copy(update={"audio": base.audio.model_copy(update={"loudness_lufs": -14.0})})
    assert render_digest(louder) != render_digest(base)
    assert render_digest(Config()) == render_digest(base)  # control: equal settings, equal digest
