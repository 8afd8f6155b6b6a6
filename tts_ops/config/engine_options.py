"""Translate the daemon's config into engine constructor options (daemon, CLI and worker command lines)."""

from __future__ import annotations

from typing import Any


def engine_options(config: Any, engine_id: str) -> dict[str, Any]:
    """Keyword options for ``create_engine(engine_id, ...)`` from the ``engines`` config section."""
    if engine_id == "fastspeech2-baker":
        section = config.engines.fastspeech2_baker
        return {
            "emotions": {name: preset.model_dump() for name, preset in section.emotions.items()},
            "pause_s": section.pause_s,
            "max_chunk_chars": section.max_chunk_chars,
        }
    if engine_id == "sambert-hifigan":
        section = config.engines.sambert_hifigan
        options: dict[str, Any] = {"default_voice": section.default_voice,
                                   "emotion_intensity": section.emotion_intensity}
        if section.model_dir is not None:
            options["model_dir"] = str(section.model_dir)
        return options
    return {}
