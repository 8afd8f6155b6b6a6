"""The supervisor: keeps ``workers.count`` inference workers running, replaces them without losing capacity, and
reports the truth about each one (daemon process, on its event loop).

Replacement is always "start the new one first": a recycle (RSS or request limit), an admin restart, a rolling
restart and a config reload all spawn the successor, wait until it is READY, and only then drain and stop the old
worker. Only one replacement runs at a time, so the pool never drops below N-1 ready workers and recycling never
happens in lockstep (``max_requests`` also gets per-worker jitter).

Worker ids are slots (``w1..wN``, ``tts_ops.supervisor.slots``): a successor takes over its predecessor's slot, a
scale-up takes the lowest free one. ``workers`` is keyed by ``WorkerHandle.key`` because during replace-first a slot
holds two handles; ``worker(slot)`` and ``restart_worker(slot)`` resolve a slot to its current handle.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tts_ops.errors import TtsOpsError
from tts_ops.supervisor import slots
from tts_ops.supervisor.handle import WorkerHandle
from tts_ops.supervisor.process import Forker
from tts_ops.supervisor.reasons import reason_key
from tts_ops.supervisor.report import status_row
from tts_ops.supervisor.spec import PoolSettings, WorkerSpec
from tts_ops.supervisor.states import WorkerState
from tts_ops.supervisor.usage import UsageSampler

log = logging.getLogger("tts_ops.supervisor")
# replace() waits boot_timeout_s for the successor, then up to kill_grace_s for a timed-out one to be killed and
# reach EXITED/BACKOFF; this margin covers the event-loop and process-reaping latency on a loaded host.
REPLACE_SETTLE_MARGIN_S = 5.0
# A recycle whose successor fails to boot (broken model on disk, out of memory) is retried after this delay,
# doubling up to the maximum: every attempt spawns a whole worker process, so once per watchdog tick is too often.
RECYCLE_BACKOFF_INITIAL_S = 60.0
RECYCLE_BACKOFF_MAX_S = 900.0
# A worker whose lifecycle task died of a bug is replaced after this delay, doubling while it keeps happening,
# so a bug that hits every new worker at once cannot become a tight spawn loop.
LOST_RESPAWN_INITIAL_S = 1.0
LOST_RESPAWN_MAX_S = 60.0


class ReplacementFailed(TtsOpsError):
    """A successor worker did not become ready; the old worker keeps serving."""


class WorkerGone(ReplacementFailed):
    """The worker to replace was retired meanwhile (a recycle, an admin restart, a scale-down got there first)."""


def worker_seq(worker: WorkerHandle) -> int:
    """Creation order of a handle (its serial; not its slot, which a successor shares)."""
    return worker.serial


def slot_order(worker: WorkerHandle) -> tuple[int, int]:
    """Reporting order: by slot (w2 before w10), a slot's handles oldest first."""
    return slots.slot_number(worker.id), worker.serial


