"""The OpenAPI 3.1 document of tts-ops, served at ``GET /openapi.json`` on the public listener (daemon process).

Hand-written on purpose: aiohttp has no schema layer (handlers take a raw request and validate by hand in
``validation.py`` / ``openai/parsing.py``), so there is nothing to generate it from, and a generator bolted on
would describe its own idea of the API rather than what the handlers do. Keep it exact instead: every status,
header and body here is one the code produces, and ``tests/e2e/test_openapi.py`` runs schemathesis against a live
daemon to prove it (no 5xx, no response that contradicts this document). The vocabulary it enumerates (formats,
emotions, header names, OpenAI's models and ranges) comes from ``tts_vocab`` and ``tts_ops.http.openai.vocab``.

Values that come from the configuration (text limits, engine, voices, the admin listener's address) are filled
in per request, so the document always describes the running daemon.

One module per path group: ``public`` (``/tts``, health, the Web UI, saved outputs, this document and ``/docs``),
``openai`` (``/v1/*``) and ``admin`` (``/admin/*``, ``/metrics``), over ``common`` (schema atoms, error responses,
headers, security). The admin API lives on its own listener: its paths carry their own ``servers`` entry and the
``adminToken`` bearer scheme; everything else is on the public listener, where ``apiKey`` is required only when
``server.api_keys`` is configured (without keys the document adds the optional ``{}`` alternative).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from aiohttp import web

from tts_ops.config import Config
from tts_ops.http.openapi import admin, common, openai, public


def build_document(config: Config, admin_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI document for ``config``; ``admin_url`` defaults to ``http://<admin.host>:<admin.port>``."""
    if admin_url is None:
        admin_url = admin.admin_url(config)
    return {
        "openapi": common.OPENAPI_VERSION,
        "info": {
            "title": "tts-ops",
            "version": _version(),
            "description": "Chinese multi-emotion TTS behind a supervisor daemon: the reference API (POST /tts), "
                           "an OpenAI-compatible speech API (/v1), health endpoints and the admin API (its own "
                           f"listener, {admin_url}). Engine: {config.workers.engine}.",
        },
        "servers": [{"url": "/", "description": "Public listener (server.host:server.port)"}],
        "tags": [{"name": "public"}, {"name": "openai", "description": "OpenAI-compatible (SDKs work unchanged)"},
                 {"name": "admin", "description": "Admin listener, bearer token from admin.token / token_file"}],
        "paths": {**public.paths(config), **openai.paths(config), **admin.paths(admin_url)},
        "components": {
            "schemas": {**common.error_schemas(), **public.schemas(config), **openai.schemas(config),
                        **admin.schemas()},
            "headers": common.components_headers(),
            "securitySchemes": common.security_schemes(),
        },
    }


def _version() -> str:
    try:
        return version("tts-ops")
    except PackageNotFoundError:  # not installed as a distribution (running from a source tree)
        return "0.0.0"


class ConfigSource(Protocol):
    """Whatever holds the daemon's current config (the synthesis service)."""

    @property
    def config(self) -> Config: ...


def make_handler(source: ConfigSource) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /openapi.json``: the document for the daemon's current config (rebuilt per request: a SIGHUP may
    change limits or voices; it takes well under a millisecond)."""

    async def handle(request: web.Request) -> web.Response:
        document = build_document(source.config)
        return web.json_response(document, headers={"Cache-Control": "no-cache"})

    return handle


__all__ = ["ConfigSource", "build_document", "make_handler"]
