"""Tests for inference.audio: formats, encoding round trips, resampling, the output guard, streaming, decoding."""

import io
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference.audio import (
    FORMATS,
    EncodedAudio,
    check_output,
    decode_wav_bytes,
    encode,
    normalize_format,
    pcm16_bytes,
    resample,
    silence,
    wav_stream_header,
)
from inference.errors import EngineFailure, TextError
from tts_vocab.errors import InvalidRequest
from tts_vocab.formats import format_for_path

RATE = 24000


def speech_like(seconds: float = 2.0, rate: int = RATE) -> np.ndarray:
    """Voiced harmonics on a gliding pitch, syllable-rate envelope and real pauses: what a vocoder emits."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    pauses = np.sin(2 * np.pi * 0.4 * t) > -0.5
    signal = voiced * syllables * pauses
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like()


def decode(audio: EncodedAudio) -> tuple[np.ndarray, int, int]:
    """(samples, rate, channels) of encoded audio, read back independently of inference.audio."""
    if audio.format == "pcm":
        return np.frombuffer(audio.data, dtype="<i2").astype(np.float32) / 32768, audio.sample_rate, 1
    frames, rate = sf.read(io.BytesIO(audio.data), dtype="float32", always_2d=True)
    return frames[:, 0], rate, frames.shape[1]


# --- encode ----------------------------------------------------------------------------------------------------------

# Lossless formats must round-trip sample-exactly; lossy ones within one codec frame
# (Opus 20 ms = 480 samples at 24 kHz, MPEG-2 layer III 576 samples).
LENGTH_TOLERANCE = {"wav": 0, "flac": 0, "pcm": 0, "opus": 480, "mp3": 576}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_round_trips_with_rate_channels_and_length(speech, fmt):
    audio = encode(speech, RATE, fmt)

    decoded, rate, channels = decode(audio)
    assert (audio.format, audio.content_type) == (fmt, FORMATS[fmt].content_type)
    assert rate == audio.sample_rate == RATE
    assert channels == 1
    assert abs(decoded.size - speech.size) <= LENGTH_TOLERANCE[fmt]
    assert audio.duration_s == pytest.approx(speech.size / RATE)


@pytest.mark.parametrize("fmt", ["wav", "flac", "pcm"])
def test_lossless_formats_keep_samples_within_one_lsb(speech, fmt):
    decoded, _, _ = decode(encode(speech, RATE, fmt))
    assert np.max(np.abs(decoded - speech)) <= 1.5 / 32768


@pytest.mark.parametrize("fmt", ["opus", "mp3"])
def test_lossy_formats_stay_close_to_the_input(speech, fmt):
    decoded, _, _ = decode(encode(speech, RATE, fmt))
    n = min(decoded.size, speech.size)
    relative_error = np.sqrt(np.mean((decoded[:n] - speech[:n]) ** 2) / np.mean(speech[:n] ** 2))
    assert relative_error < 0.3


def test_pcm_is_headerless_little_endian_s16(speech):
    audio = encode(speech, RATE, "pcm")
    assert len(audio.data) == 2 * speech.size
    assert audio.data == pcm16_bytes(speech)


def test_aliases_are_accepted_by_encode(speech):
    audio = encode(speech, RATE, "OGG")
    assert audio.format == "opus" and audio.content_type == "audio/ogg"
    assert sf.info(io.BytesIO(audio.data)).subtype == "OPUS"


@pytest.mark.parametrize(
    ("fmt", "target", "expected"),
    [
        ("wav", 16000, 16000),
        ("wav", 22050, 22050),
        ("opus", 22050, 24000),  # libsndfile's Opus only takes 8/12/16/24/48 kHz: round up, report the truth
        ("opus", 44100, 48000),
        ("opus", 16000, 16000),
        ("mp3", 22050, 22050),
        ("mp3", 10000, 11025),
    ],
)
def test_target_rate_is_honoured_or_rounded_up_to_a_codec_rate(speech, fmt, target, expected):
    audio = encode(speech, RATE, fmt, target_rate=target)

    decoded, rate, _ = decode(audio)
    assert audio.sample_rate == rate == expected
    assert abs(decoded.size - round(speech.size * expected / RATE)) <= LENGTH_TOLERANCE[fmt] + 1
    assert audio.duration_s == pytest.approx(speech.size / RATE, abs=1e-3)


def test_source_rate_unsupported_by_opus_is_resampled(speech):
    at_22050 = resample(speech, RATE, 22050)
    audio = encode(at_22050, 22050, "opus")
    assert audio.sample_rate == 24000
    assert sf.info(io.BytesIO(audio.data)).samplerate == 24000


@pytest.mark.parametrize("target", [7999, 48001, 0, -16000, 16000.0, True])
def test_target_rate_out_of_range_is_the_clients_mistake(speech, target):
    with pytest.raises(TextError, match="8000 and 48000"):
        encode(speech, RATE, "wav", target_rate=target)


def test_out_of_range_samples_are_clipped_not_wrapped():
    samples = np.array([1.5, -1.5, 1.0, -1.0, 0.0] * 1000, dtype=np.float32)
    pcm = np.frombuffer(encode(samples, RATE, "pcm").data, dtype="<i2")
    assert pcm[:5].tolist() == [32767, -32767, 32767, -32767, 0]
    decoded, _, _ = decode(encode(samples, RATE, "wav"))
    assert decoded.max() <= 1.0 and decoded.min() >= -1.0 and decoded[0] > 0.99


def test_encoding_nothing_is_an_engine_failure():
    with pytest.raises(EngineFailure, match="0 samples"):
        encode(np.zeros(0, np.float32), RATE, "mp3")


def test_integer_samples_are_refused(speech):
    with pytest.raises(ValueError, match="float"):
        encode((speech * 32767).astype(np.int16), RATE, "wav")


# --- resample --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("to_rate", [16000, 48000, 22050, 8000])
def test_resample_length_and_dtype(speech, to_rate):
    out = resample(speech, RATE, to_rate)
    assert out.dtype == np.float32
    assert out.size == round(speech.size * to_rate / RATE)


def test_resample_preserves_a_tone():
    tone = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
    out = resample(tone, RATE, 16000)
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * 16000 / out.size == pytest.approx(440, abs=1)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) == pytest.approx(np.sqrt(0.5), rel=0.01)


def test_resample_to_the_same_rate_is_identity(speech):
    out = resample(speech, RATE, RATE)
    assert np.array_equal(out, speech) and out is not speech


def test_resample_rejects_rates_outside_the_allowed_range(speech):
    with pytest.raises(TextError):
        resample(speech, RATE, 96000)


# --- format names --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("wav", "wav"), ("WAV", "wav"), (" wave ", "wav"), ("flac", "flac"), ("opus", "opus"), ("ogg", "opus"),
     ("Mp3", "mp3"), ("pcm", "pcm"), ("s16le", "pcm"), ("raw", "pcm")],
)
def test_normalize_format_aliases(name, expected):
    assert normalize_format(name) == expected


def test_unknown_format_error_lists_supported_formats():
    with pytest.raises(InvalidRequest) as excinfo:
        normalize_format("aac")
    message = str(excinfo.value)
    assert "'aac'" in message
    for name in ("wav", "flac", "opus", "ogg", "mp3", "pcm"):
        assert name in message


def test_format_table_is_consistent():
    for name, audio_format in FORMATS.items():
        assert audio_format.name == name
        assert format_for_path(f"out.{audio_format.extension}") == name
        if audio_format.sf_format is not None:
            assert sf.check_format(audio_format.sf_format, audio_format.sf_subtype)
    with pytest.raises(TypeError):
        FORMATS["aac"] = FORMATS["wav"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a.wav", "wav"), (Path("/tmp/b.FLAC"), "flac"), ("c.ogg", "opus"), ("d.opus", "opus"), ("e.mp3", "mp3"),
     ("f.pcm", "pcm"), ("g.raw", "pcm"), ("dir.wav/h.mp3", "mp3")],
)
def test_format_for_path(path, expected):
    assert format_for_path(path) == expected


@pytest.mark.parametrize("path", ["out.aac", "out", "out.wav.tmp"])
def test_format_for_path_rejects_unknown_extensions(path):
    with pytest.raises(InvalidRequest, match=".mp3"):
        format_for_path(path)


# --- output guard ----------------------------------------------------------------------------------------------


def test_guard_accepts_speech(speech):
    check_output(speech, RATE)


def test_guard_accepts_speech_that_is_mostly_pause(speech):
    check_output(np.concatenate([silence(1.5, RATE), speech[:RATE // 2], silence(1.0, RATE)]), RATE)


def test_guard_accepts_a_few_full_scale_peaks(speech):
    loud = speech / np.abs(speech).max()
    check_output(loud, RATE)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda s: np.zeros(0, np.float32), "no audio"),
        (lambda s: np.where(np.arange(s.size) == 100, np.nan, s), "1 NaN and 0 infinite"),
        (lambda s: np.where(np.arange(s.size) % 1000 == 0, np.inf, s), "0 NaN and 48 infinite"),
        (lambda s: np.zeros_like(s), "silent"),
        (lambda s: s * 1e-4, "silent"),
        (lambda s: np.sign(np.sin(2 * np.pi * 200 * np.arange(s.size) / RATE)).astype(np.float32), "clipped"),
        (lambda s: np.clip(s * 10, -1, 1), "clipped"),
        (lambda s: s[: int(0.03 * RATE)], "too short: 30.0 ms"),
    ],
    ids=["empty", "nan", "inf", "zeros", "near-silent", "square-wave", "saturated", "too-short"],
)
def test_guard_rejects_broken_output(speech, corrupt, message):
    with pytest.raises(EngineFailure, match=message):
        check_output(corrupt(speech), RATE)


def test_guard_rejects_a_hiss_floor_with_stray_ticks():
    hiss = np.random.default_rng(0).normal(0, 3e-5, 2 * RATE).astype(np.float32)
    hiss[::4800] = 2e-3  # ticks push the peak past SILENCE_PEAK; the energy stays at the noise floor
    with pytest.raises(EngineFailure, match=r"silent: peak 2\.00e-03 .* RMS 4"):
        check_output(hiss, RATE)


# --- streaming helpers --------------------------------------------------------------------------------------------


def test_wav_stream_header_fields():
    header = wav_stream_header(RATE)
    assert len(header) == 44
    riff, riff_size, wave_id, fmt_id, fmt_size, codec, channels, rate, byte_rate, align, bits, data_id, data_size = (
        struct.unpack("<4sI4s4sIHHIIHH4sI", header)
    )
    assert (riff, wave_id, fmt_id, data_id) == (b"RIFF", b"WAVE", b"fmt ", b"data")
    assert riff_size == data_size == 0xFFFFFFFF
    assert (fmt_size, codec, channels, rate, byte_rate, align, bits) == (16, 1, 1, RATE, 2 * RATE, 2, 16)
    stereo = struct.unpack("<4sI4s4sIHHIIHH4sI", wav_stream_header(16000, channels=2))
    assert stereo[6:10] == (2, 16000, 64000, 4)


def test_streamed_wav_is_readable(speech):
    chunks = [speech[:RATE // 2], silence(0.25, RATE), speech[RATE // 2:]]
    stream = wav_stream_header(RATE) + b"".join(pcm16_bytes(chunk) for chunk in chunks)
    expected_frames = sum(chunk.size for chunk in chunks)

    frames, rate = sf.read(io.BytesIO(stream), dtype="float32")
    assert rate == RATE and frames.ndim == 1 and frames.size == expected_frames
    assert np.max(np.abs(frames[: RATE // 2] - speech[: RATE // 2])) <= 1.5 / 32768

    with wave.open(io.BytesIO(stream)) as reader:  # stdlib reads it too, ignoring the bogus frame count
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, RATE)
        assert len(reader.readframes(10**9)) == 2 * expected_frames


def test_silence():
    pad = silence(0.25, 16000)
    assert pad.dtype == np.float32 and pad.size == 4000 and not pad.any()
    assert silence(0, RATE).size == 0
    with pytest.raises(ValueError, match=r"^seconds must be >= 0, got -1$"):
        silence(-1, RATE)


def test_module_import_stays_light():
    code = "import sys, inference.audio; print(sorted({'scipy', 'soundfile'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- decoding ----------------------------------------------------------------------------------------------------


def pcm16_wav(pcm: np.ndarray, rate: int, channels: int = 1) -> bytes:
    """WAV bytes written by the stdlib, as Sambert's pipeline does, independent of soundfile."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm.astype("<i2").tobytes())
    return buffer.getvalue()


def test_decode_wav_bytes_16k_pcm16():
    pcm = (speech_like(1.0, 16000) * 32767).astype(np.int16)
    samples, rate = decode_wav_bytes(pcm16_wav(pcm, 16000))
    assert rate == 16000
    assert samples.dtype == np.float32 and samples.shape == (16000,)
    np.testing.assert_allclose(samples, pcm / 32768, atol=1e-7)
    check_output(samples, rate)


def test_decode_wav_bytes_mixes_stereo_down():
    left = np.full(1600, 8000, np.int16)
    right = np.full(1600, -4000, np.int16)
    samples, rate = decode_wav_bytes(pcm16_wav(np.column_stack([left, right]).ravel(), 16000, channels=2))
    assert rate == 16000 and samples.shape == (1600,)
    np.testing.assert_allclose(samples, 2000 / 32768, atol=1e-7)


@pytest.mark.parametrize("data", [b"", b"not a wav file at all" * 10])
def test_decode_wav_bytes_rejects_garbage(data):
    with pytest.raises(EngineFailure):
        decode_wav_bytes(data)
