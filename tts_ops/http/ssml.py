"""The SSML subset accepted on ``POST /tts`` and ``/v1/audio/speech`` when the text starts with ``<speak>``
(daemon process, pure logic): parsed once into the typed ``tts_vocab.ssml.Script`` the worker renders.

Elements: ``<speak>`` (the root), ``<break time="300ms"/>`` (or ``2s``, or ``strength="x-weak".."x-strong"``),
``<phoneme alphabet="py" ph="hang2">行</phoneme>`` (one tone-numbered syllable per character),
``<say-as interpret-as="digits|cardinal|telephone|date">`` (spelled out here in Chinese characters, so both engines
read it alike: ``tts_ops.http.say_as``) and ``<emotion category="happy">`` (an emotion of the shared vocabulary;
the bundled voice renders it with its prosody preset, Sambert with its own SSML ``<emotion>``). Anything else is
a 400 naming it. The XML is parsed by defusedxml with DTDs forbidden: entity definitions (the "billion laughs"),
external entities and external references are refused before anything is expanded or fetched, also a 400.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from tts_ops.http.say_as import spell_out
from tts_vocab.emotions import normalize_emotion
from tts_vocab.errors import InvalidRequest
from tts_vocab.lexicon import is_syllable
from tts_vocab.ssml import BREAK_STRENGTHS, MAX_BREAK_S, MAX_SEGMENTS, MAX_TOTAL_BREAK_S, Pause, Say, Script, Segment

__all__ = ["DESCRIPTION", "EXAMPLE", "is_ssml", "parse_ssml", "ssml_of"]

ELEMENTS = ("speak", "break", "phoneme", "say-as", "emotion")
#: What the OpenAPI document says of SSML text (``text`` of /tts, ``input`` of /v1/audio/speech).
DESCRIPTION = (
    "Text starting with <speak> (or an XML declaration) is an SSML document: <break time=\"300ms\"/> (ms or s, at "
    "most 10s; or strength=\"x-weak|weak|medium|strong|x-strong\"), <phoneme alphabet=\"py\" ph=\"hang2\">行"
    "</phoneme> (one tone-numbered pinyin syllable per character), <say-as interpret-as=\"digits|cardinal|"
    "telephone|date\">, <emotion category=\"happy\"> (an emotion of this API; overrides the request's). Other "
    "elements, malformed XML, DTDs, entities and external references -> 400 naming the problem. The raw document "
    "is the cache key's text; a streamed document is one chunk.")
EXAMPLE = '<speak>我们去银<phoneme alphabet="py" ph="hang2">行</phoneme><break time="300ms"/></speak>'

_TIME = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*")
_HAN = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
# Attributes each element accepts (namespaced ones such as xml:lang are allowed everywhere and ignored).
_ATTRIBUTES = {"speak": {"version"}, "break": {"time", "strength"}, "phoneme": {"alphabet", "ph"},
               "say-as": {"interpret-as"}, "emotion": {"category"}}


def is_ssml(text: str) -> bool:
    """Whether a request's text is an SSML document: it starts (after whitespace) with ``<speak``, or with an XML
    declaration or a DOCTYPE, which are parsed too so that an entity attack is refused rather than read aloud."""
    return text.lstrip().startswith(("<speak", "<?xml", "<!DOCTYPE"))


def ssml_of(text: str, field: str = "text") -> Script | None:
    """The script of ``text`` when it is an SSML document, None for plain text; InvalidRequest for bad SSML."""
    return parse_ssml(text, field) if is_ssml(text) else None


def parse_ssml(text: str, field: str = "text") -> Script:
    """The script of an SSML document; InvalidRequest (a 400) naming ``field`` and the problem."""
    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise InvalidRequest(f"SSML rejected: {type(exc).__name__}: DTDs, entities and external references are "
                             "not allowed", field) from None
    except ET.ParseError as exc:
        raise InvalidRequest(f"malformed SSML: {exc}", field) from None
    if _local(root.tag) != "speak":
        raise InvalidRequest(f"SSML must have <speak> as its root element, got <{_local(root.tag)}>", field)
    segments: list[Segment] = []
    _walk(root, None, segments, field)
    if not any(isinstance(s, Say) and s.text.strip() for s in segments):
        raise InvalidRequest("SSML has no text to speak", field)
    if len(segments) > MAX_SEGMENTS:
        raise InvalidRequest(f"SSML has {len(segments)} segments; the limit is {MAX_SEGMENTS}", field)
    script = Script(tuple(segments))
    if script.pause_s > MAX_TOTAL_BREAK_S:
        raise InvalidRequest(f"SSML breaks add up to {script.pause_s:g}s; the limit is {MAX_TOTAL_BREAK_S:g}s", field)
    return script


def _local(tag: object) -> str:
    # "{http://www.w3.org/2001/10/synthesis}speak" -> "speak": the W3C namespace is optional in practice.
    return str(tag).rsplit("}", 1)[-1]


def _walk(element: ET.Element, emotion: str | None, out: list[Segment], field: str) -> None:
    """Append ``element``'s content to ``out`` in reading order (its text, children, and their tails)."""
    _say(element.text, emotion, out)
    for child in element:
        name = _local(child.tag)
        if name not in ELEMENTS or name == "speak":
            raise InvalidRequest(f"unsupported SSML element <{name}>; supported: {', '.join(ELEMENTS)}", field)
        _check_attributes(child, name, field)
        if name == "break":
            _leaf(child, name, field)
            out.append(Pause(_break_seconds(child, field)))
        elif name == "phoneme":
            _leaf(child, name, field, text=True)
            out.append(_phoneme(child, emotion, field))
        elif name == "say-as":
            _leaf(child, name, field, text=True)
            _say(spell_out(child.get("interpret-as", ""), child.text or "", field), emotion, out)
        else:
            _walk(child, _emotion(child, field), out, field)
        _say(child.tail, emotion, out)


