"""Synthesis as a service, independent of HTTP (daemon process, event loop): the cache key, single flight,
dispatch and recording of whole syntheses, and the streaming pipeline with its per-format assemblers. Nothing
here imports aiohttp's server types; the ``http`` package adapts it to requests and responses."""
