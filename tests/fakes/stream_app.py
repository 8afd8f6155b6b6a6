"""A one-route aiohttp test app around ``stream_job``: POST /s streams the job that ``job_for(body)`` builds, with
the real request-context middleware and JSON errors (what the public and OpenAI routes wrap it in)."""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.http.errors import HttpError
from tts_ops.http.middleware import json_error, request_context
from tts_ops.http.streaming import stream_job


async def serve_stream(frontend: Any, job_for: Callable[[dict], tuple[dict, bool]]) -> TestClient:
    """Started test client; ``job_for`` maps the request's JSON body to ``(job, sse)``."""
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else {}
        job, sse = job_for(body)
        try:
            return await stream_job(frontend, request, job, sse=sse)
        except HttpError as exc:
            return json_error(exc.status, str(exc), exc.headers)

    app = web.Application(middlewares=[request_context])
    app.router.add_post("/s", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client
