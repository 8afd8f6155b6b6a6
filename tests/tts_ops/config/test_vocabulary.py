"""The config schema's literal types list exactly the shared vocabulary's engine and voice ids (pydantic needs them
spelled out as literals; every other module takes them from tts_vocab)."""

from __future__ import annotations

from typing import get_args

from tts_ops.config import load_config
from tts_ops.config.engines import EngineName, SambertVoice
from tts_vocab.engines import ENGINE_IDS, ENGINES, SAMBERT_VOICES


def test_literal_types_match_the_vocabulary():
    assert get_args(EngineName) == ENGINE_IDS
    assert get_args(SambertVoice) == SAMBERT_VOICES


def test_every_engine_has_a_config_section_with_its_defaults(tmp_path):
    config = load_config(overrides={"paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")}},
                         env={})
    for engine in ENGINES.values():
        section = config.engines.section(engine.id)
        assert section is getattr(config.engines, engine.config_section)
        assert section.chunking() == (engine.max_chunk_chars, engine.pause_s)
        assert section.default_voice == engine.default_voice
        assert section.engine_options()  # what the worker's --options carries
