"""Scheduled maintenance of the daemon (daemon process, event loop): log rotation, retention cleanup of saved
audio and rotated logs, and the disk-space guard, on an apscheduler 3.x ``AsyncIOScheduler``.

Job ids are a contract (admin API, status, metrics): ``rotate_logs`` (the log manager's own schedule),
``cleanup`` (every ``output.cleanup_interval_s``) and ``disk_guard`` (every 60 s, and once right at start).
Every job is best-effort: an exception is logged on ``tts_ops.maintenance.scheduler``, counted and kept as
``last_error``; it never reaches the scheduler or the daemon. Filesystem work runs in worker threads
(``asyncio.to_thread``, see ``tts_ops.maintenance.jobs`` for what may be deleted and why that is safe); state,
logging policy and the store's ``paused`` flag are only touched on the event loop.

``self.counters`` (read by the metrics module)::

    {"runs": {job_id: int}, "failures": {job_id: int}, "files_deleted": int, "bytes_freed": int,
     "files_deleted_by_kind": {"outputs": int, "tmp": int, "rotated_logs": int}}

``files_deleted`` is a plain total because ``tts_ops.observability.metrics`` exports it as one counter (adding the log
manager's own keep-N pruning, which happens outside these jobs).

The disk guard frees space in whichever directory is low: the oldest saved outputs, then the oldest rotated
logs (never the live files), re-measuring after each, so the episode can end in the run that freed the space.
With an ``output.dir`` shared by several instances each runs its own guard on the same free space; the outputs
deletion re-measures as it goes, so together they free about the shortfall once, not once per instance.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tts_ops.config import Config
from tts_ops.maintenance import jobs
from tts_ops.maintenance.jobs import DAY_S, DiskUsage, Tally

__all__ = ["Maintenance", "JOB_IDS", "RotatingLogs", "PausableStore"]

log = logging.getLogger("tts_ops.maintenance")
MIB = 1024 * 1024
JOB_IDS = ("rotate_logs", "cleanup", "disk_guard")
DISK_GUARD_INTERVAL_S = 60.0
# Saving resumes only once free space exceeds the threshold by this factor, so it does not flap at the edge.
HYSTERESIS = 1.10
# Temporary files of the store are written in well under a second; an hour-old one is debris of a crash.
TMP_MAX_AGE_S = 3600.0
# Rotation is daily/hourly: if the loop was blocked or the host suspended around the due time, still rotate
# within the hour rather than skip a whole period. Interval jobs simply run again at the next interval.
ROTATE_MISFIRE_GRACE_S = 3600
EXECUTOR = "maintenance"
FILE_KINDS = ("outputs", "tmp", "rotated_logs")


class RotatingLogs(Protocol):
    """What the jobs need of the log files' owner (``tts_ops.logs.manager.LogManager``)."""

    @property
    def schedule(self) -> tuple[str, Mapping[str, Any]]:
        """The apscheduler trigger of ``scheduled_rotate``: ``(trigger, kwargs)``."""
        ...

    @property
    def paths(self) -> Mapping[str, Path]:
        """The live log files, by log name: never deleted."""
        ...

    def scheduled_rotate(self) -> Mapping[str, Any] | Awaitable[Mapping[str, Any]]:
        """One scheduled run; runs in a thread (an awaitable result is awaited on the loop)."""
        ...

    def rotated_files(self) -> list[Path]:
        """Every rotated file, oldest first per log; blocking (lists a directory)."""
        ...


class PausableStore(Protocol):
    """The disk guard's handle on the output store (``tts_ops.storage.output_store.OutputStore``)."""

    @property
    def paused(self) -> bool: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


