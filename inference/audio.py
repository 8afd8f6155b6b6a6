"""Audio encoding, resampling and the output guard for synthesised speech.

Role: turn an engine's float32 mono waveform into the bytes a client asked for (wav, flac, opus, mp3, raw pcm),
and refuse waveforms that are obviously broken (NaN, silence, clipping) before they reach a client.

Where it runs:
- in the worker process, and in-process for ``tts-ops synth``: ``check_output`` then ``encode`` on every request;
  ``decode_wav_bytes`` to read Sambert's 16-bit WAV output;
- in the HTTP front end process, which imports only the small streaming helpers (``wav_stream_header``,
  ``pcm16_bytes``, ``silence``) for chunked responses. Importing this module must therefore stay cheap: soundfile
  (loads libsndfile, ~50 ms) and scipy.signal (~0.8 s) are imported inside the functions that need them.

Typical worker use::

    check_output(samples, engine_rate)          # raises EngineFailure -> 5xx, retry elsewhere
    audio = encode(samples, engine_rate, normalize_format(request_format), target_rate=request_rate)
    return audio.data, audio.content_type, audio.sample_rate
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np

from inference.errors import EngineFailure, TextError
from tts_vocab.formats import FORMATS, AudioFormat, normalize_format
from tts_vocab.limits import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE

# --- Rates ---------------------------------------------------------------------------------------------------------

# The client's requested rate is bounded in tts_vocab.limits (8 kHz telephone band .. 48 kHz full band).
MIN_TARGET_RATE = MIN_SAMPLE_RATE
MAX_TARGET_RATE = MAX_SAMPLE_RATE

# --- Output guard thresholds ---------------------------------------------------------------------------------------

# 50 ms is shorter than any Mandarin syllable: a shorter waveform means the engine stopped before speaking.
MIN_DURATION_S = 0.050
# -60 dBFS peak is inaudible at any sane playback volume, so the whole utterance is silence.
SILENCE_PEAK = 1e-3
# -80 dBFS RMS catches a hiss/dither floor with a few stray ticks that get past the peak test. Real speech, even
# mostly pauses, sits around -35..-20 dBFS RMS, so pauses never trip this. (A single loud click in silence
# is NOT caught: its RMS is too high; that would need a per-window energy test.)
SILENCE_RMS = 1e-4
# Samples at |x| >= 0.999 are at full scale; a healthy vocoder touches it on a handful of peaks at most.
CLIP_LEVEL = 0.999
# More than 1% at full scale means a saturated vocoder (buzz, square-wave-like output), not a loud peak.
MAX_CLIPPED_FRACTION = 0.01

# --- Formats -------------------------------------------------------------------------------------------------------
# The format table, its aliases and the suffix rules are the shared vocabulary's (tts_vocab.formats), re-exported
# here for the encoder's callers.

# --- Encoding ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedAudio:
    data: bytes
    format: str
    content_type: str
    sample_rate: int  # the rate actually encoded, which may differ from the one requested (see _codec_rate)
    duration_s: float


def encode(samples: np.ndarray, sample_rate: int, fmt: str, target_rate: int | None = None) -> EncodedAudio:
    """Encode float32 mono samples in [-1, 1] into ``fmt``, in memory.

    ``target_rate`` is the client's requested rate (TextError if outside 8000..48000). Codecs with a fixed rate
    set (Opus, MP3) get the nearest rate at or above the request, so the reported ``sample_rate`` is the truth.
    Run ``check_output`` first: this function encodes whatever it is given, as long as it is not empty.
    """
    audio_format = FORMATS[normalize_format(fmt)]
    samples = _as_mono_float32(samples)
    if samples.size == 0:
        # libsndfile "succeeds" on zero frames with 0 bytes (MP3, FLAC) or a malformed Ogg; fail loudly instead.
        raise EngineFailure(f"nothing to encode: 0 samples for {audio_format.name}")
    _require_rate(sample_rate, "source sample rate")

    wanted_rate = sample_rate if target_rate is None else _validated_target_rate(target_rate)
    rate = _codec_rate(audio_format, wanted_rate)
    if rate != sample_rate:
        samples = resample(samples, sample_rate, rate)

    # The guard tolerates a few full-scale samples and resampling overshoots them: clip so int16 never wraps.
    samples = np.clip(samples, -1.0, 1.0)
    if audio_format.sf_format is None:
        data = pcm16_bytes(samples)
    else:
        data = _soundfile_bytes(samples, rate, audio_format)
    return EncodedAudio(data=data, format=audio_format.name, content_type=audio_format.content_type,
                        sample_rate=rate, duration_s=samples.size / rate)


def _soundfile_bytes(samples: np.ndarray, rate: int, audio_format: AudioFormat) -> bytes:
    import soundfile as sf

    # Lossless formats get the exact int16 we would stream, so wav, flac and pcm carry identical samples.
    # Lossy encoders take float directly; quantising to int16 first would only add noise.
    lossless = audio_format.sf_subtype == "PCM_16"
    payload = _to_int16(samples) if lossless else samples
    buffer = io.BytesIO()
    try:
        # Bitrate is left to the codecs' own defaults (measured on 24 kHz speech: Opus ~22 kbps, MP3 VBR ~17 kbps).
        sf.write(buffer, payload, rate, format=audio_format.sf_format, subtype=audio_format.sf_subtype)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise EngineFailure(f"{audio_format.name} encoding at {rate} Hz failed: {exc}") from exc
    return buffer.getvalue()


def _codec_rate(audio_format: AudioFormat, wanted: int) -> int:
    """The rate to encode at: ``wanted`` if the codec takes it, else the next supported rate up (never down,
    so no bandwidth is thrown away), else the codec's highest."""
    rates = audio_format.sample_rates
    if rates is None or wanted in rates:
        return wanted
    return next((rate for rate in rates if rate >= wanted), rates[-1])


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling to ``to_rate`` (8000..48000 Hz, TextError otherwise) as float32."""
    samples = _as_mono_float32(samples)
    _require_rate(from_rate, "source sample rate")
    _validated_target_rate(to_rate)
    if from_rate == to_rate or samples.size == 0:
        return samples.copy()

    from scipy.signal import resample_poly

    # Reducing by the gcd keeps the polyphase filter short: 24000 -> 16000 is 2/3, not 16000/24000.
    common = math.gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // common, from_rate // common).astype(np.float32, copy=False)


def _validated_target_rate(rate: int) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) \
            or not MIN_TARGET_RATE <= rate <= MAX_TARGET_RATE:
        raise TextError(f"sample rate must be an integer between {MIN_TARGET_RATE} and {MAX_TARGET_RATE} Hz, "
                        f"got {rate!r}")
    return int(rate)


def _require_rate(rate: int, what: str) -> None:
    # A bad source rate is a bug in our engine wrapper, not the client's doing, hence ValueError not TextError.
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ValueError(f"{what} must be a positive integer, got {rate!r}")


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if not np.issubdtype(samples.dtype, np.floating):
        # Integer PCM would silently be read as +-32767.0 and then clipped to a square wave.
        raise ValueError(f"expected float samples in [-1, 1], got dtype {samples.dtype}")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)  # (frames, channels), soundfile's layout
    elif samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,) or (n, channels), got {samples.shape}")
    return np.ascontiguousarray(samples, dtype=np.float32)


def _to_int16(samples: np.ndarray) -> np.ndarray:
    # Scale by 32767 and round, as libsndfile does, so -1.0 and 1.0 map symmetrically and never overflow.
    return np.rint(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


# --- Output guard --------------------------------------------------------------------------------------------------


def check_output(samples: np.ndarray, sample_rate: int) -> None:
    """Raise EngineFailure if the engine's waveform is not something a client should ever hear."""
    samples = _as_mono_float32(samples)
    _require_rate(sample_rate, "sample rate")

    if samples.size == 0:
        raise EngineFailure("engine returned no audio (0 samples)")

    finite = np.isfinite(samples)
    if not finite.all():
        nan_count = int(np.isnan(samples).sum())
        inf_count = int(samples.size - finite.sum()) - nan_count
        raise EngineFailure(f"engine output contains {nan_count} NaN and {inf_count} infinite samples "
                            f"out of {samples.size}")

    duration_s = samples.size / sample_rate
    if duration_s < MIN_DURATION_S:
        raise EngineFailure(f"engine output too short: {duration_s * 1000:.1f} ms "
                            f"(minimum {MIN_DURATION_S * 1000:.0f} ms)")

    magnitude = np.abs(samples)
    peak = float(magnitude.max())
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    if peak < SILENCE_PEAK or rms < SILENCE_RMS:
        raise EngineFailure(f"engine output is silent: peak {peak:.2e} (minimum {SILENCE_PEAK:.0e}), "
                            f"RMS {rms:.2e} (minimum {SILENCE_RMS:.0e})")

    clipped_fraction = float(np.count_nonzero(magnitude >= CLIP_LEVEL)) / samples.size
    if clipped_fraction > MAX_CLIPPED_FRACTION:
        raise EngineFailure(f"engine output is clipped: {clipped_fraction:.1%} of samples at full scale "
                            f"(maximum {MAX_CLIPPED_FRACTION:.0%})")


