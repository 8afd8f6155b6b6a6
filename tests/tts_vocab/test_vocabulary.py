"""The shared vocabulary: its tables are consistent, and it stays dependency-free."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tts_vocab import EMOTIONS, ENGINES, FORMATS, InvalidRequest, format_for_path, normalize_emotion, normalize_format
from tts_vocab.emotions import EMOTION_ALIASES, EMOTION_LABELS_ZH
from tts_vocab.formats import CONTENT_TYPE_BY_EXTENSION, FORMAT_SPELLINGS, extension_for


@pytest.mark.parametrize("spelling, name", [
    ("wav", "wav"), ("WAVE", "wav"), (" flac ", "flac"), ("ogg", "opus"), ("opus", "opus"), ("mp3", "mp3"),
    ("s16le", "pcm"), ("raw", "pcm"), ("pcm", "pcm"),
])
def test_every_format_spelling(spelling, name):
    assert normalize_format(spelling) == name


@pytest.mark.parametrize("bad", ["aac", "", None, 3, "wav "  "x"])
def test_unknown_format_names_the_supported_ones(bad):
    with pytest.raises(InvalidRequest, match=r"supported: wav \(alias wave\), flac") as info:
        normalize_format(bad)
    assert info.value.field == "format"


def test_download_extension_and_content_type_agree_for_every_format():
    # The public and streaming handlers, the output store and the OpenAPI document all read these.
    assert extension_for("opus") == extension_for("ogg") == "ogg"
    assert {f.extension for f in FORMATS.values()} == set(CONTENT_TYPE_BY_EXTENSION)
    for fmt in FORMATS.values():
        assert CONTENT_TYPE_BY_EXTENSION[fmt.extension] == fmt.content_type
        assert format_for_path(f"x.{fmt.extension}") == fmt.name
    assert set(FORMAT_SPELLINGS) == {s for f in FORMATS.values() for s in (f.name, *f.aliases)}
    assert format_for_path("book.opus") == "opus"


def test_emotion_spellings():
    assert [normalize_emotion(label) for label in EMOTION_LABELS_ZH.values()] == list(EMOTIONS)
    assert normalize_emotion(None) == "neutral"
    assert normalize_emotion(" Happy ") == "happy"
    assert normalize_emotion("hate") == "disgust"
    assert set(EMOTION_ALIASES.values()) <= set(EMOTIONS)
    with pytest.raises(InvalidRequest, match="unknown emotion 'bored'"):
        normalize_emotion("bored")
    with pytest.raises(InvalidRequest, match="must be a string"):
        normalize_emotion(1)


def test_engine_descriptors_are_consistent():
    for engine in ENGINES.values():
        assert engine.default_voice in engine.voices
        assert engine.emotions == EMOTIONS
        assert engine.max_chunk_chars > 0 and engine.pause_s >= 0
        assert not engine.presets or set(engine.presets) == set(EMOTIONS)


def test_importing_the_vocabulary_loads_no_third_party_module():
    # Both processes import it at start: it must never pull numpy, aiohttp or a model runtime in.
    code = ("import sys, tts_vocab, tts_vocab.messages, tts_vocab.fields, tts_vocab.headers, tts_vocab.exit_codes\n"
            "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                 .stdout.split())
    assert not loaded & {"numpy", "aiohttp", "pydantic", "yaml", "torch", "ai_edge_litert", "pypinyin"}

