"""The OpenAPI document built in-process (no daemon; ``tests/e2e/test_openapi.py`` runs schemathesis against a live
one): it enumerates the shared vocabulary, declares the statuses the synthesis paths really answer, and puts the
admin paths on the admin listener."""

from __future__ import annotations

import pytest

from tts_ops.config import load_config
from tts_ops.http.docs import ASSETS
from tts_ops.http.openai.vocab import RESPONSE_FORMATS, available_voices
from tts_ops.http.openapi import build_document
from tts_vocab import EMOTIONS, FORMATS, headers
from tts_vocab.formats import FORMAT_SPELLINGS


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cfg")
    return load_config(overrides={"paths": {"state_dir": str(tmp / "s"), "runtime_dir": str(tmp / "r")},
                                  "server": {"max_text_chars": 40, "max_input_chars": 60},
                                  "admin": {"host": "0.0.0.0", "port": 5099}}, env={})


@pytest.fixture(scope="module")
def document(config):
    return build_document(config)


def test_every_openai_response_format_is_a_format_of_the_table():
    assert set(RESPONSE_FORMATS) <= set(FORMATS)
    assert "aac" not in RESPONSE_FORMATS


def test_request_enums_come_from_the_vocabulary(document, config):
    schemas = document["components"]["schemas"]
    tts, speech = schemas["TtsRequest"]["properties"], schemas["SpeechRequest"]["properties"]
    assert tts["format"]["enum"] == [*FORMAT_SPELLINGS, None]
    assert set(tts["emotion"]["enum"]) == {*EMOTIONS, "hate", None}
    assert speech["emotion"]["enum"] == tts["emotion"]["enum"]
    assert speech["response_format"]["enum"] == [*RESPONSE_FORMATS, None]
    assert speech["voice"]["oneOf"][0]["enum"] == available_voices(config)
    assert tts["text"]["maxLength"] == 40 and speech["input"]["maxLength"] == 60


def test_audio_answers_list_every_content_type_and_the_header_names(document):
    answer = document["paths"]["/v1/audio/speech"]["post"]["responses"]["200"]
    assert set(answer["content"]) == {fmt.content_type for fmt in FORMATS.values()} | {"text/event-stream"}
    assert {headers.CACHE, headers.SAMPLE_RATE, headers.SPEED_APPLIED, headers.MODEL} <= set(answer["headers"])
    forwarded = {*headers.MODEL_HEADERS, headers.SYNTHESIS_TIME, headers.AUDIO_DURATION, headers.WORKER}
    for path in ("/tts", "/v1/audio/speech"):  # the worker's reply headers the public answer forwards
        assert forwarded <= set(document["paths"][path]["post"]["responses"]["200"]["headers"]), path
    assert headers.SPEED_APPLIED not in document["paths"]["/tts"]["post"]["responses"]["200"]["headers"]
    assert set(document["components"]["headers"]) == {headers.REQUEST_ID, headers.RETRY_AFTER, "WWW-Authenticate",
                                                      "Allow"}


@pytest.mark.parametrize("path", ["/tts", "/v1/audio/speech"])
def test_synthesis_paths_declare_what_they_answer(document, path):
    responses = document["paths"][path]["post"]["responses"]
    assert {"200", "400", "401", "413", "415", "500", "502", "503", "504"} == set(responses)
    assert "nothing speakable" in responses["400"]["description"]
    assert headers.RETRY_AFTER in responses["503"]["headers"]


def test_over_long_text_is_a_413_on_tts_and_a_400_on_v1(document):
    assert "``text`` longer than ``server.max_text_chars`` (40)" in \
        document["paths"]["/tts"]["post"]["responses"]["413"]["description"]
    speech = document["paths"]["/v1/audio/speech"]["post"]["responses"]
    assert "string_above_max_length" in speech["400"]["description"]
    assert "max_text_chars" not in speech["413"]["description"]
    assert "text" not in document["paths"]["/admin/scale"]["post"]["responses"]["413"]["description"]


def test_admin_paths_are_served_by_the_admin_listener(document):
    admin = {path: ops for path, ops in document["paths"].items() if path.startswith("/admin") or path == "/metrics"}
    assert len(admin) == 9
    for ops in admin.values():
        for operation in ops.values():
            assert operation["servers"][0]["url"] == "http://127.0.0.1:5099"
            assert operation["security"] == [{"adminToken": []}] and operation["tags"] == ["admin"]
    public = document["paths"]["/tts"]["post"]
    assert "servers" not in public and public["security"] == [{"apiKey": []}, {}]


def test_the_document_is_built_afresh_each_time(config):
    first = build_document(config)
    first["components"]["headers"].clear()
    first["paths"]["/tts"]["post"]["responses"]["200"]["headers"].clear()
    second = build_document(config)
    assert second["components"]["headers"] and second["paths"]["/tts"]["post"]["responses"]["200"]["headers"]


def test_docs_and_every_asset_it_serves_are_declared(document):
    assert document["paths"]["/docs"]["get"]["responses"]["200"]["content"] == {"text/html": {"schema": {
        "type": "string"}}}
    asset = document["paths"]["/docs/{asset}"]["get"]
    assert asset["parameters"][0]["schema"]["enum"] == list(ASSETS)
    assert set(asset["responses"]["200"]["content"]) == set(ASSETS.values())
    assert set(asset["responses"]) == {"200", "404"}