def _say(text: str | None, emotion: str | None, out: list[Segment]) -> None:
    """Append ``text`` as spoken text, merged into the previous segment when it reads the same way."""
    if not text:
        return
    last = out[-1] if out else None
    if isinstance(last, Say) and last.emotion == emotion and not last.pinyin:
        out[-1] = Say(last.text + text, emotion)
    else:
        out.append(Say(text, emotion))


def _check_attributes(element: ET.Element, name: str, field: str) -> None:
    unknown = sorted(a for a in element.attrib if not a.startswith("{") and a not in _ATTRIBUTES[name])
    if unknown:
        raise InvalidRequest(f"SSML <{name}> has unsupported attribute(s) {', '.join(unknown)}; supported: "
                             f"{', '.join(sorted(_ATTRIBUTES[name]))}", field)


def _leaf(element: ET.Element, name: str, field: str, *, text: bool = False) -> None:
    if len(element):
        raise InvalidRequest(f"SSML <{name}> cannot contain elements", field)
    if not text and (element.text or "").strip():
        raise InvalidRequest(f"SSML <{name}> must be empty", field)
    if text and not (element.text or "").strip():
        raise InvalidRequest(f"SSML <{name}> needs text", field)


def _break_seconds(element: ET.Element, field: str) -> float:
    time, strength = element.get("time"), element.get("strength")
    if time is not None:
        match = _TIME.fullmatch(time)
        if not match:
            raise InvalidRequest(f"SSML <break time={time!r}>: expected e.g. 300ms or 2s", field)
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
        if seconds > MAX_BREAK_S:
            raise InvalidRequest(f"SSML <break time={time!r}> is longer than {MAX_BREAK_S:g}s", field)
        return seconds
    if strength is None:
        return BREAK_STRENGTHS["medium"]  # W3C: a break without attributes is a medium one
    if strength not in BREAK_STRENGTHS:
        raise InvalidRequest(f"SSML <break strength={strength!r}>: expected one of {', '.join(BREAK_STRENGTHS)}",
                             field)
    return BREAK_STRENGTHS[strength]


def _phoneme(element: ET.Element, emotion: str | None, field: str) -> Say:
    text = (element.text or "").strip()
    alphabet, ph = element.get("alphabet", "py"), element.get("ph")
    if alphabet != "py":
        raise InvalidRequest(f"SSML <phoneme alphabet={alphabet!r}>: only 'py' (tone-numbered pinyin) is supported",
                             field)
    if not _HAN.fullmatch(text):
        raise InvalidRequest(f"SSML <phoneme> text must be Chinese characters, got {text!r}", field)
    readings = tuple((ph or "").lower().replace("ü", "v").split())
    bad = [r for r in readings if not is_syllable(r)]
    if not readings or bad:
        raise InvalidRequest(f"SSML <phoneme ph={ph!r}>: expected tone-numbered pinyin such as hang2", field)
    if len(readings) != len(text):
        raise InvalidRequest(f"SSML <phoneme ph={ph!r}>: {len(readings)} syllables for the {len(text)} "
                             f"characters of {text!r}", field)
    return Say(text, emotion, readings)


def _emotion(element: ET.Element, field: str) -> str:
    category = element.get("category")
    if category is None:
        raise InvalidRequest("SSML <emotion> needs a category attribute", field)
    try:
        return normalize_emotion(category)
    except InvalidRequest as exc:
        raise InvalidRequest(f"SSML <emotion category={category!r}>: {exc}", field) from None
