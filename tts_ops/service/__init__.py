"""Synthesis as a service, independent of HTTP (daemon process, event loop). Nothing here imports aiohttp's server
types; the ``http`` package adapts it to requests and responses.

- ``synthesis``: ``SynthesisService``: cache key, single flight, dispatch, recording, counters (``totals``);
- ``stream_production``: the production of a stream (chunk pipeline through an assembler, the whole file);
- ``chunk_pipeline``: the ordered, parallel chunk runner; ``assemblers`` and ``ogg``: one assembler per format;
- ``errors``: the errors the http layer renders; ``totals``: the counters; ``voices``: the engine's default voice.
"""
