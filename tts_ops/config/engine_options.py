"""Translate the daemon's config into engine constructor options (daemon, CLI and worker command lines)."""

from __future__ import annotations

from typing import Any

from tts_ops.config.schema import Config


def engine_options(config: Config, engine_id: str) -> dict[str, Any]:
    """Keyword options for ``create_engine(engine_id, ...)`` from the engine's ``engines.<section>`` settings."""
    return config.engines.section(engine_id).engine_options()
