"""What the supervisor reports of one worker handle: the row of ``/admin/status`` and ``tts-ops status``
(daemon process, pure)."""

from __future__ import annotations

from tts_ops.supervisor.handle import WorkerHandle

__all__ = ["status_row"]


def status_row(w: WorkerHandle, now: float) -> dict[str, object]:
    """One JSON-ready row; ``now`` is ``time.monotonic()`` so every row of a snapshot shares one clock reading."""
    return {
        "id": w.id, "key": w.key, "replacing": w.replacing, "pid": w.pid, "state": w.state.value,
        "uptime_s": round(now - w.started_at, 1) if w.started_at and w.pid else None,
        "restarts": w.restarts, "last_exit_reason": w.last_exit_reason, "last_exit_code": w.last_exit_code,
        "last_error": w.last_error,
        "rss_mb": round(w.rss_bytes / 2**20, 1) if w.rss_bytes else None, "cpu_percent": w.cpu_percent,
        "in_flight": w.in_flight, "served": w.served,
        "last_probe_ms": round(w.last_probe_ms, 2) if w.last_probe_ms is not None else None,
        "probe_failures": w.probe_failures, "replaces": w.replaces,
        "model_version": w.health.get("model_version"), "recycle_after": w.recycle_after,
    }
