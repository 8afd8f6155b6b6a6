"""Middlewares shared by the public and admin listeners (daemon process): request ids, access log, and JSON
errors for everything, so a client never sees an HTML error page or a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import HttpVersion10, HttpVersion11, web

from tts_ops.logs.direct import sole_file
from tts_ops.logs.formatters import AccessFormatter, access_line
from tts_vocab import headers as h

access_log = logging.getLogger("tts_ops.access")
log = logging.getLogger("tts_ops.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
# Status logged for requests whose client disconnected before the answer (nginx's convention).
CLIENT_CLOSED = 499
# request[FINAL_STATUS]: set by a handler whose response had already been sent (status line and headers) when it
# failed, e.g. a stream cut mid-body: 499 when the client went away, the failure's 5xx otherwise. The access line
# and the request metric use it, so an aborted stream is not counted as the 200 its client was first sent.
FINAL_STATUS = "final_status"
#: The access line as a plain message (console at DEBUG); access.log's AccessFormatter builds it from the extras.
ACCESS_FORMAT = "%s %s %s %s %d %d %.1fms cache=%s worker=%s request=%s"
_VERSIONS = {HttpVersion10: "HTTP/1.0", HttpVersion11: "HTTP/1.1"}


class RequestObserver(Protocol):
    """What the middleware needs of ``tts_ops.observability.metrics.Metrics``."""

    def observe_request(self, endpoint: str, status: int, latency_s: float) -> None: ...


# Optional metrics of the app (both listeners count their requests).
METRICS = web.AppKey("metrics", RequestObserver)


#: JSON bodies keep Chinese readable ("unknown emotion '开心'"), not \uXXXX escapes; still valid UTF-8 JSON.
readable_json = functools.partial(json.dumps, ensure_ascii=False)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers, dumps=readable_json)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign a request id, turn any error into JSON, and write one access-log line."""
    incoming = request.headers.get(h.REQUEST_ID, "")
    server_id = os.urandom(16).hex()  # 128 random bits as 32 hex digits, as uuid4().hex but without the UUID object
    # A client's id is echoed for tracing; anything derived from the id (saved file names) uses server_id only.
    request_id = incoming if REQUEST_ID.match(incoming) else server_id
    request["request_id"] = request_id
    request["server_id"] = server_id
    # Set up front so the access line's lookups find them: a missing key costs a KeyError inside request.get().
    request[FINAL_STATUS] = None
    request["worker_id"] = None
    start = time.monotonic()
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        # The client went away (aiohttp cancels the handler): still one access line and one metric, as nginx's 499.
        _observe(request, web.Response(status=CLIENT_CLOSED), time.monotonic() - start)
        raise
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, exc.reason if exc.status != 413 else
                              f"request body too large (limit {request.app[MAX_BODY_BYTES]} bytes)")
        for key in ("Allow", h.RETRY_AFTER):
            if key in exc.headers:
                response.headers[key] = exc.headers[key]
    except Exception:
        log.exception("unhandled error in %s %s [request=%s]", request.method, request.path, request_id)
        response = json_error(500, "internal error; see the server log for request " + request_id)
    response.headers[h.REQUEST_ID] = request_id
    _observe(request, response, time.monotonic() - start)
    return response


def _observe(request: web.Request, response: web.StreamResponse, elapsed: float) -> None:
    status = request.get(FINAL_STATUS) or response.status
    _log_access(request, response, status, elapsed)
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.observe_request(_endpoint(request), status, elapsed)


def _endpoint(request: web.Request) -> str:
    """The route's template (``/output/{name}``), never the raw path: raw paths would explode label counts."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _log_access(request: web.Request, response: web.StreamResponse, status: int, seconds: float) -> None:
    # FileResponse is sent with sendfile(), which bypasses aiohttp's byte counter: fall back to Content-Length.
    if not access_log.isEnabledFor(logging.INFO):
        return
    size = (response.body_length if response.prepared else 0) or response.content_length or 0
    remote, cache, worker = request.remote, response.headers.get(h.CACHE), request.get("worker_id")
    version = _VERSIONS.get(request.version) or f"HTTP/{request.version.major}.{request.version.minor}"
    file = sole_file(access_log, AccessFormatter)
    if file is not None:
        # The line AccessFormatter would make of the record below, without making the record (tts_ops.logs.direct).
        file.write_line(access_line(time.time(), remote, request.method, request.path, version, status, size,
                                    seconds * 1000, cache, worker, request["request_id"]))
        return
    args = (remote or "-", request.method, request.path_qs, version,
            status, size, seconds * 1000, cache or "-", worker or "-", request["request_id"])
    extra = {"request_id": request["request_id"], "status": status, "latency_ms": seconds * 1000,
             "path": request.path, "method": request.method, "client": remote, "bytes": size, "worker": worker,
             "cache": cache}
    # makeRecord + handle is what access_log.info does, minus the caller lookup (a stack walk per request that
    # no access line shows): a share of the CPU of every /health and cache hit (bench/frontend_wrk.py).
    access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, ACCESS_FORMAT, args, None,
                                            "_log_access", extra))
