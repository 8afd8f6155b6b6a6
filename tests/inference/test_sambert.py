"""The Sambert-HifiGan adapter (inference.engines.sambert) against a stand-in for ModelScope's pipeline.

ModelScope, torch and ModelScope's kantts/ttsfrd wheels cannot be installed in this environment, so the real
pipeline is replaced by ``StandInSambertPipeline``, injected through ``SambertEngine(pipeline_factory=...)``.
What is tested is everything the adapter does around the pipeline: SSML, voices, decoding, resampling, speed,
error mapping and model-directory checks. A worker subprocess cannot be given a stand-in, so there is no worker
test for this engine.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inference.audio import check_output
from inference.engines.base import SynthesisParams
from inference.engines.sambert import (
    INSTALL_HINT,
    INSTALL_LINE,
    RUNTIME_PINS,
    SAMPLE_RATE,
    VOICES,
    SambertEngine,
    check_runtime_packages,
    modelscope_pipeline,
)
from inference.errors import BootError, EngineFailure, TextError

SECONDS_PER_CHAR = 0.2
SPEAKABLE = re.compile(r"[\u3400-\u9fff0-9A-Za-z]")


def speech_like(seconds: float, rate: int) -> np.ndarray:
    """Voiced harmonics on a gliding pitch with a syllable-rate envelope and short pauses, peak ~0.5."""
    t = np.arange(int(round(seconds * rate))) / rate
    f0 = 180 + 40 * np.sin(2 * np.pi * 0.8 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    signal = voiced * syllables
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


class StandInSambertPipeline:
    """Stands in for ModelScope's Sambert-HifiGan pipeline (``modelscope.pipelines.pipeline(Tasks.text_to_speech,
    model=...)``), which cannot be installed here.

    Same calling convention as the real one: ``pipeline(input=<text or SSML>, voice=<voice>)`` returns
    ``{"output_wav": <16-bit PCM WAV bytes>}``. The audio is a synthetic speech-like signal whose length grows
    with the number of speakable characters (tags excluded), like real speech. Every call is recorded in
    ``calls``; ``fail`` makes calls raise it; ``rate`` changes the WAV's sample rate (the real model's is 16 kHz).
    """

    def __init__(self, model_dir: str, *, rate: int = 16000, fail: Exception | None = None,
                 output: object = None) -> None:
        self.model_dir = model_dir
        self.rate = rate
        self.fail = fail
        self.output = output
        self.calls: list[dict[str, str]] = []

    @staticmethod
    def seconds_for(text: str) -> float:
        spoken = re.sub(r"<[^>]*>", "", text)
        return SECONDS_PER_CHAR * len(SPEAKABLE.findall(spoken)) + 0.1

    def __call__(self, *, input: str, voice: str) -> dict:  # ModelScope's keyword
        self.calls.append({"input": input, "voice": voice})
        if self.fail is not None:
            raise self.fail
        if self.output is not None:
            return {"output_wav": self.output}
        buffer = io.BytesIO()
        sf.write(buffer, speech_like(self.seconds_for(input), self.rate), self.rate, format="WAV", subtype="PCM_16")
        return {"output_wav": buffer.getvalue()}


@pytest.fixture
def make_engine(model_dir):
    """``make_engine(**options, pipeline_kwargs={...})`` -> (loaded SambertEngine, its stand-in pipeline)."""

    def make(pipeline_kwargs: dict | None = None, **options) -> tuple[SambertEngine, StandInSambertPipeline]:
        made: list[StandInSambertPipeline] = []

        def factory(directory: str) -> StandInSambertPipeline:
            made.append(StandInSambertPipeline(directory, **(pipeline_kwargs or {})))
            return made[-1]

        engine = SambertEngine(pipeline_factory=factory, model_dir=model_dir, **options)
        engine.load()
        assert len(made) == 1 and made[0].model_dir == str(model_dir)
        return engine, made[0]

    return make


def synth(engine: SambertEngine, text: str = "今天天气真好。", **params) -> np.ndarray:
    return engine.synthesize_chunk(text, SynthesisParams.build(**params))


# -- identity -----------------------------------------------------------------------------------------------------


def test_info(make_engine, model_dir):
    engine, _ = make_engine()
    info = engine.info()
    assert info.id == "sambert-hifigan"
    assert info.sample_rate == SAMPLE_RATE == 16000
    assert info.voices == VOICES
    assert info.default_voice == "zhitian_emo"
    assert info.model_version == model_dir.name


# -- SSML ---------------------------------------------------------------------------------------------------------


def test_emotion_is_wrapped_in_ssml(make_engine):
    engine, pipeline = make_engine()
    synth(engine, "今天天气真好。", emotion="happy")
    assert pipeline.calls[-1]["input"] == (
        '<speak><emotion category="happy" intensity="1.00">今天天气真好。</emotion></speak>')


@pytest.mark.parametrize("emotion", ["disgust", "hate"])
def test_disgust_is_sent_as_hate(make_engine, emotion):
    engine, pipeline = make_engine()
    synth(engine, emotion=emotion)
    assert '<emotion category="hate"' in pipeline.calls[-1]["input"]


@pytest.mark.parametrize("emotion", ["sad", "angry", "fear", "surprise"])
def test_other_emotions_keep_their_name(make_engine, emotion):
    engine, pipeline = make_engine()
    synth(engine, emotion=emotion)
    assert f'<emotion category="{emotion}" intensity="1.00">' in pipeline.calls[-1]["input"]


def test_neutral_is_plain_text(make_engine):
    engine, pipeline = make_engine()
    synth(engine, "今天天气真好。")
    assert pipeline.calls[-1]["input"] == "今天天气真好。"


def test_ssml_escapes_xml_special_characters(make_engine):
    engine, pipeline = make_engine()
    synth(engine, "A<B & C>D 的价格。", emotion="angry")
    sent = pipeline.calls[-1]["input"]
    assert "A&lt;B &amp; C&gt;D 的价格。" in sent
    inner = sent.removeprefix('<speak><emotion category="angry" intensity="1.00">').removesuffix("</emotion></speak>")
    assert "<" not in inner and ">" not in inner


def test_emotion_intensity_option(make_engine):
    engine, pipeline = make_engine(emotion_intensity=0.5)
    synth(engine, emotion="sad")
    assert 'intensity="0.50"' in pipeline.calls[-1]["input"]


# -- voices -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("voice", VOICES)
def test_voice_is_forwarded(make_engine, voice):
    engine, pipeline = make_engine()
    synth(engine, voice=voice)
    assert pipeline.calls[-1]["voice"] == voice


@pytest.mark.parametrize("voice", [None, "", "default"])
def test_default_voice(make_engine, voice):
    engine, pipeline = make_engine()
    synth(engine, voice=voice)
    assert pipeline.calls[-1]["voice"] == "zhitian_emo"
    engine, pipeline = make_engine(default_voice="zhibei_emo")
    synth(engine, voice=voice)
    assert pipeline.calls[-1]["voice"] == "zhibei_emo"


def test_unknown_voice_is_a_text_error(make_engine):
    engine, pipeline = make_engine()
    with pytest.raises(TextError, match="xiaoming"):
        synth(engine, voice="xiaoming")
    assert pipeline.calls == []


def test_unknown_default_voice_is_a_boot_error(model_dir):
    with pytest.raises(BootError, match="xiaoming"):
        SambertEngine(model_dir=model_dir, default_voice="xiaoming", pipeline_factory=StandInSambertPipeline)


# -- output -------------------------------------------------------------------------------------------------------


def test_output_is_decoded_to_16khz_float(make_engine):
    engine, pipeline = make_engine()
    text = "今天天气真好，适合出去散步。"
    samples = synth(engine, text)
    expected = speech_like(pipeline.seconds_for(text), 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert samples.size == expected.size
    np.testing.assert_allclose(samples, expected, atol=1.0 / 32767)  # PCM16 round trip
    check_output(samples, SAMPLE_RATE)


def test_output_at_another_rate_is_resampled_to_16khz(make_engine):
    engine, pipeline = make_engine(pipeline_kwargs={"rate": 24000})
    text = "今天天气真好，适合出去散步。"
    samples = synth(engine, text)
    assert abs(samples.size - pipeline.seconds_for(text) * SAMPLE_RATE) <= 2


def test_longer_text_gives_longer_audio(make_engine):
    engine, _ = make_engine()
    assert synth(engine, "你好。").size < synth(engine, "今天天气真好，适合出去散步。").size


def test_speed_uses_librosa_time_stretch(make_engine):
    pytest.importorskip("librosa", reason="librosa is in the [sambert] extra")
    engine, _ = make_engine()
    normal = synth(engine, speed=1.0)
    for speed in (0.5, 2.0):
        stretched = synth(engine, speed=speed)
        assert stretched.dtype == np.float32
        assert abs(stretched.size - normal.size / speed) <= 0.01 * normal.size, (speed, stretched.size)
        check_output(stretched, SAMPLE_RATE)


def test_speed_without_librosa_is_an_engine_failure_naming_it(make_engine, monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)  # makes `import librosa` raise ImportError
    engine, _ = make_engine()
    assert synth(engine, speed=1.0).size > 0  # speed 1.0 needs no librosa
    with pytest.raises(EngineFailure, match="librosa"):
        synth(engine, speed=1.5)


def test_whole_text_is_chunked_and_joined(make_engine):
    engine, pipeline = make_engine(max_chunk_chars=20)
    text = "春天来了，公园里的花都开了。孩子们在草地上奔跑，老人们坐在长椅上聊天。远处的湖面上，几只小船慢慢地划过。"
    chunks = engine.split(text)
    assert len(chunks) >= 3
    samples = engine.synthesize(text, SynthesisParams.build("happy"))
    assert [call["input"] for call in pipeline.calls] == [engine.ssml(chunk, "happy") for chunk in chunks]
    pauses = round(engine.pause_s * SAMPLE_RATE) * (len(chunks) - 1)
    assert samples.size == sum(round(pipeline.seconds_for(c) * SAMPLE_RATE) for c in chunks) + pauses
    check_output(samples, SAMPLE_RATE)


@pytest.mark.parametrize("text", ["😀😀", "。。。！", "   "])
def test_nothing_speakable_is_a_text_error(make_engine, text):
    engine, pipeline = make_engine()
    with pytest.raises(TextError, match="nothing speakable"):
        engine.synthesize(text, SynthesisParams())
    assert pipeline.calls == []


def test_unspeakable_chunk_sent_on_its_own_is_a_text_error(make_engine):
    # The front end streams raw chunks to the worker one by one: an emoji-only sentence must be the client's 400
    # (which the stream skips), not a silent-output engine failure.
    engine, pipeline = make_engine()
    with pytest.raises(TextError, match="nothing speakable"):
        engine.synthesize_chunk("😀😀😀😀😀😀😀😀。", SynthesisParams())
    assert pipeline.calls == []


# -- failures -----------------------------------------------------------------------------------------------------


def test_pipeline_exception_is_an_engine_failure(make_engine):
    engine, _ = make_engine(pipeline_kwargs={"fail": RuntimeError("CUDA out of memory")})
    with pytest.raises(EngineFailure, match="CUDA out of memory"):
        synth(engine)


@pytest.mark.parametrize("output", [b"", b"RIFF\x00garbage-not-a-wav", "a string"])
def test_unusable_pipeline_output_is_an_engine_failure(make_engine, output):
    engine, _ = make_engine(pipeline_kwargs={"output": output})
    with pytest.raises(EngineFailure):
        synth(engine)


def wav_bytes(samples: np.ndarray, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("bad, subtype, named", [
    (np.zeros(SAMPLE_RATE, np.float32), "PCM_16", "silent"),
    (np.where(np.arange(SAMPLE_RATE) % 40 < 20, 1.0, -1.0).astype(np.float32), "PCM_16", "clipped"),
    (np.full(SAMPLE_RATE, np.nan, np.float32), "FLOAT", "NaN"),
])
def test_broken_audio_from_the_model_never_reaches_the_client(make_engine, bad, subtype, named):
    # A well-formed WAV whose content is unusable: the output guard must fail the synthesis (worker: 500,
    # retryable) instead of returning it as if valid.
    engine, _ = make_engine(pipeline_kwargs={"output": wav_bytes(bad, subtype)})
    with pytest.raises(EngineFailure, match=named):
        engine.synthesize("今天天气真好。", SynthesisParams())


def test_use_before_load_is_an_engine_failure(model_dir):
    engine = SambertEngine(model_dir=model_dir, pipeline_factory=StandInSambertPipeline)
    with pytest.raises(EngineFailure, match="before load"):
        synth(engine)


def test_missing_model_dir_is_a_boot_error_with_install_hint(tmp_path):
    engine = SambertEngine(model_dir=tmp_path / "nowhere", pipeline_factory=StandInSambertPipeline)
    with pytest.raises(BootError, match="configuration.json") as caught:
        engine.load()
    assert INSTALL_HINT in str(caught.value)
    # What to install and from where: the packages at their pinned versions and ModelScope's find-links page.
    assert re.search(r"kantts==[\d.]+ ttsfrd==[\d.]+ -f https://\S+/repo\.html", INSTALL_HINT)


def test_model_dir_without_configuration_json_is_a_boot_error(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\0" * 16)
    engine = SambertEngine(model_dir=tmp_path, pipeline_factory=StandInSambertPipeline)
    with pytest.raises(BootError, match=r"no configuration\.json.*tts-ops\[sambert\]"):
        engine.load()


def test_model_not_in_store_is_a_boot_error_with_install_hint(tmp_path):
    engine = SambertEngine(store_dir=tmp_path / "store", pipeline_factory=StandInSambertPipeline)
    with pytest.raises(BootError, match=r"not in the store.*models pull sambert-hifigan"):
        engine.load()


def test_modelscope_pipeline_without_modelscope_is_a_boot_error(model_dir, monkeypatch):
    for name in ("modelscope", "modelscope.pipelines", "modelscope.utils", "modelscope.utils.constant"):
        monkeypatch.setitem(sys.modules, name, None)  # absent even where ModelScope happens to be installed
    with pytest.raises(BootError, match=re.escape("tts-ops[sambert]")):
        modelscope_pipeline(str(model_dir))
    with pytest.raises(BootError, match=re.escape("tts-ops[sambert]")):
        SambertEngine(model_dir=model_dir).load()  # the default factory is the real pipeline


# -- install safety: PyPI's placeholder kantts/ttsfrd (an __init__.py with hello() only) ----------------------------

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = "def hello():\n    print('hello')\n"


def fake_package(root: Path, name: str, body: str = PLACEHOLDER, version: str | None = None,
                 submodules: tuple[str, ...] = ()) -> None:
    """A package ``name`` under ``root``; with ``version``, pip-style metadata (a dist-info) too."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(body)
    for dotted in submodules:
        parts = dotted.split(".")[1:]
        directory = root / name
        for part in parts[:-1]:
            directory = directory / part
            directory.mkdir(exist_ok=True)
            (directory / "__init__.py").touch()
        (directory / f"{parts[-1]}.py").touch()
    if version is not None:
        info = root / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A directory first on sys.path, with no kantts/ttsfrd imported from anywhere else."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    for name in list(sys.modules):
        if name.split(".")[0] in RUNTIME_PINS:
            monkeypatch.delitem(sys.modules, name)
    return root


