"""ModelScope's Sambert-HifiGan multi-emotion Mandarin TTS (16 kHz; voices zhitian_emo, zhiyan_emo, zhizhe_emo,
zhibei_emo) behind the engine contract.

Runs in the worker process. Needs the ``[sambert]`` extra (modelscope, torch, librosa) plus ModelScope's ``kantts``
and ``ttsfrd`` packages from ModelScope's own package index, and the model directory (``tts-ops models pull
sambert-hifigan``). Emotions are rendered natively through Sambert's SSML ``<emotion>`` tag. Sambert has no speed
input, so speed is applied afterwards by librosa's phase-vocoder time stretch, which keeps the pitch.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from inference.engines.base import Engine, EngineInfo, SynthesisParams
from inference.engines.vocoder_accel import VocoderMode, inference_mode, replace_vocoders
from inference.errors import BootError, EngineFailure, TextError
from inference.text.alignment import Timeline
from tts_vocab.engines import SAMBERT_HIFIGAN
from tts_vocab.ssml import Say

log = logging.getLogger("tts_ops.engine")

MODEL_ID = SAMBERT_HIFIGAN.id
MODELSCOPE_ID = "damo/speech_sambert-hifigan_tts_zh-cn_16k"
SAMPLE_RATE = 16000
VOICES = SAMBERT_HIFIGAN.voices
# ModelScope hosts kantts and ttsfrd on its own find-links page (documented in ModelScope's install guide).
MODELSCOPE_FIND_LINKS = "https://modelscope.oss-cn-beijing.aliyuncs.com/releases/repo.html"
# The versions the README's install line and deploy/sambert-constraints.txt pin (a test keeps them equal). PyPI
# holds placeholders under both names (0.1.0: an __init__.py with a hello() and nothing else), which pip picks
# silently when ModelScope's page is unreachable or offers lower versions; the pins make that a resolver error.
RUNTIME_PINS = {"kantts": "1.0.1", "ttsfrd": "0.2.1"}
# What ModelScope's Sambert model and pipeline use of each package (modelscope/models/audio/tts): submodules that
# must exist (found, not imported: they import torch) and attributes of the top-level module.
RUNTIME_MODULES = {
    "kantts": ("kantts.models.model_builder", "kantts.utils.ling_unit.ling_unit",
               "kantts.models.sambert.kantts_sambert", "kantts.models.hifigan.hifigan"),
    "ttsfrd": (),
}
RUNTIME_ATTRIBUTES: dict[str, tuple[str, ...]] = {"kantts": (), "ttsfrd": ("TtsFrontendEngine",)}
INSTALL_LINE = (f"pip install 'tts-ops[sambert]' {' '.join(f'{n}=={v}' for n, v in RUNTIME_PINS.items())} "
                f"-f {MODELSCOPE_FIND_LINKS}")
INSTALL_HINT = (
    "install the Sambert runtime: pip install torch (the CPU build from PyTorch's own index avoids the CUDA "
    f"packages), then {INSTALL_LINE} (or -c deploy/sambert-constraints.txt), "
    "then `tts-ops models pull sambert-hifigan` (or --from-dir PATH for a model you already have)"
)
# Sambert's emotion label for disgust is "hate".
SAMBERT_EMOTION = {"disgust": "hate"}
SPEAKABLE = re.compile(r"[\u3400-\u9fff0-9A-Za-z]")
NOTHING_SPEAKABLE = "text contains nothing speakable"

PipelineFactory = Callable[[str], Callable[..., dict]]


def check_runtime_packages() -> None:
    """BootError unless ``kantts`` and ``ttsfrd`` are ModelScope's real packages at the pinned versions: a
    placeholder imports fine and fails only later, deep inside ModelScope, with an unrelated-looking error."""
    for name in RUNTIME_PINS:
        where = _check_package(name)
        _check_version(name, where)


def _check_package(name: str) -> str:
    """Where ``name`` was imported from, after checking the submodules and attributes the engine uses."""
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise BootError(f"sambert-hifigan runtime package {name} is missing ({exc}); {INSTALL_HINT}") from exc
    where = getattr(module, "__file__", None) or "a namespace package"
    missing = [f"{name}.{attr}" for attr in RUNTIME_ATTRIBUTES[name] if not hasattr(module, attr)]
    for submodule in RUNTIME_MODULES[name]:
        try:
            found = importlib.util.find_spec(submodule) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(submodule)
    if missing:
        raise BootError(f"{name} at {where} is a placeholder, not ModelScope's {name} package: it lacks "
                        f"{', '.join(missing)} (PyPI's {name} 0.1.0 is an empty placeholder); "
                        f"uninstall it (pip uninstall {name}) and {INSTALL_HINT}")
    return where


def _check_version(name: str, where: str) -> None:
    pinned = RUNTIME_PINS[name]
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        raise BootError(f"{name} at {where} has no installed distribution (not installed by pip), so its version "
                        f"cannot be checked against the pinned {pinned}; {INSTALL_HINT}") from None
    if installed != pinned:
        raise BootError(f"{name} {installed} is installed at {where}, not the pinned {pinned}"
                        f"{' (the PyPI placeholder)' if installed == '0.1.0' else ''}; {INSTALL_HINT}")


def modelscope_pipeline(model_dir: str) -> Callable[..., dict]:
    """ModelScope's real pipeline for a local model directory (imports torch, so only called at load), after
    checking that its runtime packages are the real ones."""
    check_runtime_packages()
    try:
        from modelscope.pipelines import pipeline
        from modelscope.utils.constant import Tasks
    except ImportError as exc:
        raise BootError(f"sambert-hifigan needs ModelScope ({exc}); {INSTALL_HINT}") from exc
    try:
        return pipeline(task=Tasks.text_to_speech, model=model_dir)
    except ImportError as exc:  # kantts / ttsfrd missing surface only here
        raise BootError(f"sambert-hifigan runtime package missing ({exc}); {INSTALL_HINT}") from exc
    except Exception as exc:
        raise BootError(f"cannot load sambert-hifigan from {model_dir}: {exc}") from exc


class SambertEngine(Engine):
    id = MODEL_ID
    max_chunk_chars = SAMBERT_HIFIGAN.max_chunk_chars

    def __init__(self, *, store_dir: Path | None = None, threads: int = 1, model_dir: Path | str | None = None,
                 default_voice: str = SAMBERT_HIFIGAN.default_voice, emotion_intensity: float = 1.0,
                 pause_s: float = SAMBERT_HIFIGAN.pause_s, max_chunk_chars: int = SAMBERT_HIFIGAN.max_chunk_chars,
                 vocoder: VocoderMode = "eager", pipeline_factory: PipelineFactory | None = None) -> None:
        if default_voice not in VOICES:
            raise BootError(f"unknown Sambert voice {default_voice!r}; available: {', '.join(VOICES)}")
        self._store_dir = store_dir
        self._threads = threads
        self._model_dir = Path(model_dir) if model_dir else None
        self._default_voice = default_voice
        self._intensity = emotion_intensity
        self.pause_s = pause_s
        self.max_chunk_chars = max_chunk_chars
        self._factory = pipeline_factory or modelscope_pipeline
        self._pipeline: Callable[..., dict] | None = None
        self._version = "unknown"
        self._vocoder: VocoderMode = vocoder

    def load(self) -> None:
        model_dir = self._locate_model()
        self._limit_threads()
        self._pipeline = self._factory(str(model_dir))
        replace_vocoders(self._pipeline, self._vocoder)
        log.info("loaded %s from %s (threads=%d)", MODEL_ID, model_dir, self._threads)

    def _locate_model(self) -> Path:
        if self._model_dir is not None:
            if not (self._model_dir / "configuration.json").is_file():
                raise BootError(f"{self._model_dir} is not a Sambert model directory (no configuration.json); "
                                f"{INSTALL_HINT}")
            self._version = self._model_dir.name
            return self._model_dir
        from inference.models.store import ModelStore, default_store_dir

        store = ModelStore(self._store_dir or default_store_dir())
        if not store.is_pulled(MODEL_ID):
            raise BootError(f"sambert-hifigan model is not in the store {store.root}; {INSTALL_HINT}")
        store.verify(MODEL_ID)
        self._version = store.manifest(MODEL_ID).get("version", "unknown")
        return store.path(MODEL_ID)

    def _limit_threads(self) -> None:
        try:
            import torch
        except ImportError:  # the stand-in pipeline in tests runs without torch
            return
        torch.set_num_threads(self._threads)

    def info(self) -> EngineInfo:
        return EngineInfo(MODEL_ID, self._version, SAMPLE_RATE, VOICES, self._default_voice)

    def split(self, text: str) -> list[str]:
        from inference.text.chunking import split_chunks

        chunks = [chunk for chunk in split_chunks(text, self.max_chunk_chars) if SPEAKABLE.search(chunk)]
        if not chunks:
            raise TextError(NOTHING_SPEAKABLE)
        return chunks

    def ssml(self, text: str, emotion: str) -> str:
        """Sambert's emotion markup; neutral text is sent as plain text, as ModelScope's examples do."""
        if emotion == "neutral":
            return text
        return self._speak(escape(text), emotion)

    def _speak(self, markup: str, emotion: str) -> str:
        """``markup`` (already escaped) as a Sambert SSML document, inside ``<emotion>`` unless neutral."""
        if emotion == "neutral":
            return f"<speak>{markup}</speak>"
        category = SAMBERT_EMOTION.get(emotion, emotion)
        return f'<speak><emotion category="{category}" intensity="{self._intensity:.2f}">{markup}</emotion></speak>'

    def synthesize_run(self, run: Sequence[Say], params: SynthesisParams,
                       timeline: Timeline | None = None) -> np.ndarray:
        """An SSML run. With a ``<phoneme>`` in it the run is one Sambert SSML document, the reading passed natively
        (``<phoneme alphabet="py" ph="hang2">行</phoneme>``, Sambert's own SSML, as Aliyun's TTS writes it)."""
        if not any(segment.pinyin for segment in run) or timeline is not None:
            return super().synthesize_run(run, params, timeline)  # timed: refused there, as every timed request
        markup = "".join(f'<phoneme alphabet="py" ph="{" ".join(s.pinyin)}">{escape(s.text)}</phoneme>' if s.pinyin
                         else escape(s.text) for s in run)
        return self._synthesize_input(self._speak(markup, params.emotion), "".join(s.text for s in run), params)

    def synthesize_chunk(self, text: str, params: SynthesisParams) -> np.ndarray:
        return self._synthesize_input(self.ssml(text, params.emotion), text, params)

    def _synthesize_input(self, pipeline_input: str, text: str, params: SynthesisParams) -> np.ndarray:
        """The pipeline's audio for ``pipeline_input`` (plain text or SSML) whose spoken text is ``text``."""
        if self._pipeline is None:
            raise EngineFailure(f"{MODEL_ID} engine used before load()")
        voice = self.resolve_voice(params.voice)
        if not SPEAKABLE.search(text):
            # The front end streams raw chunks here; an emoji-only one is the client's text, not an engine fault.
            raise TextError(NOTHING_SPEAKABLE)
        try:
            from modelscope.outputs import OutputKeys

            key = OutputKeys.OUTPUT_WAV
        except ImportError:
            key = "output_wav"
        try:
            with inference_mode():  # no autograd bookkeeping (section 5 of the reference article)
                output = self._pipeline(input=pipeline_input, voice=voice)
            samples, rate = _decode(output[key])
        except EngineFailure:
            raise
        except Exception as exc:
            raise EngineFailure(f"{MODEL_ID} inference failed: {exc}") from exc
        if rate != SAMPLE_RATE:
            from inference.audio import resample

            samples = resample(samples, rate, SAMPLE_RATE)
        return _stretch(samples, params.speed)

    def close(self) -> None:
        self._pipeline = None


def _decode(wav: Any) -> tuple[np.ndarray, int]:
    from inference.audio import decode_wav_bytes

    if not isinstance(wav, (bytes, bytearray)) or not wav:
        raise EngineFailure(f"{MODEL_ID} returned no WAV bytes (got {type(wav).__name__})")
    return decode_wav_bytes(bytes(wav))


def _stretch(samples: np.ndarray, speed: float) -> np.ndarray:
    if abs(speed - 1.0) < 1e-3:
        return samples
    try:
        import librosa
    except ImportError as exc:
        raise EngineFailure(f"speed {speed} needs librosa for Sambert ({exc}); {INSTALL_HINT}") from exc
    return librosa.effects.time_stretch(samples, rate=speed).astype(np.float32)
