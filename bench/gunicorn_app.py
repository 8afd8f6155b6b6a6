"""The comparison users make: a plain gunicorn + Flask app on the same engine (bench/latency.py starts it with
``gunicorn -w 2 bench.gunicorn_app:app``). Each gunicorn worker loads the engine once (lazily, at its first request
or at import with ``TTS_BENCH_PRELOAD=1``), and ``POST /tts {"text": ...}`` answers a WAV of the whole text, the way
a hand-written service around the engine would: no queue, no cache, no supervision. Same settings as the daemon's
workers: the config's engine options and threads, and its output loudness (``audio.loudness_lufs``, which the
workers apply to every answer), so both sides do the same work per text. Not part of tts-ops.
"""

from __future__ import annotations

import os

from flask import Flask, Response, request

from inference.audio import encode
from inference.engines.base import Engine, SynthesisParams
from inference.loudness import normalize_loudness
from tts_ops.cli.local_engine import load_engine
from tts_ops.config import load_config

app = Flask(__name__)
_engine: Engine | None = None
_config = load_config(env={})


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = load_engine(_config, _config.workers.engine)
        _engine.warm_up()
    return _engine


@app.post("/tts")
def tts() -> Response:
    text = (request.get_json(force=True) or {}).get("text", "")
    voice = engine()
    samples = voice.synthesize(text, SynthesisParams())
    if _config.audio.loudness_lufs is not None:
        samples = normalize_loudness(samples, voice.info().sample_rate, _config.audio.loudness_lufs)
    audio = encode(samples, voice.info().sample_rate, "wav")
    return Response(audio.data, content_type=audio.content_type)


@app.get("/health")
def health() -> Response:
    return Response(b'{"status":"healthy"}', content_type="application/json")


if os.environ.get("TTS_BENCH_PRELOAD") == "1":
    engine()