def real_like(site: Path, versions: dict[str, str] | None = None) -> None:
    """Stand-ins with everything the boot check looks for (not ModelScope's code: just its shape)."""
    versions = versions or RUNTIME_PINS
    fake_package(site, "kantts", "", versions["kantts"], ("kantts.models.model_builder",
                 "kantts.utils.ling_unit.ling_unit", "kantts.models.sambert.kantts_sambert",
                 "kantts.models.hifigan.hifigan"))
    fake_package(site, "ttsfrd", "class TtsFrontendEngine:\n    pass\n", versions["ttsfrd"])


def test_packages_shaped_like_the_real_ones_at_the_pinned_versions_pass(site):
    real_like(site)
    check_runtime_packages()  # positive control of the placeholder tests below


def test_placeholder_kantts_is_a_boot_error_naming_it(site):
    fake_package(site, "kantts", version="0.1.0")
    fake_package(site, "ttsfrd", "class TtsFrontendEngine:\n    pass\n", RUNTIME_PINS["ttsfrd"])
    with pytest.raises(BootError, match=r"kantts at .*site/kantts/__init__\.py is a placeholder") as caught:
        check_runtime_packages()
    assert "kantts.models.model_builder" in str(caught.value) and INSTALL_LINE in str(caught.value)


def test_placeholder_ttsfrd_is_a_boot_error_naming_it(site):
    real_like(site)
    (site / "ttsfrd" / "__init__.py").write_text(PLACEHOLDER)
    with pytest.raises(BootError, match=r"ttsfrd at .* is a placeholder.*ttsfrd\.TtsFrontendEngine"):
        check_runtime_packages()


