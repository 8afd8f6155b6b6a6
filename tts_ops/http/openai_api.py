"""Former home of the OpenAI-compatible API, now the package ``tts_ops.http.openai`` (``vocab``, ``parsing``,
``routes``). Kept only while ``tts_ops/http/public.py`` (``openai_api.register``) and
``tests/tts_ops/http/test_validation.py`` (``parse_speech``) import this path; new code imports the package's
modules, and this file goes once those two do."""

from __future__ import annotations

from tts_ops.http.openai.parsing import SpeechRequest, parse_speech
from tts_ops.http.openai.routes import openai_error, register

__all__ = ["SpeechRequest", "openai_error", "parse_speech", "register"]
