"""MOS prediction with Distill-MOS (ConvTransformerSQAModel, variant 7) on CPU torch, without torchaudio.

``distillmos`` imports torchaudio at module level but only uses it to read files in its own command line, and
torchaudio often fails to import against a CPU-only torch build. So audio is read with soundfile, resampled to
16 kHz here, and distillmos is imported with a placeholder ``torchaudio`` when the real one is absent. The weights
are read once, checked against a pinned sha256 and loaded from those same bytes (nothing is read twice, nothing
is downloaded).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import logging
import os
import sys
import types
from importlib import resources
from os import PathLike
from typing import Any

import numpy as np

from inference.audio import resample
from inference.errors import BootError, InferenceError

log = logging.getLogger("tts_ops.quality")

MODEL_RATE = 16000
MODEL_NAME = "distillmos"
MODEL_VERSION = "0.9.1"
WEIGHTS_FILE = "weights/distill_mos_v7.pt"
WEIGHTS_SHA256 = "b18b3ac60227267cfb91e5d00ce22cc7b73716fd92f269484da1446e27031a40"
INSTALL_HINT = ("install a CPU build of torch (pip install torch --index-url https://download.pytorch.org/whl/cpu), "
                "then pip install 'tts-ops[quality]'")
# Shorter than this the model sees almost only padding and its score says nothing.
MIN_SECONDS = 0.25


class ScorerUnavailable(BootError):
    """The MOS model cannot be loaded: torch or distillmos is not installed, or its weights are missing or altered.
    A scorer process exits with EXIT_BOOT_FAILURE on it, so it is not restarted in a loop."""


class AudioFileError(InferenceError):
    """An audio file (or buffer) cannot be scored: unreadable, empty, too short or not finite. Names the file."""


def load_audio(path: str | PathLike[str]) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of any file soundfile reads (wav, flac, ogg/opus, mp3...)."""
    import soundfile as sf

    if not os.path.exists(path):
        raise AudioFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioFileError(f"{path}: is a directory")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFileError(f"{path}: cannot read audio ({exc})") from None
    except OSError as exc:
        raise AudioFileError(f"{path}: {exc.strerror or exc}") from None
    return samples.mean(axis=1).astype(np.float32, copy=False), int(rate)


class MosScorer:
    """A loaded Distill-MOS model. ``score`` is synchronous and CPU-bound (about 0.1 s per second of audio on one
    core); not thread-safe, callers serialise (the scorer process runs one at a time)."""

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._model: Any = None

    def load(self) -> MosScorer:
        torch = _import_torch()
        module = _import_distillmos()
        state = torch.load(io.BytesIO(read_verified_weights()), map_location="cpu", weights_only=True)
        torch.set_num_threads(self._threads)
        model = module.ConvTransformerSQAModel(load_weights=False)
        try:
            model.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as exc:
            raise ScorerUnavailable(f"{MODEL_NAME} weights do not fit its model ({exc}); reinstall {MODEL_NAME}"
                                    f"=={MODEL_VERSION}") from exc
        self._model = model.eval()
        log.info("loaded %s %s (threads=%d)", MODEL_NAME, MODEL_VERSION, self._threads)
        return self

    def score(self, samples: np.ndarray, rate: int, name: str = "audio") -> float:
        """Predicted MOS (1..5) of mono float samples at ``rate`` Hz; ``name`` labels errors."""
        if self._model is None:
            raise InferenceError("MosScorer used before load()")
        wave = _model_input(samples, rate, name)
        import torch  # heavy optional dependency, imported by load() already

        with torch.inference_mode():
            value = float(self._model(torch.from_numpy(wave)[None, :]).reshape(-1)[0])
        return value

    def score_file(self, path: str | PathLike[str]) -> float:
        samples, rate = load_audio(path)
        return self.score(samples, rate, name=str(path))


def _model_input(samples: np.ndarray, rate: int, name: str) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size < MIN_SECONDS * rate:
        raise AudioFileError(f"{name}: too short to score ({samples.size / max(rate, 1):.2f} s of audio, "
                             f"at least {MIN_SECONDS} s needed)")
    if not np.all(np.isfinite(samples)):
        raise AudioFileError(f"{name}: audio holds NaN or infinite samples")
    if not np.any(samples):
        raise AudioFileError(f"{name}: audio is digital silence")
    wave = samples if rate == MODEL_RATE else resample(samples, rate, MODEL_RATE)
    return np.ascontiguousarray(wave, dtype=np.float32)


def read_verified_weights() -> bytes:
    """The checkpoint's bytes from the installed distillmos wheel, checked against WEIGHTS_SHA256."""
    try:
        data = resources.files(MODEL_NAME).joinpath(WEIGHTS_FILE).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise ScorerUnavailable(f"{MODEL_NAME} weights not found ({exc}); {INSTALL_HINT}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise ScorerUnavailable(f"{MODEL_NAME} weights {WEIGHTS_FILE} have sha256 {digest}, expected "
                                f"{WEIGHTS_SHA256}; reinstall {MODEL_NAME}=={MODEL_VERSION}")
    return data


def _import_torch() -> Any:
    try:
        import torch  # heavy optional dependency (the quality extra): only a scorer pays for it
    except ImportError as exc:
        raise ScorerUnavailable(f"torch is not installed ({exc}); {INSTALL_HINT}") from exc
    return torch


def _import_distillmos() -> Any:
    """``distillmos.sqa`` imported even where torchaudio is missing or broken (it is only used by distillmos's
    own file reader, which we do not call). The placeholder never stays in ``sys.modules``."""
    previous: Any = sys.modules.get("torchaudio", _ABSENT)  # a module, _ABSENT, or None (an import blocker)
    placeholder = None
    try:
        importlib.import_module("torchaudio")
    except Exception:  # ImportError, or OSError/RuntimeError from a torchaudio built against another torch
        placeholder = sys.modules["torchaudio"] = types.ModuleType("torchaudio")
    try:
        return importlib.import_module(f"{MODEL_NAME}.sqa")
    except ImportError as exc:
        raise ScorerUnavailable(f"{MODEL_NAME} cannot be imported ({exc}); {INSTALL_HINT}") from exc
    finally:
        if placeholder is not None and sys.modules.get("torchaudio") is placeholder:
            if previous is _ABSENT:
                del sys.modules["torchaudio"]
            else:
                sys.modules["torchaudio"] = previous


_ABSENT = object()