def test_wrong_version_is_a_boot_error_naming_the_pin(site):
    real_like(site, {**RUNTIME_PINS, "kantts": "0.1.0"})
    with pytest.raises(BootError, match=rf"kantts 0\.1\.0 is installed .*not the pinned {RUNTIME_PINS['kantts']}"):
        check_runtime_packages()


def test_package_without_metadata_is_a_boot_error(site):
    real_like(site)
    for info in site.glob("kantts-*.dist-info"):
        for child in info.iterdir():
            child.unlink()
        info.rmdir()
    with pytest.raises(BootError, match="no installed distribution"):
        check_runtime_packages()


def test_the_default_pipeline_checks_before_importing_modelscope(site, model_dir):
    fake_package(site, "kantts")
    fake_package(site, "ttsfrd")
    with pytest.raises(BootError, match="placeholder"):
        SambertEngine(model_dir=model_dir).load()


def test_worker_with_a_placeholder_exits_with_the_boot_failure_code(site, model_dir, tmp_path):
    import json
    import os
    import subprocess

    from tts_vocab.exit_codes import EXIT_BOOT_FAILURE

    fake_package(site, "kantts")
    fake_package(site, "ttsfrd")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-m", "inference.worker", "--engine", "sambert-hifigan", "--socket",
         str(tmp_path / "w.sock"), "--options", json.dumps({"model_dir": str(model_dir)})],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == EXIT_BOOT_FAILURE, proc.stderr
    assert "kantts at" in proc.stderr and "is a placeholder" in proc.stderr


def test_readme_and_constraints_file_pin_the_same_versions():
    constraints = (REPO / "deploy" / "sambert-constraints.txt").read_text()
    pins = dict(re.findall(r"^(kantts|ttsfrd)==(\S+)$", constraints, re.M))
    assert pins == RUNTIME_PINS
    readme = (REPO / "README.md").read_text()
    for name, version in RUNTIME_PINS.items():
        assert f"{name}=={version}" in readme
    assert "deploy/sambert-constraints.txt" in readme
    assert not re.search(r"\bkantts ttsfrd\b", readme)  # no unpinned install line left


# -- timestamps ---------------------------------------------------------------------------------------------------


def test_timestamps_are_refused_with_a_400_naming_the_field(make_engine):
    # ModelScope's pipeline returns only the waveform (no per-symbol durations), so times would be estimates.
    engine, pipeline = make_engine()
    with pytest.raises(TextError) as caught:
        engine.synthesize_timed("今天天气真好。", SynthesisParams())
    assert caught.value.field == "timestamps" and "does not report timestamps" in str(caught.value)
    assert pipeline.calls == []  # refused before any synthesis
    assert len(synth(engine)) > 0  # positive control: untimed synthesis works
