"""Fixtures shared by the inference tests (the model store itself is the suite's ``model_store_dir``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A local Sambert model directory as ModelScope lays it out, for the engine with a stand-in pipeline."""
    directory = tmp_path / "speech_sambert-hifigan_tts_zh-cn_16k"
    directory.mkdir()
    (directory / "configuration.json").write_text('{"task": "text-to-speech"}')
    return directory
