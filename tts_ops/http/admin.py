"""The admin API on its own listener (default 127.0.0.1:5001), every endpoint behind a bearer token
(daemon process, event loop).

If no token is configured one is generated at start and written to a 0600 file in the state directory, which the
``tts-ops`` CLI reads; the daemon writes it only once both its ports are bound. Tokens are compared in constant
time, as bytes.

The routes see the daemon only through ``AdminTarget`` (status, the worker pool, the cache, the maintenance jobs),
which ``tts_ops.daemon.Daemon`` satisfies structurally; the metrics, when enabled, are handed over on their own.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from tts_ops.http.errors import RequestError
from tts_ops.http.middleware import MAX_BODY_BYTES, METRICS, json_error, request_context
from tts_ops.http.validation import load_json
from tts_ops.observability.metrics import Metrics
from tts_ops.supervisor.handle import WorkerHandle
from tts_ops.supervisor.pool import ReplacementFailed
from tts_vocab.limits import MAX_WORKERS

log = logging.getLogger("tts_ops.admin")
# Admin requests carry at most a small JSON object ({"workers": 2}); anything larger is refused before parsing.
ADMIN_MAX_BODY_BYTES = 65536


def resolve_token(configured: str | None) -> str:
    """The configured token, else a fresh random one. Nothing is written here: ``tts_ops.instance.InstanceFiles``
    publishes a generated one."""
    return configured or secrets.token_urlsafe(32)


def _header_bytes(value: str) -> bytes:
    # aiohttp decodes header bytes that are not UTF-8 into lone surrogates; plain encode() would raise (a 500)
    # where a wrong token must get a 401.
    return value.encode("utf-8", "surrogateescape")


def bearer_auth(token: str) -> Callable:
    expected = _header_bytes(token)

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(_header_bytes(given.strip()), expected):
            return json_error(401, "missing or invalid admin token (Authorization: Bearer <token>)",
                              {"WWW-Authenticate": 'Bearer realm="tts-ops admin"'})
        return await handler(request)

    return middleware


class AdminPool(Protocol):
    """The worker pool's admin operations (``tts_ops.supervisor.pool.Supervisor``)."""

    @property
    def workers(self) -> Mapping[str, WorkerHandle]: ...

    async def restart_worker(self, worker_id: str) -> WorkerHandle: ...

    async def rolling_restart(self, reason: str = ...) -> list[str]: ...

    def slot_ids(self) -> list[str]: ...


class AdminCache(Protocol):
    """``tts_ops.cache.ResultCache``: its stats and a purge of every entry."""

    def stats(self) -> dict[str, Any]: ...

    async def purge(self) -> int: ...


class AdminMaintenance(Protocol):
    """``tts_ops.maintenance.scheduler.Maintenance``: run a job now, list the jobs."""

    async def run_now(self, job_id: str) -> dict: ...

    def status(self) -> list[dict]: ...


class AdminTarget(Protocol):
    """What the admin routes need from the daemon, and nothing else."""

    @property
    def supervisor(self) -> AdminPool: ...

    @property
    def cache(self) -> AdminCache: ...

    @property
    def maintenance(self) -> AdminMaintenance: ...

    def status(self) -> dict[str, Any]: ...

    async def scale(self, count: int | None) -> None:
        """A runtime scale kept across reloads; None = back to the config file's count."""

    def request_stop(self, reason: str) -> bool:
        """Drain, then stop (as SIGTERM); False if a stop was already under way."""


