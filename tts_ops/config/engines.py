"""Configuration of the TTS engines (``engines.*``): the model store, the OpenAI voice map, and each engine's
section, including the bundled voice's emotion presets. Part of the schema (``tts_ops.config.schema`` holds the
root model); read by the daemon and the CLI, and turned into the workers' engine options.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from tts_ops.config.fields import FilePath, Section, cross
from tts_ops.errors import ConfigError
from tts_vocab.emotions import EMOTIONS
from tts_vocab.engines import ENGINE_IDS, FASTSPEECH2_BAKER, FASTSPEECH2_PRESETS, SAMBERT_HIFIGAN, VOICE_IDS

# Literal types for pydantic's strict validation and JSON schema; tests/tts_ops/config/test_vocabulary.py checks
# they list exactly the shared vocabulary's ids (tts_vocab.engines), which every other module uses.
EngineName = Literal["fastspeech2-baker", "sambert-hifigan"]
SambertVoice = Literal["zhitian_emo", "zhiyan_emo", "zhizhe_emo", "zhibei_emo"]
OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer", "ash", "coral", "sage", "ballad", "verse",
                 "marin", "cedar")


Ratio = Annotated[float, Field(ge=0.5, le=2.0)]


class EmotionPreset(Section):
    """Prosody of one emotion for the bundled voice, applied to the neutral prediction."""

    f0_ratio: Ratio = Field(1.0, description="Pitch-range multiplier, 0.5..2.0 (FastSpeech2 scales its normalised F0).")
    energy_ratio: Ratio = Field(1.0, description="Energy multiplier, 0.5..2.0 (a small loudness change).")
    duration_ratio: Ratio = Field(1.0, description="Duration multiplier, 0.5..2.0; above 1 speaks slower.")
    gain_db: float = Field(0.0, ge=-20, le=6,
                           description="Output gain in dB, -20..6; peaks are limited to avoid clipping.")
    pitch_st: float = Field(0.0, ge=-6, le=6,
        description="Pitch level in semitones, -6..6, by varispeed after the vocoder (the timbre moves with it).")
    pause_s: float = Field(0.0, ge=0, le=1,
        description="Silence at clause punctuation in seconds, 0..1 (clauses rendered one by one); 0 = the model's.")
    rise_st: float = Field(0.0, ge=0, le=12,
        description="Sentence-final pitch glide up in semitones over the last ~0.45 s of each chunk, 0..12.")
    tilt_db: float = Field(0.0, ge=-12, le=12,
        description="Energy slope over each chunk in dB, end minus start, -12..12 (negative fades out).")
    slope_st: float = Field(0.0, ge=-6, le=6,
        description="Pitch slope over each chunk in semitones, end minus start, -6..6 (negative declines).")
    bright_db: float = Field(0.0, ge=-6, le=6,
        description="Voice quality: energy above 1 kHz in dB, -6..6 (positive tense/bright, negative lax/dark).")


def _default_emotions() -> dict[str, EmotionPreset]:
    # One source of truth: the engine's defaults in the shared vocabulary (measured in inference/engines).
    return {name: EmotionPreset(**values) for name, values in FASTSPEECH2_PRESETS.items()}


class FastSpeech2BakerConfig(Section):
    """Bundled FastSpeech2 voice (Baker corpus); emotions are emulated by prosody presets."""

    pause_s: float = Field(0.25, ge=0, le=5, description="Silence inserted between synthesized chunks, in seconds.")
    max_chunk_chars: int = Field(60, gt=0,
        description="Longest chunk fed to the model at once, in characters (split at punctuation).")
    emotions: dict[str, EmotionPreset] = Field(default_factory=_default_emotions,
        description="Prosody preset per emotion; replaces the default wholesale, so list all seven emotions.")
    lexicon: FilePath | None = Field(None,
        description="Pronunciation dictionary, one '词<TAB>pinyin with tones' per line (# comments); validated at "
                    "start and on SIGHUP (a bad line keeps the running dictionary); null = none.")

    @field_validator("emotions")
    @classmethod
    def _all_emotions(cls, emotions: dict[str, EmotionPreset]) -> dict[str, EmotionPreset]:
        # Requests may ask for any of the seven; a missing preset would only fail at request time.
        missing = [e for e in EMOTIONS if e not in emotions]
        unknown = [e for e in emotions if e not in EMOTIONS]
        if missing or unknown:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
            raise ValueError(f"{'; '.join(parts)}: keys must be exactly {', '.join(EMOTIONS)}")
        return emotions

    @property
    def default_voice(self) -> str:
        return FASTSPEECH2_BAKER.default_voice

    def chunking(self) -> tuple[int, float]:
        """(max_chunk_chars, pause_s): how long text is split, the same in the worker and the stream producer."""
        return self.max_chunk_chars, self.pause_s

    def engine_options(self) -> dict[str, Any]:
        """Keyword options of the engine's constructor (``create_engine``), JSON-serialisable for the worker."""
        options = {"emotions": {name: preset.model_dump() for name, preset in self.emotions.items()},
                   "pause_s": self.pause_s, "max_chunk_chars": self.max_chunk_chars}
        if self.lexicon is not None:
            options["lexicon"] = str(self.lexicon)
        return options