@dataclass
class _Job:
    id: str
    func: Callable[[], Awaitable[dict]]
    trigger: str = "not scheduled"
    last_run: datetime | None = None
    last_duration_s: float | None = None
    last_result: dict | None = None
    last_error: str | None = None
    failing_streak: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class Maintenance:
    """The three maintenance jobs. ``config`` is the whole ``tts_ops.config.schema.Config`` (output + logging); a
    reload hands over the new one with ``apply``.

    ``log_manager``: see ``RotatingLogs``; None = no file logging (rotation is skipped, no logs are cleaned).
    ``disk_usage`` and ``clock`` are injectable for tests.
    """

    def __init__(self, config: Config, *, log_manager: RotatingLogs | None, output_store: PausableStore,
                 disk_usage: DiskUsage = shutil.disk_usage, clock: Callable[[], float] = time.time,
                 disk_guard_interval_s: float = DISK_GUARD_INTERVAL_S) -> None:
        self.output = config.output
        self.logging = config.logging
        self.log_manager = log_manager
        self.output_store = output_store
        self._disk_usage = disk_usage
        self._clock = clock
        self._guard_interval_s = disk_guard_interval_s
        self._scheduler: AsyncIOScheduler | None = None
        self._started = False
        self._low = False  # inside a low-space episode (between the WARNING and the recovery INFO)
        self._inflight: set[asyncio.Task] = set()
        self._jobs = {job.id: job for job in (
            _Job("rotate_logs", self._rotate_logs), _Job("cleanup", self._cleanup),
            _Job("disk_guard", self._disk_guard))}
        self.counters: dict[str, Any] = {
            "runs": dict.fromkeys(JOB_IDS, 0), "failures": dict.fromkeys(JOB_IDS, 0),
            "files_deleted": 0, "bytes_freed": 0, "files_deleted_by_kind": dict.fromkeys(FILE_KINDS, 0)}

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule the jobs on the running loop; ``disk_guard`` also runs right away (in the scheduler)."""
        if self._started:
            raise RuntimeError("maintenance already started")
        self._started = True
        # apscheduler logs two INFO lines per run ("Running job", "executed successfully"): with a 60 s guard
        # that drowns the journal. This logger name is ours alone (our executor alias), so no one else's changes.
        logging.getLogger(f"apscheduler.executors.{EXECUTOR}").setLevel(logging.WARNING)
        scheduler = AsyncIOScheduler(
            executors={EXECUTOR: AsyncIOExecutor()}, logger=logging.getLogger("tts_ops.maintenance.scheduler"),
            job_defaults={"max_instances": 1, "coalesce": True})
        scheduler.start()
        self._scheduler = scheduler
        interval = float(self.output.cleanup_interval_s)
        specs: list[tuple[str, Callable[[], tuple[str, dict]], dict]] = [
            ("rotate_logs", self._rotate_trigger, {"misfire_grace_time": ROTATE_MISFIRE_GRACE_S}),
            ("cleanup", lambda: ("interval", {"seconds": interval}),
             {"misfire_grace_time": max(1, int(interval))}),
            ("disk_guard", lambda: ("interval", {"seconds": self._guard_interval_s}),
             {"misfire_grace_time": max(1, int(self._guard_interval_s)),
              "next_run_time": datetime.now(timezone.utc)}),
        ]
        for job_id, trigger_of, options in specs:
            state = self._jobs[job_id]
            if job_id == "rotate_logs" and self.log_manager is None:
                state.trigger = "disabled (no log manager)"  # stderr-only logging: nothing to rotate
                continue
            try:
                trigger, trigger_args = trigger_of()
                job = scheduler.add_job(self._execute, trigger, args=[job_id], id=job_id, name=job_id,
                                        executor=EXECUTOR, replace_existing=True, **options, **trigger_args)
                state.trigger = str(job.trigger)
            except Exception as exc:
                # A bad schedule from the log manager must not cost us the other jobs, nor the daemon.
                state.trigger = "invalid"
                state.last_error = f"not scheduled: {type(exc).__name__}: {exc}"
                log.error("maintenance job %s not scheduled: %s", job_id, exc)

    def apply(self, config: Config) -> None:
        """Take over a reloaded config. Retention, thresholds and directories are read at every run, so the next
        run uses them; a changed cleanup interval reschedules that job now. Called on the event loop."""
        old_interval = float(self.output.cleanup_interval_s)
        self.output = config.output
        self.logging = config.logging
        if self._low and self.output.min_free_mb <= 0:
            # The guard is now off and will not run its recovery branch: without this, saving stays paused.
            self._low = False
            self.output_store.resume()
            log.info("disk guard disabled (output.min_free_mb = 0); saving outputs resumed")
        interval = float(self.output.cleanup_interval_s)
        if interval == old_interval or self._scheduler is None or self._scheduler.get_job("cleanup") is None:
            return
        try:
            self._scheduler.modify_job("cleanup", misfire_grace_time=max(1, int(interval)))
            job = self._scheduler.reschedule_job("cleanup", trigger="interval", seconds=interval)
            self._jobs["cleanup"].trigger = str(job.trigger)
            log.info("cleanup rescheduled: every %gs (was %gs)", interval, old_interval)
        except Exception as exc:
            # The job keeps its old schedule: still cleaning, just not at the new pace.
            log.error("cleanup could not be rescheduled to every %gs: %s", interval, exc)

    def _rotate_trigger(self) -> tuple[str, dict]:
        assert self.log_manager is not None  # not scheduled without one
        trigger, kwargs = self.log_manager.schedule
        return trigger, dict(kwargs)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop scheduling, let running jobs finish for up to ``timeout`` s, then cancel what is left."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.pause()  # synchronous: nothing new starts while we wait
        pending = {task for task in self._inflight if task is not asyncio.current_task()}
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout)
            if late:
                # A job stuck in a thread keeps its thread until it returns; the task at least stops waiting.
                log.warning("maintenance jobs still running after %.0f s, cancelled", timeout)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
            # AsyncIOScheduler.shutdown only queues the real shutdown on the loop (call_soon_threadsafe).
            await asyncio.sleep(0)

    # -- running and reporting ---------------------------------------------------------------------------

    async def run_now(self, job_id: str) -> dict:
        """Run a job now (KeyError if unknown), after any run in progress; its status entry afterwards."""
        state = self._jobs[job_id]
        # Own task, shielded: a caller that goes away (HTTP client disconnect) does not abort a half-done run;
        # the task stays in _inflight, so shutdown still waits for it (and cancels it only when late).
        await asyncio.shield(asyncio.create_task(self._execute(job_id)))
        return self._status_of(state)

    async def _execute(self, job_id: str) -> None:
        """The function every scheduled run and ``run_now`` goes through; never raises (except cancel)."""
        state = self._jobs[job_id]
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            async with state.lock:  # a manual run and a scheduled one never overlap
                await self._run(state)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _run(self, state: _Job) -> None:
        state.last_run = datetime.now(timezone.utc)
        started = time.monotonic()
        self.counters["runs"][state.id] += 1
        try:
            result = await state.func()
        except asyncio.CancelledError:
            state.last_result, state.last_error = None, "cancelled"
            raise
        except Exception as exc:
            self.counters["failures"][state.id] += 1
            state.failing_streak += 1
            state.last_result, state.last_error = None, f"{type(exc).__name__}: {exc}"
            # Traceback once per streak: a persistent fault (EACCES every minute) should not flood the journal.
            log.error("maintenance job %s failed: %s", state.id, state.last_error,
                      exc_info=state.failing_streak == 1)
        else:
            state.failing_streak = 0
            state.last_result = result if isinstance(result, dict) else {"result": result}
            state.last_error = None
            log.debug("maintenance job %s done: %s", state.id, state.last_result)
        finally:
            state.last_duration_s = round(time.monotonic() - started, 6)

    def status(self) -> list[dict]:
        return [self._status_of(state) for state in self._jobs.values()]

    def _status_of(self, state: _Job) -> dict:
        job = self._scheduler.get_job(state.id) if self._scheduler is not None else None
        next_run = getattr(job, "next_run_time", None) if job is not None else None
        return {
            "id": state.id, "trigger": state.trigger, "next_run": _iso(next_run), "last_run": _iso(state.last_run),
            "last_duration_s": state.last_duration_s, "last_result": state.last_result,
            "last_error": state.last_error, "runs": self.counters["runs"][state.id],
            "failures": self.counters["failures"][state.id], "running": state.lock.locked(),
        }

    @property
    def low_space(self) -> bool:
        return self._low

    def _account(self, tally: Tally) -> None:
        by_kind = self.counters["files_deleted_by_kind"]
        for kind, count in tally.deleted.items():
            by_kind[kind] = by_kind.get(kind, 0) + count
            self.counters["files_deleted"] += count
        self.counters["bytes_freed"] += tally.bytes_freed

    # -- jobs --------------------------------------------------------------------------------------------

    async def _rotate_logs(self) -> dict:
        if self.log_manager is None:
            return {"skipped": "no log manager"}
        # scheduled_rotate(), not rotate_all(): on its interval schedule (size mode) the log manager only checks
        # the sizes - rotating there would rotate every minute.
        # Rotation renames and may compress files: a thread. An async rotate returns a coroutine, awaited here.
        result = await asyncio.to_thread(self.log_manager.scheduled_rotate)
        if inspect.isawaitable(result):
            result = await result
        return dict(result or {})

    async def _cleanup(self) -> dict:
        tally = await asyncio.to_thread(self._cleanup_sync)
        self._account(tally)
        if tally.deleted:
            log.info("cleanup deleted %s (%d bytes)", ", ".join(f"{n} {k}" for k, n in tally.deleted.items()),
                     tally.bytes_freed)
        if tally.error_count:
            log.warning("cleanup could not delete %d file(s), e.g. %s", tally.error_count, tally.errors[0])
        return {"outputs_deleted": tally.deleted.get("outputs", 0), "tmp_deleted": tally.deleted.get("tmp", 0),
                "rotated_logs_deleted": tally.deleted.get("rotated_logs", 0), "bytes_freed": tally.bytes_freed,
                "errors": tally.error_count, "error_samples": tally.errors, "ignored": tally.ignored}

    def _cleanup_sync(self) -> Tally:
        # Runs in a thread: rotated_files() lists a directory.
        rotated, active = self._log_files_sync()
        return jobs.cleanup(
            output_dir=self.output.dir, output_max_age_s=self.output.retention_days * DAY_S,
            tmp_max_age_s=TMP_MAX_AGE_S, log_dir=self.logging.dir if self.log_manager is not None else None,
            rotated=rotated, active_log_names=active,
            log_max_age_s=self.output.rotated_log_retention_days * DAY_S, now=self._clock())

    def _log_files_sync(self) -> tuple[list[Path], set[str]]:
        """(rotated files the log manager reports, names of the live logs); blocking (lists a directory)."""
        lm = self.log_manager
        if lm is None:
            return [], set()
        return list(lm.rotated_files()), {Path(p).name for p in lm.paths.values()}

    def _free_logs_sync(self, need_bytes: int) -> Tally:
        rotated, active = self._log_files_sync()
        return jobs.delete_oldest_rotated_logs(self.logging.dir, rotated, active, need_bytes)

    def _measure(self) -> dict[str, int]:
        return {"output": jobs.free_bytes(self.output.dir, self._disk_usage),
                "logs": jobs.free_bytes(self.logging.dir, self._disk_usage)}

    async def _guard_delete(self, what: str, func: Callable[..., Tally], *args: Any) -> Tally:
        tally = await asyncio.to_thread(func, *args)
        self._account(tally)
        if tally.deleted:
            log.info("disk guard deleted %d %s, %d bytes", sum(tally.deleted.values()), what, tally.bytes_freed)
        return tally

    async def _disk_guard(self) -> dict:
        threshold = self.output.min_free_mb * MIB
        if threshold <= 0:
            return {"enabled": False}
        target = int(threshold * HYSTERESIS)
        free = await asyncio.to_thread(self._measure)
        tally = Tally()
        low = sorted(name for name, value in free.items() if value < threshold)
        if low and not self._low:
            self._low = True
            log.warning("low disk space: %s below %d MiB free; saving outputs paused, oldest outputs and rotated "
                        "logs deleted", " and ".join(f"{n} dir ({free[n] // MIB} MiB)" for n in low),
                        self.output.min_free_mb)
        if self._low:
            self.output_store.pause()
            # Free up to the recovery level, not just the threshold: stopping at the threshold would leave
            # saving paused until something else frees the last 10 %. Outputs first: when both directories
            # share a filesystem, that may already lift the log directory too (hence the re-measure).
            if free["output"] < target:
                out_dir = self.output.dir
                tally.merge(await self._guard_delete(
                    "saved output(s)", jobs.delete_oldest_outputs, out_dir, target - free["output"],
                    lambda: target - jobs.free_bytes(out_dir, self._disk_usage)))
                if tally.deleted:
                    free = await asyncio.to_thread(self._measure)
            if free["logs"] < target and self.log_manager is not None:
                # Only rotated files: the live ones are being written, and deleting an open file frees nothing.
                freed = await self._guard_delete("rotated log file(s)", self._free_logs_sync,
                                                 target - free["logs"])
                tally.merge(freed)
                if freed.deleted:
                    free = await asyncio.to_thread(self._measure)
            if all(value >= target for value in free.values()):
                self._low = False
                self.output_store.resume()
                log.info("disk space recovered (%s); saving outputs resumed",
                         ", ".join(f"{n} dir {v // MIB} MiB free" for n, v in free.items()))
        return {"low": self._low, "paused": bool(self.output_store.paused), "threshold_mb": self.output.min_free_mb,
                "free_mb": {n: round(v / MIB, 1) for n, v in free.items()},
                "outputs_deleted": tally.deleted.get("outputs", 0),
                "rotated_logs_deleted": tally.deleted.get("rotated_logs", 0), "bytes_freed": tally.bytes_freed,
                "errors": tally.error_count}
