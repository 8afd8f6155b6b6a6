"""What the metrics read from each source at scrape time, as ``Protocol``s (daemon process): the supervisor
(``tts_ops.supervisor.pool.Supervisor``), the balancer (``tts_ops.upstream.balancer.Balancer``), the cache
(``tts_ops.cache.ResultCache``), maintenance (``tts_ops.maintenance.scheduler.Maintenance``) and the log manager
(``tts_ops.logs.manager.LogManager``); tests pass fakes that satisfy them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from tts_ops.supervisor.states import WorkerState


class WorkerGauges(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def state(self) -> WorkerState: ...
    @property
    def rss_bytes(self) -> int | None: ...
    @property
    def served(self) -> int: ...
    @property
    def health(self) -> Mapping[str, object]: ...


class PoolGauges(Protocol):
    @property
    def workers(self) -> Mapping[str, WorkerGauges]: ...
    def current_workers(self) -> Iterable[WorkerGauges]: ...
    @property
    def restarts_by_reason(self) -> Mapping[str, int]: ...


class QueueGauges(Protocol):
    @property
    def queue_depth(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def queue_limit(self) -> int: ...


class StatsSource(Protocol):
    """The cache and the log manager: counters as a dict, read at every scrape."""

    def stats(self) -> Mapping[str, Any]: ...


class PausedFlag(Protocol):
    @property
    def paused(self) -> bool: ...


class MaintenanceCounters(Protocol):
    @property
    def counters(self) -> Mapping[str, Any]: ...
    @property
    def output_store(self) -> PausedFlag: ...
