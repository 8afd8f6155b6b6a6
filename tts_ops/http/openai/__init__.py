"""OpenAI-compatible speech API on the public listener (daemon process, event loop): ``POST /v1/audio/speech``,
``GET /v1/models``, ``GET /v1/models/{model}``, plus bearer-key authentication of ``/v1/*`` and ``/tts`` and the
OpenAPI document at ``GET /openapi.json``.

- ``vocab``: OpenAI's side of the vocabulary (model aliases, response and stream formats, the speed range, the
  instruction words that select an emotion, the voices a config accepts). Pure; the OpenAPI document
  (``tts_ops.http.openapi``) describes the API from it.
- ``parsing``: a ``/v1/audio/speech`` body -> a validated ``SpeechRequest`` (the worker job plus what the response
  reports). Pure.
- ``routes``: the aiohttp handlers, the key/error middleware and ``register(app, frontend)``, which
  ``FrontEnd.build_app`` calls.

This ``__init__`` imports nothing, so ``vocab`` can be imported (by the OpenAPI document) without ``routes``.

Clients use the official SDKs unchanged (``OpenAI(base_url="http://host:5000/v1", api_key=...)``). Mapping onto
this service:

- ``model``: ``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` and their snapshots (any id that is one of these
  families followed by ``-`` and a suffix, such as ``tts-1-1106``, ``tts-1-hd-1106`` or
  ``gpt-4o-mini-tts-2025-03-20``: OpenAI adds dated snapshots over time and SDK users pin them) are aliases of the
  configured engine; an engine id is accepted when it is the configured one (else 400 naming it).
- ``voice``: OpenAI names through ``engines.voice_map``, or the engine's own voice ids and ``default`` (the
  engine's default voice and ``default`` are one voice, with one cache key: ``validation.canonical_voice``).
- ``speed``: OpenAI's 0.25-4.0 is accepted; the engines do 0.5-2.0, so the value is clamped into that range and
  the speed used is reported in ``X-Speed-Applied``.
- ``instructions``: emotion words (English or Chinese) select the emotion; the extension field ``emotion`` wins.
- ``response_format``: mp3 (default), opus (Ogg), flac, wav, pcm (s16le mono at 24 kHz, ``X-Sample-Rate``); aac
  is not supported (400).
- ``stream_format``: ``audio`` (default) streams the file with chunked encoding; ``sse`` sends
  ``speech.audio.delta`` events (base64 audio) then ``speech.audio.done`` with usage.

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` on every ``/v1`` path, including
the router's 404/405 and the body-size 413.
"""