class SambertHifiganConfig(Section):
    """ModelScope Sambert-HifiGan multi-emotion voices (optional extra: pip install tts-ops[sambert])."""

    model_dir: FilePath | None = Field(None,
        description="Directory of the Sambert-HifiGan models; null = inside engines.model_dir (model store layout).")
    default_voice: SambertVoice = Field("zhitian_emo",
        description="Voice used when a request names none (or maps to 'default').")
    emotion_intensity: float = Field(1.0, ge=0.1, le=2.0,
        description="Strength of the emotion embedding, 0.1..2.0; 1.0 = as trained.")
    vocoder: Literal["eager", "jit", "onnx"] = Field("eager",
        description="How the HiFi-GAN vocoder runs when the model exposes it: eager (as shipped), jit (torch.jit), "
                    "onnx (ONNX Runtime, extra 'onnx'); speed-ups on the real weights are unmeasured here.")

    def chunking(self) -> tuple[int, float]:
        """(max_chunk_chars, pause_s): not configurable for Sambert, the engine's own defaults."""
        return SAMBERT_HIFIGAN.max_chunk_chars, SAMBERT_HIFIGAN.pause_s

    def engine_options(self) -> dict[str, Any]:
        """Keyword options of the engine's constructor (``create_engine``), JSON-serialisable for the worker."""
        options: dict[str, Any] = {"default_voice": self.default_voice, "emotion_intensity": self.emotion_intensity,
                                   "vocoder": self.vocoder}
        if self.model_dir is not None:
            options["model_dir"] = str(self.model_dir)
        return options


def _default_voice_map() -> dict[str, str]:
    return {voice: "default" for voice in OPENAI_VOICES}


class EnginesConfig(Section):
    """Models and per-engine synthesis settings, loaded inside the worker processes."""

    model_dir: FilePath | None = Field(None,
        description="Model store directory; null = <user cache dir>/tts-ops/models.")
    voice_map: dict[str, str] = Field(default_factory=_default_voice_map,
        description="OpenAI voice name -> engine voice id ('default' = the engine's own voice); replaces the defaults.")
    fastspeech2_baker: FastSpeech2BakerConfig = Field(default_factory=FastSpeech2BakerConfig,
        description="Settings of the fastspeech2-baker engine.")
    sambert_hifigan: SambertHifiganConfig = Field(default_factory=SambertHifiganConfig,
        description="Settings of the sambert-hifigan engine.")

    @field_validator("voice_map")
    @classmethod
    def _known_voices(cls, voice_map: dict[str, str]) -> dict[str, str]:
        # Checked against every engine's ids, not just workers.engine's: switching engine by flag or env during an
        # incident must not make the daemon refuse to start; a voice the running engine lacks is a 400 per request.
        for name, voice in voice_map.items():
            if voice not in VOICE_IDS:
                raise cross(str(name), f"unknown voice id {voice!r}; expected one of {', '.join(VOICE_IDS)}")
        return voice_map

    def section(self, engine_id: str) -> FastSpeech2BakerConfig | SambertHifiganConfig:
        """The settings of one engine (its descriptor names the section; ``workers.engine`` is validated)."""
        if engine_id == FASTSPEECH2_BAKER.id:
            return self.fastspeech2_baker
        if engine_id == SAMBERT_HIFIGAN.id:
            return self.sambert_hifigan
        raise ConfigError(f"unknown engine {engine_id!r}; available: {', '.join(ENGINE_IDS)}")
