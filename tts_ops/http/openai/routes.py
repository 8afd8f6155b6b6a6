"""The ``/v1`` routes, ``/openapi.json`` (and its Swagger UI, ``/docs``) and the key/error middleware (daemon
process, event loop). Wired in by ``FrontEnd.build_app`` with ``register(app, service)`` (the package docstring says
how OpenAI's API maps onto this service)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from tts_ops.config import Config
from tts_ops.http import docs, openapi
from tts_ops.http.errors import HttpError
from tts_ops.http.middleware import readable_json
from tts_ops.http.openai.parsing import parse_speech
from tts_ops.http.openai.vocab import (
    MODEL_ALIASES,
    MODELS_CREATED,
    SERVICE_PARAMS,
    available_voices,
    is_model_alias,
)
from tts_ops.http.streaming import StreamingService, stream_job
from tts_ops.http.validation import check_content_type, load_json
from tts_vocab import headers as h

log = logging.getLogger("tts_ops.openai")

PROTECTED_PREFIX = "/v1/"


class SpeechService(StreamingService, Protocol):
    """What the OpenAI routes need of the synthesis service (``tts_ops.service.synthesis.SynthesisService``): its
    current config (read per request: a SIGHUP may change it), admission, the counters, and what a stream needs."""

    @property
    def config(self) -> Config: ...

    def admit(self) -> None: ...


# --- responses ---------------------------------------------------------------------------------------------------


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    """An error in OpenAI's shape; 5xx are ``server_error``, everything else ``invalid_request_error``."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers, dumps=readable_json)


def service_error(exc: HttpError) -> web.Response:
    """A service or parser error in OpenAI's shape, its ``param`` in OpenAI's field names (``text`` -> ``input``)."""
    param = SERVICE_PARAMS.get(exc.param, exc.param) if exc.param is not None else None
    return openai_error(exc.status, str(exc), param=param, code=exc.code, headers=exc.headers)


def model_entries(config: Config) -> list[dict[str, Any]]:
    return [model_entry(model, config) for model in (*MODEL_ALIASES, config.workers.engine)]


def model_entry(model: str, config: Config) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": MODELS_CREATED, "owned_by": "tts-ops",
            "engine": config.workers.engine, "voices": available_voices(config)}


class OpenAIApi:
    def __init__(self, service: SpeechService) -> None:
        self.service = service

    async def handle_speech(self, request: web.Request) -> web.StreamResponse:
        service = self.service
        service.totals.request()
        try:
            service.admit()
            check_content_type(request.content_type)
            speech = parse_speech(load_json(await request.read()), service.config)
            return await stream_job(service, request, speech.job, sse=speech.sse, headers=speech.headers())
        except HttpError as exc:
            if exc.is_client_error:
                service.totals.client_error()
            return service_error(exc)

    async def handle_models(self, request: web.Request) -> web.Response:
        config = self.service.config
        return web.json_response({"object": "list", "data": model_entries(config),
                                  "voices": available_voices(config)})

    async def handle_model(self, request: web.Request) -> web.Response:
        name = request.match_info["model"]
        config = self.service.config
        if is_model_alias(name) or name == config.workers.engine:
            return web.json_response(model_entry(name, config))
        return openai_error(404, f"The model {name!r} does not exist.", param="model", code="model_not_found")


# --- middleware: API keys and OpenAI-shaped errors on /v1 -----------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def key_matches(given: str, keys: tuple[str, ...]) -> bool:
    """Constant-time check of ``given`` against every configured key (no early exit on a match)."""
    given_bytes = given.encode("utf-8", "surrogateescape")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given_bytes, key.encode("utf-8", "surrogateescape"))
    return matched


def is_protected(path: str) -> bool:
    return path in ("/tts", "/frontend", "/v1") or path.startswith(PROTECTED_PREFIX)


def make_middleware(service: SpeechService) -> Callable[..., Any]:
    @web.middleware
    async def openai_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        openai_shape = path == "/v1" or path.startswith(PROTECTED_PREFIX)
        keys = tuple(service.config.server.api_keys)  # read per request: SIGHUP may change the keys
        if keys and is_protected(path):
            refused = _refuse_key(request.headers.get("Authorization", ""), keys, openai_shape)
            if refused is not None:
                return refused
        if not openai_shape:
            return await handler(request)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _router_error(exc, request, service.config.server.max_body_bytes)
        except HttpError as exc:
            return service_error(exc)
        except Exception:
            request_id = request.get("request_id", "-")
            log.exception("unhandled error in %s %s [request=%s]", request.method, path, request_id)
            return openai_error(500, "Internal error; see the server log for request " + request_id)

    return openai_middleware


def _refuse_key(authorization: str, keys: tuple[str, ...], openai_shape: bool) -> web.Response | None:
    """The 401 for a missing or wrong bearer key; None when the key is one of ``keys``."""
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _unauthorized(openai_shape, "You didn't provide an API key. Provide it in an Authorization "
                                           "header using Bearer auth (Authorization: Bearer YOUR_KEY).", None)
    if not key_matches(given.strip(), keys):
        return _unauthorized(openai_shape, "Incorrect API key provided.", "invalid_api_key")
    return None


def _router_error(exc: web.HTTPException, request: web.Request, max_body_bytes: int) -> web.Response:
    """aiohttp's own 4xx/5xx (no route, wrong method, body too large) in OpenAI's shape."""
    if exc.status == 413:
        message = f"Request body too large (limit {max_body_bytes} bytes)."
    elif exc.status == 404:
        message = f"Invalid URL ({request.method} {request.path})"
    elif exc.status == 405:
        message = f"Method {request.method} is not allowed for {request.path}."
    else:
        message = exc.reason
    headers = {key: exc.headers[key] for key in ("Allow", h.RETRY_AFTER) if key in exc.headers}
    return openai_error(exc.status, message, headers=headers)


def _unauthorized(openai_shape: bool, message: str, code: str | None) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="tts-ops"'}
    if openai_shape:
        return openai_error(401, message, code=code, headers=headers)
    return web.json_response({"error": message}, status=401, headers=headers, dumps=readable_json)


# --- wiring --------------------------------------------------------------------------------------------------------


def register(app: web.Application, service: SpeechService) -> None:
    """Add the /v1 routes, /openapi.json, its Swagger UI (/docs) and the key/error middleware to the public app
    (before it starts)."""
    api = OpenAIApi(service)
    app.middlewares.append(make_middleware(service))
    app.router.add_post("/v1/audio/speech", api.handle_speech)
    app.router.add_get("/v1/models", api.handle_models)
    app.router.add_get("/v1/models/{model}", api.handle_model)
    app.router.add_get("/openapi.json", openapi.make_handler(service))
    docs.register(app)
