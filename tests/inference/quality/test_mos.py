"""MosScorer on the real Distill-MOS weights and real synthesised speech."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import soundfile as sf

from inference.audio import resample
from inference.quality import MODEL_RATE, AudioFileError, MosScorer, ScorerUnavailable, load_audio, mos


def test_clean_speech_scores_well_and_damaged_copy_clearly_lower(mos_scorer, synthesized, damaged):
    samples, rate = synthesized
    clean = mos_scorer.score(samples, rate)
    assert 3.5 <= clean <= 5.0
    assert mos_scorer.score(damaged, rate) <= clean - 1.0


def test_noise_alone_and_clipping_alone_each_lower_the_score(mos_scorer, synthesized):
    samples, rate = synthesized
    clean = mos_scorer.score(samples, rate)
    rms = float(np.sqrt(np.mean(samples ** 2)))
    noisy = (samples + np.random.default_rng(1).normal(0.0, rms / 3, samples.size)).astype(np.float32)
    clipped = (np.clip(samples * 8, -1.0, 1.0) * 0.9).astype(np.float32)
    assert mos_scorer.score(noisy, rate) <= clean - 1.0
    assert mos_scorer.score(clipped, rate) <= clean - 0.3


def test_score_is_deterministic_and_independent_of_the_input_rate(mos_scorer, synthesized):
    samples, rate = synthesized
    at_rate = mos_scorer.score(samples, rate)
    assert mos_scorer.score(samples, rate) == pytest.approx(at_rate, abs=1e-6)
    assert mos_scorer.score(resample(samples, rate, MODEL_RATE), MODEL_RATE) == pytest.approx(at_rate, abs=0.05)


@pytest.mark.parametrize("suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS")])
def test_score_file_reads_any_soundfile_format(mos_scorer, synthesized, tmp_path, suffix, subtype):
    samples, rate = synthesized
    path = tmp_path / f"speech{suffix}"
    sf.write(path, samples, rate, subtype=subtype)
    loaded, loaded_rate = load_audio(path)
    assert loaded_rate == rate and loaded.dtype == np.float32 and abs(loaded.size - samples.size) < rate // 10
    assert mos_scorer.score_file(path) == pytest.approx(mos_scorer.score(samples, rate), abs=0.15)


def test_stereo_file_is_scored_as_mono(mos_scorer, synthesized, tmp_path):
    samples, rate = synthesized
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([samples, samples], axis=1), rate, subtype="FLOAT")
    assert mos_scorer.score_file(path) == pytest.approx(mos_scorer.score(samples, rate), abs=1e-3)


@pytest.mark.parametrize("samples,message", [
    (np.zeros(2000, np.float32) + 0.1, "too short"),
    (np.zeros(16000, np.float32), "digital silence"),
    (np.full(16000, np.nan, np.float32), "NaN"),
])
def test_unscorable_audio_is_refused_with_its_name(mos_scorer, samples, message):
    with pytest.raises(AudioFileError, match=f"clip.wav: .*{message}"):
        mos_scorer.score(samples, MODEL_RATE, name="clip.wav")


def test_unreadable_files_name_the_file(mos_scorer, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioFileError, match="garbage.wav: cannot read audio"):
        mos_scorer.score_file(garbage)
    with pytest.raises(AudioFileError, match="missing.wav: no such file"):
        mos_scorer.score_file(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="is a directory"):
        mos_scorer.score_file(tmp_path)


def test_weights_are_pinned_and_a_changed_checkpoint_is_refused(monkeypatch):
    import hashlib

    assert hashlib.sha256(mos.read_verified_weights()).hexdigest() == mos.WEIGHTS_SHA256
    monkeypatch.setattr(mos, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(ScorerUnavailable, match="have sha256 b18b3ac6.*expected 0000"):
        MosScorer().load()


def test_missing_torch_or_distillmos_is_a_boot_failure_with_the_install_line(monkeypatch):
    from inference.errors import BootError

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ScorerUnavailable, match=r"torch is not installed.*tts-ops\[quality\]") as info:
        MosScorer().load()
    assert isinstance(info.value, BootError)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "distillmos", None)
    monkeypatch.delitem(sys.modules, "distillmos.sqa", raising=False)
    with pytest.raises(ScorerUnavailable, match=r"distillmos cannot be imported.*tts-ops\[quality\]"):
        MosScorer().load()


def test_distillmos_loads_without_torchaudio_and_leaves_no_placeholder(monkeypatch, synthesized):
    monkeypatch.setitem(sys.modules, "torchaudio", None)  # import torchaudio now raises ImportError
    for name in [n for n in sys.modules if n == "distillmos" or n.startswith("distillmos.")]:
        monkeypatch.delitem(sys.modules, name)
    scorer = MosScorer().load()
    assert sys.modules["torchaudio"] is None
    samples, rate = synthesized
    assert 1.0 <= scorer.score(samples, rate) <= 5.0


def test_score_before_load_is_an_error():
    from inference.errors import InferenceError

    with pytest.raises(InferenceError, match="before load"):
        MosScorer().score(np.ones(16000, np.float32), MODEL_RATE)
