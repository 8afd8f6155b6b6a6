"""Cache keys: deterministic, sensitive to every field, insensitive to trivial text variants."""

from __future__ import annotations

import re

import pytest

from tts_ops.cache import cache_key, normalize_text

BASE = dict(engine="sambert-hifigan", model_version="1.0.2", voice="zhitian_emo", emotion="happy", speed=1.0,
            fmt="wav", sample_rate=16000, text="今天天气不错。")


def key(**changes) -> str:
    return cache_key("tts-ops:", **{**BASE, **changes})


def test_golden_key_is_pinned():
    # The key scheme is a deployed contract: changing it (the document's fields, their normalisation, the JSON
    # encoding, the hash or KEY_VERSION) turns every entry in every deployed cache into a miss. If this literal
    # has to change, the change must be deliberate: bump KEY_VERSION and say so in the release notes.
    # Version 2: the worker settings that change the audio (presets, loudness target: ``render``) joined the key.
    assert cache_key("tts-ops:", engine="sambert-hifigan", model_version="1.0.2", voice="zhitian_emo",
                     emotion="happy", speed=1.0, fmt="wav", sample_rate=16000, text="今天天气不错。") == (
        "tts-ops:audio:e610ac9f354e0696d029d91007be9719f4ec9439e6a821bcd3151397829504e7")


def test_shape_and_determinism():
    k = key()
    assert re.fullmatch(r"tts-ops:audio:[0-9a-f]{64}", k)
    assert key() == k
    assert cache_key("other:", **BASE) == "other:" + k[len("tts-ops:"):]


@pytest.mark.parametrize("field, value", [
    ("engine", "fastspeech2-baker"), ("model_version", "1.0.3"), ("voice", "zhiyan_emo"), ("emotion", "sad"),
    ("speed", 1.25), ("fmt", "mp3"), ("sample_rate", 22050), ("sample_rate", None), ("text", "今天天气很好。"),
    ("render", "0123456789abcdef"),
])
def test_every_field_changes_the_key(field, value):
    assert key(**{field: value}) != key()


@pytest.mark.parametrize("variant", [
    "  今天天气不错。  ",       # surrounding spaces
    "今天天气不错。\n",         # trailing newline
    "\u3000今天天气不错。",      # ideographic space (NFKC -> space, then stripped)
    "今天 天气  不错。",         # inner whitespace runs are collapsed, not removed
])
def test_trivial_variants(variant):
    if " " in variant.strip():
        assert key(text=variant) == key(text="今天 天气 不错。") != key()
    else:
        assert key(text=variant) == key()


def test_nfkc_and_whitespace_collapse():
    assert key(text="ＡＢＣ　１２３") == key(text="ABC 123")
    assert key(text="hello   \t\n world") == key(text="hello world")
    assert normalize_text("  a\u3000\u3000b\r\nc ") == "a b c"


def test_speed_rounding_and_types():
    assert key(speed=1) == key(speed=1.0) == key(speed=1.0000001)
    assert key(speed=1.2344) != key(speed=1.2346)
    with pytest.raises(ValueError, match=r"^speed must be finite, got nan$"):
        key(speed=float("nan"))


def test_timed_entries_are_keyed_apart_and_by_the_exact_text():
    # The golden key above is unchanged: the flag is only in the document when set.
    assert key(timestamps=True) != key() and key(timestamps=False) == key()
    # Without timestamps two spellings share audio; timestamps name the characters, so they do not.
    assert key(text="今天 天气") == key(text="今天  天气")
    assert key(text="今天 天气", timestamps=True) != key(text="今天  天气", timestamps=True)
