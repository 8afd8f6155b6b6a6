"""The configured engine's default voice (daemon process, pure logic): what a job naming no voice is spoken in.
Shared by request validation (``tts_ops.http.validation``) and the cache key (``service.synthesis``)."""

from __future__ import annotations

from tts_ops.config import Config

__all__ = ["engine_default_voice"]


def engine_default_voice(config: Config) -> str | None:
    """The voice id the configured engine uses when a job names none."""
    return config.engines.section(config.workers.engine).default_voice
