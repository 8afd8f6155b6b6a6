"""A descriptor per TTS engine (all processes): what the daemon, the CLI and the worker need to know about an engine
without importing it (engine modules pull in LiteRT or torch).

The config schema takes its engine ids, voices and default presets from here, the front end its chunking and
voices, ``tts-ops serve`` whether a model must be pulled first, and ``inference.engines`` which class to build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tts_vocab.emotions import EMOTIONS
from tts_vocab.errors import InvalidRequest

#: Preset keys of the bundled voice: model controls (ratios), then what inference/prosody.py does to the waveform
#: (gain, pitch level, pauses at clause punctuation, sentence-final rise, energy slope, pitch slope, brightness).
PRESET_KEYS = ("f0_ratio", "energy_ratio", "duration_ratio", "gain_db", "pitch_st", "pause_s", "rise_st", "tilt_db",
               "slope_st", "bright_db")

# FastSpeech2's variance adaptor normalises pitch and energy, so f0_ratio widens or narrows the pitch *range*
# (intonation), energy_ratio moves loudness only slightly, and duration_ratio sets the tempo; the waveform keys are
# inference/prosody.py's (pitch level by varispeed, clause pauses, final rise, energy slope, pitch slope over the
# utterance, voice brightness) and the gain. The service normalises loudness (audio.loudness_lufs), so gain_db only
# matters to the engine's direct users: the emotions are told apart by tempo, pitch level, range and contour,
# pauses, energy contour and brightness. Tuned 2026-12-07 with bench/quality.py on the normalised output (README
# "Speech quality"): every emotion's predicted MOS within 0.2 of neutral's. Lowering the pitch level costs MOS
# (angry at -2 st: 3.64 vs 4.10 on 11 sentences: varispeed lowers the formants too), so angry falls instead.
# Config overrides these.
_FASTSPEECH2_TABLE = {
    #          f0_ratio energy duration gain_db pitch_st pause_s rise_st tilt_db slope_st bright_db
    "neutral": (1.0,    1.0,   1.0,     0.0,    0.0,     0.0,    0.0,    0.0,    0.0,     0.0),
    "happy": (1.3,      1.1,   0.82,    1.5,    3.0,     0.0,    0.0,    2.0,    0.0,     0.0),
    "sad": (0.6,        0.9,   1.2,     -4.0,   -1.0,    0.0,    0.0,    -5.0,   -3.0,    -1.5),
    "angry": (1.3,      1.1,   0.88,    4.0,    0.0,     0.0,    0.0,    6.0,    -3.0,    6.0),
    "fear": (1.4,       0.9,   1.05,    -3.0,   4.0,     0.3,    0.0,    0.0,    0.0,     -2.0),
    "surprise": (1.7,   1.1,   1.04,    2.0,    1.0,     0.0,    12.0,   0.0,    4.0,     0.0),
    "disgust": (0.7,    1.0,   1.15,    -1.0,   0.0,     0.0,    0.0,    6.0,    0.0,     3.0),
}
FASTSPEECH2_PRESETS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    name: MappingProxyType(dict(zip(PRESET_KEYS, row, strict=True))) for name, row in _FASTSPEECH2_TABLE.items()})


@dataclass(frozen=True)
class EngineDescriptor:
    """What is known about an engine before it is loaded."""

    id: str
    #: Voice ids the engine offers; the first one is its default unless ``default_voice`` says otherwise.
    voices: tuple[str, ...]
    default_voice: str
    #: Most characters per synthesis chunk, and the pause between chunks (engine defaults; config may override).
    max_chunk_chars: int
    pause_s: float
    #: True when ``tts-ops models pull`` fetches its model (False: the operator provides it, e.g. Sambert).
    pullable: bool
    #: The config section holding its settings (``engines.<section>``).
    config_section: str
    emotions: tuple[str, ...] = EMOTIONS
    #: Default emotion presets (engines that render emotions by prosody controls); empty for native emotions.
    presets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    #: True when the engine reports exact per-character times (``"timestamps": true``, captions); else a 400.
    timestamps: bool = False


FASTSPEECH2_BAKER = EngineDescriptor(
    id="fastspeech2-baker", voices=("baker",), default_voice="baker", max_chunk_chars=60, pause_s=0.25,
    pullable=True, config_section="fastspeech2_baker", presets=FASTSPEECH2_PRESETS, timestamps=True)
SAMBERT_HIFIGAN = EngineDescriptor(
    id="sambert-hifigan", voices=("zhitian_emo", "zhiyan_emo", "zhizhe_emo", "zhibei_emo"),
    default_voice="zhitian_emo", max_chunk_chars=100, pause_s=0.25, pullable=False,
    config_section="sambert_hifigan")

ENGINES: Mapping[str, EngineDescriptor] = MappingProxyType({e.id: e for e in (FASTSPEECH2_BAKER, SAMBERT_HIFIGAN)})
ENGINE_IDS: tuple[str, ...] = tuple(ENGINES)
SAMBERT_VOICES: tuple[str, ...] = SAMBERT_HIFIGAN.voices
#: Every voice id any engine offers, plus "default" (the configured engine's default voice).
VOICE_IDS: tuple[str, ...] = ("default", *(voice for e in ENGINES.values() for voice in e.voices))


def engine_descriptor(engine_id: str) -> EngineDescriptor:
    """The descriptor of ``engine_id``; InvalidRequest (field ``engine``) naming the known ones."""
    try:
        return ENGINES[engine_id]
    except KeyError:
        raise InvalidRequest(f"unknown engine {engine_id!r}; available: {', '.join(ENGINE_IDS)}", "engine") from None
