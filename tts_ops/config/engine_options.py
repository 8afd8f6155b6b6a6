"""Translate the daemon's config into engine constructor options (daemon, CLI and worker command lines)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tts_ops.config.schema import Config


def engine_options(config: Config, engine_id: str) -> dict[str, Any]:
    """Keyword options for ``create_engine(engine_id, ...)`` from the engine's ``engines.<section>`` settings."""
    return config.engines.section(engine_id).engine_options()


def render_digest(config: Config) -> str:
    """A short digest of the settings that change a worker's audio beyond the model: the engine's options (emotion
    presets, pauses, chunk size, dictionary) and the loudness target. It joins the cache key, so a reload that
    changes any of them is never answered from audio made under the old ones."""
    settings = {"engine": engine_options(config, config.workers.engine), "loudness_lufs": config.audio.loudness_lufs}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
