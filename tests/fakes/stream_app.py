"""A one-route aiohttp test app around ``stream_job``: POST /s streams the job that ``job_for(body)`` builds, with
the real request-context middleware and JSON errors (what the public and OpenAI routes wrap it in)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.http.errors import HttpError
from tts_ops.http.middleware import json_error, request_context
from tts_ops.http.streaming import StreamingService, stream_job
from tts_vocab import SynthesisJob


async def serve_stream(service: StreamingService, job_for: Callable[[dict], tuple[SynthesisJob, bool]]
                       ) -> TestClient:
    """Started test client; ``job_for`` maps the request's JSON body to ``(job, sse)``; ``service``: the real
    ``SynthesisService`` (``tests.fakes.chunk_worker.make_service`` or ``FrontEnd.service``)."""
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else {}
        job, sse = job_for(body)
        try:
            return await stream_job(service, request, job, sse=sse)
        except HttpError as exc:
            return json_error(exc.status, str(exc), exc.headers)

    app = web.Application(middlewares=[request_context])
    app.router.add_post("/s", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client