class Supervisor:
    def __init__(self, spec: WorkerSpec, count: int, settings: PoolSettings | None = None, *,
                 recycle_backoff_initial_s: float = RECYCLE_BACKOFF_INITIAL_S,
                 recycle_backoff_max_s: float = RECYCLE_BACKOFF_MAX_S,
                 clock: Callable[[], float] = time.monotonic, forker: Forker | None = None) -> None:
        self.spec, self.forker = spec, forker  # forker: the zygote, asked first for every new worker process
        self.settings = settings or PoolSettings()
        self.target = count
        self.recycle_backoff_initial_s = recycle_backoff_initial_s
        self.recycle_backoff_max_s = recycle_backoff_max_s
        self._clock = clock
        self.workers: dict[str, WorkerHandle] = {}  # by WorkerHandle.key
        self.retired_count = 0
        self.restarts_by_reason: dict[str, int] = {}
        self._serials = itertools.count(1)
        self._listeners: list[Callable[[WorkerHandle], None]] = []
        self._replace_lock = asyncio.Lock()
        # Rolling restarts and scaling change the whole pool; recycles wait for them instead of interleaving.
        self._pool_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._sampler: UsageSampler[WorkerHandle] = UsageSampler()
        # worker key -> (monotonic time of the next recycle attempt, last delay) after a failed recycle.
        self._recycle_retry: dict[str, tuple[float, float]] = {}
        self._recycling: set[str] = set()
        self._lost_streak = 0

    # Read-only views of the settings in force (status, tests); ``apply`` is the one way to change them.
    @property
    def drain_timeout_s(self) -> float:
        return self.settings.drain_timeout_s

    @property
    def max_rss_mb(self) -> int:
        return self.settings.max_rss_mb

    @property
    def max_requests(self) -> int:
        return self.settings.max_requests

    @property
    def max_requests_jitter(self) -> int:
        return self.settings.max_requests_jitter

    @property
    def watchdog_interval_s(self) -> float:
        return self.settings.watchdog_interval_s

    # -- observers -------------------------------------------------------------------------------------------
    def add_listener(self, listener: Callable[[WorkerHandle], None]) -> None:
        """Called synchronously on every worker state change or request completion (the balancer wakes up)."""
        self._listeners.append(listener)

    def _on_change(self, worker: WorkerHandle) -> None:
        if worker.state is WorkerState.EXITED and not worker.retiring:
            self._count_restart(worker.last_exit_reason)
        if worker.state is WorkerState.RETIRED:
            self.workers.pop(worker.key, None)
            self.retired_count += 1
        if worker.state is WorkerState.READY:
            self._lost_streak = 0
        for listener in self._listeners:
            listener(worker)
        self._spawn_background(self._notify_changed())

    async def _notify_changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def ready_workers(self) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.state is WorkerState.READY]

    def active_workers(self) -> list[WorkerHandle]:
        """Workers that count toward the target (not being drained away)."""
        return [w for w in self.workers.values() if not w.retiring]

    def slot_ids(self) -> list[str]:
        """The slots in use, in slot order: the ids the admin API and the CLI accept."""
        return sorted({w.id for w in self.workers.values()}, key=slots.slot_number)

    def worker(self, worker_id: str) -> WorkerHandle | None:
        """The handle answering for a slot (``w1``; ``slots.current``), or the handle with that key (``w1#3``)."""
        return self.workers.get(worker_id) or slots.current(w for w in self.workers.values() if w.id == worker_id)

    def current_workers(self) -> list[WorkerHandle]:
        """One handle per slot (its current one), in slot order: per-slot reporting such as metric labels."""
        return [w for slot in self.slot_ids() if (w := self.worker(slot)) is not None]

    def can_become_ready(self) -> bool:
        """False when every worker is FAILED (or none exist): waiting for capacity would be pointless."""
        return any(w.state not in (WorkerState.FAILED, WorkerState.RETIRED) and not w.retiring
                   for w in self.workers.values())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
                return True
            except asyncio.TimeoutError:
                return False

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.spec.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.spec.runtime_dir.chmod(0o700)
        for _ in range(self.target):
            self.spawn_worker()
        self._watchdog = asyncio.create_task(self.watchdog(), name="rss-watchdog")

    def spawn_worker(self, replaces: WorkerHandle | None = None) -> WorkerHandle:
        """Start a handle in ``replaces``'s slot (a successor; marked replacing while ``replaces`` still serves it),
        or in the lowest free slot: without ``replaces``, or when another handle took that slot meanwhile."""
        recycle_after = self.max_requests + random.randint(0, self.max_requests_jitter) if self.max_requests else None
        taken = {w.id for w in self.active_workers()}
        serving = replaces is not None and self.workers.get(replaces.key) is replaces and not replaces.retiring
        if replaces is not None and (serving or replaces.id not in taken):
            slot = replaces.id
        else:
            slot = slots.lowest_free(taken)
        worker = WorkerHandle(slot, self.spec, self._on_change, serial=next(self._serials),
                              replaces=replaces.key if replaces else None, replacing=serving,
                              recycle_after=recycle_after, forker=self.forker)
        self.workers[worker.key] = worker
        worker.start().add_done_callback(functools.partial(self._on_worker_task_done, worker))
        log.info("%s started as %s%s", worker.tag, worker.key, f" to replace {replaces.key}" if replaces else "")
        return worker

    def _on_worker_task_done(self, worker: WorkerHandle, task: asyncio.Task[None]) -> None:
        """A lifecycle task must only end in RETIRED. One that raised (a bug, an IllegalTransition) would leave its
        slot STARTING or READY forever with nobody watching the process: drop it and start a replacement."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("%s supervision ended by an unexpected error in state %s; replacing the worker", worker.tag,
                  worker.state.value, exc_info=exc)
        was_retiring = worker.abandon()  # no longer counted toward the target
        if self.workers.pop(worker.key, None) is not None:  # nor routed to
            self.retired_count += 1
        self._count_restart("supervision error")
        for listener in self._listeners:
            listener(worker)
        self._spawn_background(self._notify_changed())
        if not self._stopping and not was_retiring:
            self._spawn_background(self._respawn_lost(worker))

    async def _respawn_lost(self, lost: WorkerHandle) -> None:
        delay = min(LOST_RESPAWN_INITIAL_S * 2 ** self._lost_streak, LOST_RESPAWN_MAX_S)
        self._lost_streak += 1
        await asyncio.sleep(delay)
        # Scaling may have changed the target meanwhile.
        if not self._stopping and len(self.active_workers()) < self.target:
            self.spawn_worker(replaces=lost)

    async def stop(self, drain_timeout_s: float) -> None:
        """Drain every worker in parallel (requests in flight finish up to the deadline), then stop them."""
        self._stopping = True
        if self._watchdog:
            self._watchdog.cancel()
        for task in list(self._background):
            task.cancel()
        workers = list(self.workers.values())
        await asyncio.gather(*(w.retire("daemon stopping", drain_timeout_s) for w in workers),
                             return_exceptions=True)

    def kill_all(self) -> None:
        for worker in list(self.workers.values()):
            worker.kill_now()

    async def reap(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for every worker process to exit (after ``kill_all``); how many did not."""
        waits = [asyncio.ensure_future(w.proc.wait()) for w in self.workers.values()
                 if w.proc is not None and w.proc.returncode is None]
        if not waits:
            return 0
        _, pending = await asyncio.wait(waits, timeout=timeout_s)
        for wait in pending:
            wait.cancel()
        return len(pending)

    # -- replacement -----------------------------------------------------------------------------------------
    async def replace(self, old: WorkerHandle, reason: str) -> WorkerHandle:
        """Start a successor, wait until it is READY, then drain and stop ``old``."""
        async with self._replace_lock:
            if self.workers.get(old.key) is not old or old.retiring:
                raise WorkerGone(f"worker {old.key} is not running")
            log.info("%s replacing: %s", old.tag, reason)
            new = self.spawn_worker(replaces=old)
            settled = (WorkerState.READY, WorkerState.FAILED, WorkerState.BACKOFF, WorkerState.RETIRED)
            await self.wait_for(lambda: new.state in settled,
                                timeout=self.spec.boot_timeout_s + self.spec.kill_grace_s + REPLACE_SETTLE_MARGIN_S)
            if new.state is not WorkerState.READY:
                await new.retire("replacement did not become ready", 0)
                raise ReplacementFailed(f"successor of {old.key} did not become ready "
                                        f"({new.last_exit_reason or new.state.value}); {old.key} keeps serving")
            # Hand the slot over before the drain: from here lookups by id (restart, status, metrics) mean `new`.
            new.replacing = False
            self._spawn_background(self._notify_changed())
            await old.retire(f"replaced by {new.key}: {reason}", self.drain_timeout_s)
            return new

    async def restart_worker(self, worker_id: str) -> WorkerHandle:
        """Replace the current handle of slot ``worker_id`` (or the handle with that key); KeyError if unknown."""
        worker = self.worker(worker_id)
        if worker is None:
            raise KeyError(worker_id)
        return await self._restart(worker)

    async def _restart(self, worker: WorkerHandle) -> WorkerHandle:
        if worker.state in (WorkerState.BACKOFF, WorkerState.FAILED):
            # Nothing serves from it; retire it and start fresh now rather than waiting out the cool-down.
            await worker.retire("restart requested", 0)
            return self.spawn_worker(replaces=worker)
        return await self.replace(worker, "restart requested")

    async def rolling_restart(self, reason: str = "rolling restart",
                              only: Callable[[WorkerHandle], bool] | None = None) -> list[str]:
        """Replace, one at a time, every worker started before this call and every worker not on the current spec
        (``only`` narrows that down); stops at the first successor that fails to boot (ReplacementFailed).

        Recycles and admin restarts may be replacing workers at the same moment: a worker they retired first is
        done, not an error, and the pool is looked at again after every step, so their successors (spawned before
        the call or from an older spec) are replaced as well and the loop ends with every worker fresh and on
        ``self.spec``."""
        mark = max(map(worker_seq, self.workers.values()), default=0)  # workers up to here predate the call
        replaced: list[str] = []

        def stale(worker: WorkerHandle) -> bool:
            return ((worker_seq(worker) <= mark or worker.spec is not self.spec)
                    and (only is None or only(worker)))

        async with self._pool_lock:
            while not self._stopping:
                worker = next((w for w in self.active_workers() if stale(w)), None)
                if worker is None:
                    break
                try:
                    # The handle itself, not its slot: the slot's current handle may be another one.
                    new = await self._restart(worker)
                except WorkerGone:
                    log.info("%s %s: already replaced by someone else", worker.tag, reason)
                    continue
                replaced.append(f"{worker.key}->{new.key}")
        log.info("%s done: %s", reason, ", ".join(replaced) or "no workers")
        return replaced

    async def scale(self, count: int) -> None:
        async with self._pool_lock, self._replace_lock:
            self.target = count
            active = self.active_workers()
            for _ in range(count - len(active)):
                self.spawn_worker()
            if len(active) > count:
                # Retire the least useful first: failed/backoff, then starting, then the idlest ready ones; among
                # equals the highest slot, so the remaining ids stay w1..wN.
                order = {WorkerState.FAILED: 0, WorkerState.BACKOFF: 1, WorkerState.STARTING: 2}
                victims = sorted(active, key=lambda w: (order.get(w.state, 3), w.in_flight,
                                                        -slots.slot_number(w.id), -w.serial))
                await asyncio.gather(*(w.retire("scaled down", self.drain_timeout_s)
                                       for w in victims[:len(active) - count]))
        log.info("scaled to %d workers", count)

    def apply(self, spec: WorkerSpec, settings: PoolSettings) -> None:
        """Take over a reloaded spec and settings. New workers use the new spec; existing ones are replaced by the
        caller's rolling restart. Limits and the drain budget apply from the next recycle or replacement, the
        watchdog pace from its next round. Called on the event loop."""
        self.spec = spec
        self.settings = settings

    # -- watchdog --------------------------------------------------------------------------------------------
    async def watchdog(self) -> None:
        """Sample RSS/CPU with psutil; recycle a worker over ``max_rss_mb`` or past its request budget. Runs for
        the life of the supervisor: an error in one round is logged and the next round runs as usual."""
        while True:
            await asyncio.sleep(self.watchdog_interval_s)
            try:
                await self.watch_once()
            except Exception:
                log.exception("watchdog round failed; retrying in %gs", self.watchdog_interval_s)

    async def watch_once(self) -> None:
        # The snapshot is taken here, on the loop: the thread must not iterate self.workers while the loop
        # adds or removes workers.
        snapshot = [(worker, worker.pid) for worker in self.workers.values()]
        samples = await asyncio.to_thread(self._sampler.sample, snapshot)
        for sample in samples:
            if sample.worker.pid == sample.pid:  # still the process that was measured
                sample.worker.record_usage(sample.rss_bytes, sample.cpu_percent)
        self.check_recycles()

    def check_recycles(self) -> None:
        """Start a recycle for each ready worker past a limit, unless its last failed recycle is backing off."""
        for worker_id in [w for w in self._recycle_retry if w not in self.workers]:
            del self._recycle_retry[worker_id]
        if self._replace_lock.locked() or self._pool_lock.locked():
            return
        now = self._clock()
        for worker in self.ready_workers():
            reason = self._recycle_reason(worker)
            if not reason or worker.key in self._recycling:
                continue
            retry_at, _ = self._recycle_retry.get(worker.key, (0.0, 0.0))
            if now < retry_at:
                continue
            self._recycling.add(worker.key)
            self._spawn_background(self._recycle(worker, reason))

    def _recycle_reason(self, worker: WorkerHandle) -> str | None:
        if self.max_rss_mb and worker.rss_bytes and worker.rss_bytes > self.max_rss_mb * 1024 * 1024:
            return f"recycle: rss {worker.rss_bytes / 2**20:.0f} MB > max_rss_mb {self.max_rss_mb}"
        served = worker.served - worker.served_at_start
        if worker.recycle_after and served >= worker.recycle_after:
            return f"recycle: served {served} >= max_requests {worker.recycle_after}"
        return None

    async def _recycle(self, worker: WorkerHandle, reason: str) -> None:
        try:
            await self.replace(worker, reason)
        except ReplacementFailed as exc:
            _, last = self._recycle_retry.get(worker.key, (0.0, 0.0))
            delay = min(last * 2, self.recycle_backoff_max_s) if last else self.recycle_backoff_initial_s
            self._recycle_retry[worker.key] = (self._clock() + delay, delay)
            log.error("%s %s failed: %s; next attempt in %gs", worker.tag, reason, exc, delay)
        else:
            self._recycle_retry.pop(worker.key, None)
            self._count_restart(reason)
        finally:
            self._recycling.discard(worker.key)

    def _count_restart(self, reason: str | None) -> None:
        key = reason_key(reason)
        self.restarts_by_reason[key] = self.restarts_by_reason.get(key, 0) + 1

    def _spawn_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("supervisor background task failed", exc_info=task.exception())

    # -- reporting -------------------------------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, object]]:
        now = time.monotonic()
        return [status_row(w, now) for w in sorted(self.workers.values(), key=slot_order)]
