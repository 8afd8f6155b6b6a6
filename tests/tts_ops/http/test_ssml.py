"""The SSML subset's parser (tts_ops.http.ssml, say_as): every element into the typed script, every malformed or
dangerous document a 400 naming the problem, and the script's round trip through the worker job's wire form."""

from __future__ import annotations

import pytest

from tts_ops.config import Config
from tts_ops.http.openai.parsing import parse_speech
from tts_ops.http.say_as import cardinal, spell_out
from tts_ops.http.ssml import is_ssml, parse_ssml
from tts_ops.http.validation import parse_tts
from tts_ops.service.errors import RequestError
from tts_vocab import SynthesisJob
from tts_vocab.errors import InvalidRequest
from tts_vocab.ssml import MAX_TOTAL_BREAK_S, Pause, Say, Script

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<speak>&lol3;</speak>"""
EXTERNAL_ENTITY = """<!DOCTYPE speak [<!ENTITY secret SYSTEM "file:///etc/passwd">]><speak>&secret;</speak>"""
EXTERNAL_DTD = """<!DOCTYPE speak SYSTEM "http://127.0.0.1:9/evil.dtd"><speak>你好</speak>"""


def test_every_element_becomes_a_typed_segment():
    script = parse_ssml('<speak>你好<break time="300ms"/>我们去银<phoneme alphabet="py" ph="hang2">行</phoneme>'
                        '<emotion category="高兴">号码是<say-as interpret-as="telephone">110</say-as>'
                        '<break time="2s"/></emotion><break strength="x-strong"/><break/></speak>')
    assert script.segments == (Say("你好"), Pause(0.3), Say("我们去银"), Say("行", None, ("hang2",)),
                               Say("号码是幺幺零", "happy"), Pause(2.0), Pause(1.25), Pause(0.75))


@pytest.mark.parametrize(("kind", "text", "spoken"), [
    ("digits", "2024", "二零二四"),
    ("cardinal", "2024", "二千零二十四"),
    ("cardinal", "-1,205.5", "负一千二百零五点五"),
    ("cardinal", "10", "十"),
    ("telephone", "+86 138-1234-5678", "加八六，幺三八，幺二三四，五六七八"),
    ("date", "2024-03-05", "二零二四年三月五日"),
    ("date", "2024/12/31", "二零二四年十二月三十一日"),
    ("date", "2024年3月", "二零二四年三月"),
])
def test_say_as_is_spelled_out(kind, text, spoken):
    assert spell_out(kind, text) == spoken
    script = parse_ssml(f'<speak>是<say-as interpret-as="{kind}">{text}</say-as></speak>')
    assert script.segments == (Say("是" + spoken),)


@pytest.mark.parametrize(("n", "spoken"), [(0, "零"), (105, "一百零五"), (110, "一百一十"), (1050, "一千零五十"),
                                           (10001, "一万零一"), (100010000, "一亿零一万")])
def test_cardinal_zeros(n, spoken):
    assert cardinal(n) == spoken


def test_namespaced_root_and_xml_lang_are_accepted():
    script = parse_ssml('<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="zh-CN">'
                        '你好<break time="1s"/></speak>')
    assert script.segments == (Say("你好"), Pause(1.0))


@pytest.mark.parametrize(("document", "fragment"), [
    ("<speak>你好", "malformed SSML"),
    ("<speak>你好</speek>", "malformed SSML"),
    ("<speak><prosody rate='fast'>快</prosody></speak>", "unsupported SSML element <prosody>"),
    ("<speak><break time='3 minutes'/>好</speak>", "expected e.g. 300ms or 2s"),
    ("<speak><break time='11s'/>好</speak>", "longer than 10s"),
    ("<speak><break strength='huge'/>好</speak>", "strength='huge'"),
    ("<speak><break time='1s'>好</break></speak>", "<break> must be empty"),
    ("<speak><phoneme ph='hang2 zhang3'>行</phoneme></speak>", "2 syllables for the 1 characters"),
    ("<speak><phoneme ph='hang9'>行</phoneme></speak>", "tone-numbered pinyin"),
    ("<speak><phoneme alphabet='ipa' ph='xaŋ'>行</phoneme></speak>", "only 'py'"),
    ("<speak><phoneme ph='a1'>A</phoneme></speak>", "must be Chinese characters"),
    ("<speak><say-as interpret-as='ordinal'>1</say-as></speak>", "expected one of digits"),
    ("<speak><say-as interpret-as='digits'>12a</say-as></speak>", "digits only"),
    ("<speak><say-as interpret-as='date'>2024-13-01</say-as></speak>", "needs a date"),
    ("<speak><emotion category='bored'>好</emotion></speak>", "category='bored'"),
    ("<speak><emotion>好</emotion></speak>", "needs a category"),
    ("<speak><emotion category='sad' volume='3'>好</emotion></speak>", "unsupported attribute(s) volume"),
    ("<speak><break time='1s'/></speak>", "no text to speak"),
    (BILLION_LAUGHS, "DTDForbidden"),
    (EXTERNAL_ENTITY, "DTDForbidden"),
    (EXTERNAL_DTD, "DTDForbidden"),
])
def test_bad_documents_are_400s_naming_the_problem(document, fragment):
    with pytest.raises(RequestError) as caught:
        parse_tts({"text": document}, max_text_chars=1000)
    assert caught.value.status == 400 and caught.value.param == "text"
    assert fragment in str(caught.value)


def test_an_internal_entity_is_refused_before_expansion():
    # An internal entity in the DTD (the billion laughs' mechanism) is refused before anything is expanded.
    with pytest.raises(InvalidRequest, match="not allowed"):
        parse_ssml('<!DOCTYPE speak [<!ENTITY a "aaaa">]><speak>&a;</speak>')


def test_plain_text_is_not_ssml():
    assert not is_ssml("你好 <speak>")
    assert is_ssml("  <speak>你好</speak>")
    assert parse_tts({"text": "你好<break/>"}, max_text_chars=100).job.ssml is None


def test_the_script_crosses_the_worker_socket():
    request = parse_tts({"text": '<speak><emotion category="sad">行<phoneme ph="hang2">行</phoneme></emotion>'
                                 '<break time="250ms"/>好</speak>', "emotion": "happy"}, max_text_chars=1000)
    job = request.job
    assert job.ssml is not None and job.text.startswith("<speak>")
    assert SynthesisJob.from_wire(job.to_wire()) == job
    # A plain job's wire form has no "ssml" key at all.
    assert "ssml" not in SynthesisJob(text="你好").to_wire()


@pytest.mark.parametrize("wire", [[], [{"break_s": 99}], [{"text": ""}], [{"text": "行", "pinyin": ["hang9"]}],
                                  [{"text": "行", "pinyin": ["hang2", "a1"]}], [{"text": "a", "x": 1}], "nope"])
def test_worker_rejects_a_malformed_script(wire):
    with pytest.raises(InvalidRequest) as caught:
        SynthesisJob.from_wire({"text": "<speak/>", "ssml": wire})
    assert caught.value.field == "ssml"


def test_openai_input_ssml_is_parsed_and_errors_name_input():
    config = Config()
    request = parse_speech({"model": "tts-1", "voice": "alloy", "input": '<speak>你<break time="1s"/>好</speak>'},
                           config)
    assert request.job.ssml == Script((Say("你"), Pause(1.0), Say("好")))
    with pytest.raises(RequestError) as caught:
        parse_speech({"model": "tts-1", "voice": "alloy", "input": "<speak>你好"}, config)
    assert caught.value.status == 400 and caught.value.param == "input" and "malformed SSML" in str(caught.value)


def test_breaks_add_up_to_a_bounded_silence():
    """Each <break> is at most 10 s, and all of them together at most MAX_TOTAL_BREAK_S: a short document cannot make
    a worker hold minutes of audio. Six 10 s breaks are the limit (positive control), seven are a 400."""
    document = "<speak>" + "好" + '<break time="10s"/>好' * 6 + "</speak>"
    assert parse_ssml(document).pause_s == MAX_TOTAL_BREAK_S
    with pytest.raises(InvalidRequest, match="add up to 70s"):
        parse_ssml(document.replace("</speak>", '<break time="10s"/>好</speak>'))
    with pytest.raises(InvalidRequest, match="add up to"):
        Script.from_wire([{"text": "好"}, *[{"break_s": 10.0}] * 7])
