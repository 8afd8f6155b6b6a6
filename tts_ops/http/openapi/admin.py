"""The admin listener's paths (``/admin/*``, ``/metrics``) in the OpenAPI document (daemon process, pure). Each
operation carries its own ``servers`` entry (the admin listener's address) and the ``adminToken`` scheme."""

from __future__ import annotations

from typing import Any

from tts_ops.config import Config
from tts_ops.http.openapi.common import BOOL, INT, NUM, STR, error, errors, json_content, ok, schema_ref
from tts_ops.maintenance import JOB_IDS
from tts_vocab.limits import MAX_WORKERS


def schemas() -> dict[str, Any]:
    return {
        "AdminStatus": {
            "type": "object",
            "required": ["pid", "uptime_s", "accepting", "engine", "workers", "queue_depth", "queue_limit",
                         "in_flight", "totals"],
            "properties": {
                "pid": INT, "uptime_s": NUM, "reloads": INT, "accepting": BOOL, "engine": STR,
                "workers": {"type": "object", "required": ["target", "configured", "override", "ready", "total",
                                                           "items"],
                            "properties": {"target": INT, "configured": INT,
                                           "override": {"type": ["integer", "null"]}, "ready": INT, "total": INT,
                                           "items": {"type": "array", "items": {"type": "object"}}}},
                "queue_depth": INT, "queue_limit": INT, "in_flight": INT,
                "totals": {"type": "object", "additionalProperties": INT},
            }},
        "ScaleRequest": {"oneOf": [
            {"type": "object", "required": ["workers"], "additionalProperties": False,
             "properties": {"workers": {"type": "integer", "minimum": 1, "maximum": MAX_WORKERS}}},
            {"type": "object", "required": ["reset"], "additionalProperties": False,
             "properties": {"reset": {"const": True, "description": "Back to the config file's workers.count."}}}]},
    }


def admin_url(config: Config) -> str:
    """``http://<admin.host>:<admin.port>``, with a wildcard host shown as the loopback address."""
    host = config.admin.host if config.admin.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{config.admin.port}"


def paths(url: str) -> dict[str, Any]:
    """The admin operations, each served from ``url``."""
    server = {"url": url, "description": "Admin listener (admin.host:admin.port)"}
    return {path: {method: {"servers": [server], "tags": ["admin"], "security": [{"adminToken": []}], **operation}}
            for path, (method, operation) in _operations().items()}


def _operations() -> dict[str, tuple[str, dict[str, Any]]]:
    """path -> (method, operation without servers, tags and security): a declarative table."""
    return {
        "/admin/status": ("get", {
            "operationId": "adminStatus", "summary": "Daemon, workers, queue and request totals",
            "responses": {"200": ok("Status.", schema_ref("AdminStatus")), **errors("Error", 401)}}),
        "/admin/workers/{worker_id}/restart": ("post", {
            "operationId": "adminRestartWorker", "summary": "Replace one worker (new one ready first)",
            "parameters": [{"name": "worker_id", "in": "path", "required": True, "schema": STR,
                            "description": "Worker id as in /admin/status (w1, w2, ...)."}],
            "responses": {
                "200": ok("Replaced.", {"type": "object", "required": ["restarted", "replacement", "state"],
                                        "properties": {"restarted": STR, "replacement": STR, "state": STR}}),
                **errors("Error", 401, 404),
                "409": error("The replacement did not become ready; the old worker keeps serving.")}}),
        "/admin/restart": ("post", {
            "operationId": "adminRollingRestart", "summary": "Rolling restart of every worker, one at a time",
            "responses": {
                "200": ok("Done.", {"type": "object", "required": ["replaced"],
                                    "properties": {"replaced": {"type": "array", "items": STR}}}),
                **errors("Error", 401),
                "409": error("A replacement did not become ready; the restart stopped there.")}}),
        "/admin/scale": ("post", {
            "operationId": "adminScale", "summary": "Set the number of workers",
            "requestBody": {"required": True, "content": json_content(schema_ref("ScaleRequest"))},
            "responses": {
                "200": ok("New target and worker status.", {"type": "object", "required": ["workers", "status"],
                                                             "properties": {"workers": INT,
                                                                            "status": {"type": "object"}}}),
                **errors("Error", 400, 401, 413, texts={
                    400: "The body is not JSON (malformed, or nested too deeply to parse), or ``workers`` is not an "
                         f"integer between 1 and {MAX_WORKERS}."})}}),
        "/admin/drain": ("post", {
            "operationId": "adminDrain", "summary": "Drain then stop, as SIGTERM",
            "description": "/health and /ready answer 503 at once while requests are still served for "
                           "server.drain_delay_s, then the listener closes and in-flight requests get "
                           "server.graceful_timeout_s; the daemon then exits 0.",
            "responses": {
                "202": ok("Drain started (already: it was under way).", {
                    "type": "object", "required": ["draining", "already", "state", "in_flight"],
                    "properties": {"draining": BOOL, "already": BOOL, "state": STR, "in_flight": INT}}),
                **errors("Error", 401)}}),
        "/admin/cache": ("get", {
            "operationId": "adminCacheStats", "summary": "Result cache statistics",
            "responses": {"200": ok("Backend (memory, redis or disabled), whether it is up, the breaker state and "
                                    "the counters (hits, misses, stores, ...).",
                                    {"type": "object", "required": ["backend", "up"],
                                     "properties": {"backend": STR, "up": BOOL, "hits": INT, "misses": INT}}),
                          **errors("Error", 401)}}),
        "/admin/cache/purge": ("post", {
            "operationId": "adminCachePurge", "summary": "Delete every cached result",
            "responses": {"200": ok("How many items were deleted.",
                                    {"type": "object", "required": ["deleted", "backend"],
                                     "properties": {"deleted": INT, "backend": STR}}),
                          **errors("Error", 401),
                          "503": error("The cache backend (Redis) is unavailable; the message says how many "
                                       "items were deleted before it failed.")}}),
        "/admin/maintenance/{job}": ("post", {
            "operationId": "adminRunMaintenance", "summary": "Run a maintenance job now",
            "parameters": [{"name": "job", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": list(JOB_IDS)}}],
            "responses": {"200": ok("The job's status after the run.", {"type": "object"}),
                          **errors("Error", 401, 404)}}),
        "/metrics": ("get", {
            "operationId": "metrics", "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text exposition format.",
                                  "content": {"text/plain": {"schema": STR}}},
                          **errors("Error", 401),
                          "404": error("Metrics are disabled (metrics.enabled: false).")}}),
    }