class AdminApi:
    """``metrics``: served at ``/metrics`` on this listener; None = metrics disabled (no route)."""

    def __init__(self, daemon: AdminTarget, token: str, *, metrics: Metrics | None = None) -> None:
        self.daemon = daemon
        self.token = token
        self.metrics = metrics
        self.started = time.time()

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[request_context, bearer_auth(self.token)],
                              client_max_size=ADMIN_MAX_BODY_BYTES)
        app[MAX_BODY_BYTES] = ADMIN_MAX_BODY_BYTES
        app.router.add_get("/admin/status", self.handle_status)
        app.router.add_post("/admin/workers/{worker_id}/restart", self.handle_restart_worker)
        app.router.add_post("/admin/restart", self.handle_rolling_restart)
        app.router.add_post("/admin/scale", self.handle_scale)
        app.router.add_post("/admin/drain", self.handle_drain)
        app.router.add_get("/admin/cache", self.handle_cache)
        app.router.add_post("/admin/cache/purge", self.handle_cache_purge)
        app.router.add_post("/admin/maintenance/{job}", self.handle_maintenance)
        if self.metrics is not None:
            app[METRICS] = self.metrics
            app.router.add_get("/metrics", self.metrics.handle)
        return app

    async def handle_maintenance(self, request: web.Request) -> web.Response:
        job = request.match_info["job"]
        try:
            result = await self.daemon.maintenance.run_now(job)
        except KeyError:
            jobs = ", ".join(entry["id"] for entry in self.daemon.maintenance.status())
            return json_error(404, f"no maintenance job {job!r}; jobs: {jobs}")
        return web.json_response(result)

    async def handle_cache(self, request: web.Request) -> web.Response:
        return web.json_response(self.daemon.cache.stats())

    async def handle_cache_purge(self, request: web.Request) -> web.Response:
        deleted = await self.daemon.cache.purge()
        stats = self.daemon.cache.stats()
        if not stats.get("up", True):
            return json_error(503, f"cache backend {stats.get('backend')} is unavailable; deleted {deleted} keys "
                                   "before it failed")
        return web.json_response({"deleted": deleted, "backend": stats.get("backend")})

    async def handle_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.daemon.status())

    async def handle_restart_worker(self, request: web.Request) -> web.Response:
        worker_id = request.match_info["worker_id"]
        try:
            new = await self.daemon.supervisor.restart_worker(worker_id)
        except KeyError:
            known = ", ".join(self.daemon.supervisor.slot_ids()) or "none"
            return json_error(404, f"no worker {worker_id!r}; workers: {known}")
        except ReplacementFailed as exc:
            return json_error(409, str(exc))
        return web.json_response({"restarted": worker_id, "replacement": new.key, "state": new.state.value})

    async def handle_rolling_restart(self, request: web.Request) -> web.Response:
        try:
            replaced = await self.daemon.supervisor.rolling_restart("rolling restart (admin)")
        except ReplacementFailed as exc:
            return json_error(409, str(exc))
        return web.json_response({"replaced": replaced})

    async def handle_scale(self, request: web.Request) -> web.Response:
        try:
            # read() + load_json, not request.json(): that decodes with the client's charset (an unknown one raised
            # LookupError) and json.loads raises RecursionError for deep nesting: both were 500s.
            body = load_json(await request.read())
        except RequestError as exc:
            return json_error(400, f"{exc}; expected an object like {{\"workers\": 2}}")
        usage = (f"'workers' must be an integer between 1 and {MAX_WORKERS}: expected an object like "
                 '{"workers": 2}, or {"reset": true} to follow the config file again')
        if not isinstance(body, dict) or set(body) - {"workers", "reset"}:
            return json_error(400, usage)
        if set(body) == {"reset"} and body["reset"] is True:
            await self.daemon.scale(None)
            status = self.daemon.status()["workers"]
            return web.json_response({"workers": status["target"], "status": status})
        count = body.get("workers")
        if isinstance(count, float) and count.is_integer():
            count = int(count)  # JSON Schema's integer includes 2.0
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_WORKERS or "reset" in body:
            return json_error(400, usage)
        await self.daemon.scale(count)
        return web.json_response({"workers": count, "status": self.daemon.status()["workers"]})

    async def handle_drain(self, request: web.Request) -> web.Response:
        """Drain then stop, as SIGTERM: answered at once (202), the daemon exits once drained."""
        started = self.daemon.request_stop("POST /admin/drain")
        status = self.daemon.status()
        return web.json_response({"draining": True, "already": not started, "state": status["state"],
                                  "in_flight": status["in_flight"]}, status=202)
