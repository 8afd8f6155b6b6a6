"""Registry of TTS engines: one module per engine, created by name.

Runs in the worker process and in-process for ``tts-ops synth``; engine modules import their heavy runtimes
(LiteRT, ModelScope/torch) lazily so that listing engines costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.engines.base import EMOTIONS, Engine, EngineInfo, SynthesisParams
from inference.errors import BootError
from tts_vocab.engines import ENGINE_IDS, FASTSPEECH2_BAKER, SAMBERT_HIFIGAN


def create_engine(engine_id: str, *, store_dir: Path | None = None, threads: int = 1,
                  options: dict[str, Any] | None = None) -> Engine:
    """An unloaded engine; call ``load()`` then ``warm_up()``."""
    options = options or {}
    if engine_id == FASTSPEECH2_BAKER.id:
        from inference.engines.fastspeech2 import FastSpeech2Engine

        return FastSpeech2Engine(store_dir=store_dir, threads=threads, **options)
    if engine_id == SAMBERT_HIFIGAN.id:
        from inference.engines.sambert import SambertEngine

        return SambertEngine(store_dir=store_dir, threads=threads, **options)
    raise BootError(f"unknown engine {engine_id!r}; available: {', '.join(ENGINE_IDS)}")


__all__ = ["EMOTIONS", "ENGINE_IDS", "Engine", "EngineInfo", "SynthesisParams", "create_engine"]
