"""SSML scripts rendered by both engines (inference.engines.script): the bundled voice for real, Sambert through
the stand-in for ModelScope's pipeline (tests/inference/test_sambert.py). Documents are parsed by the daemon's
parser and sent through the worker job's wire form, as in production."""

from __future__ import annotations

import numpy as np
import pytest

from inference.engines.base import SynthesisParams
from inference.engines.sambert import SambertEngine
from inference.engines.script import render_script
from inference.errors import TextError
from tests.inference.test_sambert import SECONDS_PER_CHAR, StandInSambertPipeline
from tts_ops.http.ssml import parse_ssml
from tts_vocab import SynthesisJob

PLAIN = SynthesisParams()


@pytest.fixture
def sambert(tmp_path) -> tuple[SambertEngine, StandInSambertPipeline]:
    """A loaded Sambert engine on the stand-in pipeline, and that pipeline (its ``calls``)."""
    directory = tmp_path / "speech_sambert-hifigan_tts_zh-cn_16k"
    directory.mkdir()
    (directory / "configuration.json").write_text('{"task": "text-to-speech"}')
    made: list[StandInSambertPipeline] = []

    def factory(model_dir: str) -> StandInSambertPipeline:
        made.append(StandInSambertPipeline(model_dir))
        return made[-1]

    engine = SambertEngine(pipeline_factory=factory, model_dir=directory)
    engine.load()
    return engine, made[0]


def script_of(document: str):
    """The script the worker receives for ``document`` (parsed by the daemon, through the wire form)."""
    job = SynthesisJob.from_wire(SynthesisJob(text=document, ssml=parse_ssml(document)).to_wire())
    assert job.ssml is not None
    return job.ssml


def render(engine, document: str, params: SynthesisParams = PLAIN) -> np.ndarray:
    return render_script(engine, script_of(document), params)


# -- the bundled voice --------------------------------------------------------------------------------------------


def test_fs2_break_is_exact_silence_between_the_parts(engine):
    rate = engine.info().sample_rate
    audio = render(engine, '<speak>你好<break time="300ms"/>再见<break strength="strong"/>好的</speak>')
    parts = [engine.synthesize(text, PLAIN) for text in ("你好", "再见", "好的")]
    assert len(audio) == sum(map(len, parts)) + round(0.3 * rate) + round(1.0 * rate)
    start = len(parts[0])
    assert not audio[start:start + round(0.3 * rate)].any()
    # Seconds too: 2s is twice 1000ms.
    two = render(engine, '<speak>你好<break time="2s"/>再见</speak>')
    one = render(engine, '<speak>你好<break time="1000ms"/>再见</speak>')
    assert len(two) - len(one) == rate


def test_fs2_phoneme_reads_as_written(engine):
    # 银行 with 行 forced to xing2 is read like 银形 (形 = xing2): the same symbols, the same audio length.
    forced = render(engine, '<speak>我们去银<phoneme alphabet="py" ph="xing2">行</phoneme>办事。</speak>')
    assert len(forced) == len(engine.synthesize("我们去银形办事。", PLAIN))
    assert len(forced) != len(engine.synthesize("我们去银行办事。", PLAIN))


def test_fs2_phoneme_leaves_untagged_occurrences_alone(engine):
    # 行 tagged once as xing2 and once untagged (银行, hang2): only the tagged one changes.
    mixed = render(engine, '<speak><phoneme ph="xing2">行</phoneme>，银行</speak>')
    assert len(mixed) == len(render(engine, "<speak>形</speak>")) + len(engine.synthesize("银行", PLAIN))


def test_fs2_phoneme_the_voice_cannot_say_is_a_text_error(engine):
    with pytest.raises(TextError, match="no symbols for biang2"):
        render(engine, '<speak><phoneme ph="biang2">面</phoneme></speak>')


def test_fs2_emotion_uses_the_preset(engine):
    audio = render(engine, '<speak><emotion category="sad">你好。</emotion></speak>')
    assert len(audio) == len(engine.synthesize("你好。", SynthesisParams.build("sad")))
    assert len(audio) != len(engine.synthesize("你好。", PLAIN))


def test_fs2_say_as_reads_the_spelled_out_text(engine):
    digits = render(engine, '<speak><say-as interpret-as="digits">2024</say-as></speak>')
    cardinal = render(engine, '<speak><say-as interpret-as="cardinal">2024</say-as></speak>')
    assert len(digits) == len(engine.synthesize("二零二四", PLAIN))
    assert len(cardinal) == len(engine.synthesize("二千零二十四", PLAIN))
    for kind, text, spoken in (("telephone", "110", "幺幺零"), ("date", "2024-03-05", "二零二四年三月五日")):
        audio = render(engine, f'<speak><say-as interpret-as="{kind}">{text}</say-as></speak>')
        assert len(audio) == len(engine.synthesize(spoken, PLAIN))


# -- Sambert (stand-in pipeline) ------------------------------------------------------------------------------------


def test_sambert_emotion_is_native(sambert):
    engine, pipeline = sambert
    render(engine, '<speak>平静<emotion category="angry">生气了</emotion>'
                   '<emotion category="disgust">讨厌</emotion></speak>')
    assert [call["input"] for call in pipeline.calls] == [
        "平静", '<speak><emotion category="angry" intensity="1.00">生气了</emotion></speak>',
        '<speak><emotion category="hate" intensity="1.00">讨厌</emotion></speak>']


def test_sambert_phoneme_is_native(sambert):
    engine, pipeline = sambert
    render(engine, '<speak><emotion category="happy">去银<phoneme alphabet="py" ph="hang2">行</phoneme>'
                   '&amp;</emotion></speak>')
    assert pipeline.calls[-1]["input"] == ('<speak><emotion category="happy" intensity="1.00">去银<phoneme '
                                           'alphabet="py" ph="hang2">行</phoneme>&amp;</emotion></speak>')
    render(engine, '<speak><phoneme ph="xing2">行</phoneme></speak>')
    assert pipeline.calls[-1]["input"] == '<speak><phoneme alphabet="py" ph="xing2">行</phoneme></speak>'


def test_sambert_break_is_exact_silence(sambert):
    engine, pipeline = sambert
    audio = render(engine, '<speak>你好<break time="500ms"/>再见</speak>')
    rate = engine.info().sample_rate
    each = round((SECONDS_PER_CHAR * 2 + 0.1) * rate)
    assert len(audio) == 2 * each + round(0.5 * rate)
    assert [call["input"] for call in pipeline.calls] == ["你好", "再见"]
    assert not audio[each:each + round(0.5 * rate)].any()


def test_sambert_say_as_sends_the_spelled_out_text(sambert):
    engine, pipeline = sambert
    render(engine, '<speak>电话<say-as interpret-as="telephone">110</say-as>，<say-as interpret-as="date">'
                   '2024-03-05</say-as><say-as interpret-as="digits">12</say-as><say-as interpret-as="cardinal">'
                   '12</say-as></speak>')
    assert pipeline.calls[-1]["input"] == "电话幺幺零，二零二四年三月五日一二十二"


def test_request_emotion_applies_outside_emotion_elements(sambert):
    engine, pipeline = sambert
    render(engine, '<speak>外面<emotion category="sad">里面</emotion></speak>', SynthesisParams.build("happy"))
    assert [call["input"] for call in pipeline.calls] == [
        '<speak><emotion category="happy" intensity="1.00">外面</emotion></speak>',
        '<speak><emotion category="sad" intensity="1.00">里面</emotion></speak>']