# --- Streaming helpers (imported by the HTTP front end: numpy and the standard library only) --------------------

# Both RIFF and data sizes unknown: the convention of ffmpeg's and OpenAI's streamed WAV, which players and
# libsndfile accept by reading until end of stream.
_UNKNOWN_SIZE = 0xFFFFFFFF


def wav_stream_header(sample_rate: int, channels: int = 1) -> bytes:
    """The 44-byte RIFF/WAVE PCM16 header that starts a chunked WAV response of unknown length."""
    _require_rate(sample_rate, "sample rate")
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    block_align = channels * 2
    fmt_chunk = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, channels, sample_rate, sample_rate * block_align,
                            block_align, 16)
    return (struct.pack("<4sI4s", b"RIFF", _UNKNOWN_SIZE, b"WAVE") + fmt_chunk
            + struct.pack("<4sI", b"data", _UNKNOWN_SIZE))


def pcm16_bytes(samples: np.ndarray) -> bytes:
    """Float samples as raw s16le, clipped to [-1, 1]: the body chunks of a streamed wav or pcm response."""
    return _to_int16(_as_mono_float32(samples)).tobytes()


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    """``seconds`` of float32 zeros, e.g. to pad between streamed sentences."""
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


# --- Decoding ------------------------------------------------------------------------------------------------------


def decode_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """Decode an engine's WAV bytes (Sambert returns 16-bit PCM) to float32 mono and its sample rate."""
    if not data:
        raise EngineFailure("engine returned empty WAV bytes")

    import soundfile as sf

    try:
        frames, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise EngineFailure(f"engine returned undecodable audio ({len(data)} bytes): {exc}") from exc
    mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)
