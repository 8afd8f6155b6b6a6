"""One supervised inference worker: spawn, boot, probe, drain, stop, and restart per the policy (daemon process).

Each worker runs one lifecycle coroutine (``run``) that reads like a runbook: spawn the process, wait until its
``/health`` says ready, probe it every ``probe_interval_s`` while noticing its exit at once (``proc.wait()``, not
polling), then let the restart policy choose BACKOFF or FAILED. Probing is separate from requests: a worker busy
with a long synthesis still answers ``/health`` (inference runs on its own thread), so it is never killed for
being slow, only for not answering.

Probes go out on a fixed schedule (ready time + k x ``probe_interval_s``), not "interval after the previous probe
ended", so a probe that waits out its timeout does not delay the next one. A worker is hung when a probe fails
and ``failure_threshold`` probe intervals have passed since the slot of the last probe that succeeded (or since
it became ready). With probes on time (``probe_timeout_s`` < ``probe_interval_s``, as the config enforces) that
is ``failure_threshold`` failed probes in a row, and the verdict comes at most interval x threshold + timeout
after the last good answer. Slots a probe overran are skipped, not made up with back-to-back probes; the
deadline still holds, so a probe that ends past it is the verdict even if fewer probes failed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import signal
import time
from collections.abc import Callable

import aiohttp

from tts_ops.supervisor.output import OUTPUT_LINE_LIMIT, relay_output
from tts_ops.supervisor.policy import RestartPolicy
from tts_ops.supervisor.process import Forker, WorkerProcess
from tts_ops.supervisor.reasons import describe_exit, error_line
from tts_ops.supervisor.spec import WorkerSpec as WorkerSpec  # re-exported: where it lived before spec.py
from tts_ops.supervisor.states import LIVE, WorkerState, check_transition
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE

log = logging.getLogger("tts_ops.supervisor")
# A forked worker is ready a few tenths of a second after the fork: a coarser poll would be a large part of that.
# A booting worker is also probed at once whenever it prints a line: it logs "ready: ..." the moment it is ready, so
# the supervisor sees READY within a probe's round trip rather than half a poll later on average (25 ms of the
# ~0.2 s a forked replacement takes).
BOOT_POLL_S = 0.05
# Daemon-wide spawn numbers (``WorkerHandle.generation``): unique across every handle, so a successor in the same
# slot never reuses the number of its predecessor's process, which the balancer's "dead" list names by (id, number).
_SPAWNS = itertools.count(1)


class WorkerHandle:
    """A supervised worker process and its restart history, in one slot of the pool (``id``, see ``slots``).

    ``id`` is the slot (``w1``), shared with a successor that takes the slot over; ``serial`` is the pool-wide
    order in which handles were created and ``key`` (``w1#3``) names this handle alone (``Supervisor.workers``)."""

    # The probe schedule's clock; tests replace it (and ``_sleep_until``) to drive the schedule deterministically.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(self, worker_id: str, spec: WorkerSpec, on_change: Callable[[WorkerHandle], None], *,
                 serial: int = 1, replaces: str | None = None, replacing: bool = False,
                 recycle_after: int | None = None, forker: Forker | None = None) -> None:
        self.id = worker_id
        self.forker = forker
        self.serial = serial
        self.key = f"{worker_id}#{serial}"
        self.spec = spec
        self.state = WorkerState.STARTING
        self.policy = RestartPolicy(**spec.policy)
        self._on_change = on_change
        self.proc: WorkerProcess | None = None
        self.session: aiohttp.ClientSession | None = None
        # Per handle, not per slot: a predecessor and its successor run at the same time. The daemon's pid makes
        # the name unique per daemon start too, so no daemon ever binds or unlinks a path another one created.
        self.socket = spec.runtime_dir / f"{worker_id}-{os.getpid()}-{serial}.sock"
        self.restarts = 0
        # Set at every spawn from ``_SPAWNS``: identifies one process even after it has exited (pid is None then).
        self.generation = 0
        self.last_exit_reason: str | None = None
        self.last_exit_code: int | None = None
        # The last ERROR line the worker printed (e.g. "boot failed: checksum mismatch ..."): the cause a FAILED
        # worker's status shows, which otherwise only error.log holds.
        self.last_error: str | None = None
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.in_flight = 0
        self.served = 0
        self.served_at_start = 0
        self.recycle_after = recycle_after
        self.last_probe_ms: float | None = None
        self.probe_failures = 0
        self.health: dict[str, object] = {}
        self.rss_bytes: int | None = None
        self.cpu_percent: float | None = None
        # The key of the handle this one took the slot from; ``replacing`` while that one still serves the slot
        # (replace-first: until this one is READY), cleared by the supervisor when it hands the slot over.
        self.replaces = replaces
        self.replacing = replacing
        self._planned_reason: str | None = None
        self._retiring = False
        self._boot_timed_out = False
        self._wake = asyncio.Event()
        self._output = asyncio.Event()  # the process printed a line since the last boot probe
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None

    @property
    def process_alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def tag(self) -> str:
        return f"[worker={self.id} pid={self.pid or '-'}]"

    @property
    def retiring(self) -> bool:
        """Being removed on purpose (``retire``, ``kill_now``, ``abandon``): no longer counted toward the target."""
        return self._retiring

    def _process(self) -> WorkerProcess:
        """The process ``spawn`` started: boot, serve and the wait for its exit only run after a spawn."""
        assert self.proc is not None, f"{self.tag} has no process"
        return self.proc

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"worker-{self.key}")
        return self._task

    # -- state machine ---------------------------------------------------------------------------------------
    def _transition(self, new: WorkerState, reason: str = "") -> None:
        check_transition(self.state, new)
        old, self.state = self.state, new
        level = logging.WARNING if new in (WorkerState.FAILED, WorkerState.BACKOFF) else logging.INFO
        log.log(level, "%s %s -> %s%s", self.tag, old.value, new.value, f": {reason}" if reason else "")
        self._on_change(self)

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                boot_failure = await self.live_once()
                if self._retiring:
                    self._transition(WorkerState.RETIRED)
                    return
                if not await self.wait_before_restart(boot_failure):
                    self._transition(WorkerState.RETIRED)
                    return
                self.restarts += 1
                self._transition(WorkerState.STARTING, f"restart #{self.restarts}")
        finally:
            await self._close_session()
            if self.proc is not None and self.proc.returncode is None:
                self._signal(signal.SIGKILL)
            # A worker removes its socket when it exits cleanly; a killed one leaves it behind, and with names unique
            # per handle nobody else would ever reuse (and so remove) it.
            self.socket.unlink(missing_ok=True)

    async def live_once(self) -> bool:
        """One process from spawn to exit (ends in EXITED); True if its exit counts as a boot failure."""
        try:
            await self.spawn()
        except OSError as exc:
            # EMFILE/EAGAIN/ENOMEM from fork/exec: the host is short of something, which usually passes. Treated
            # as a crash (backoff, crash-loop limit) so the slot is retried instead of losing its supervision.
            self.last_exit_code, self.last_exit_reason, self._planned_reason = None, f"spawn failed: {exc}", None
            log.error("%s could not start a process: %s", self.tag, exc)
            self._transition(WorkerState.EXITED, self.last_exit_reason)
            return False
        if await self.boot():
            await self.serve()
        code = await self._process().wait()
        await self._close_session()
        reason = self._planned_reason or describe_exit(code)
        self.last_exit_code, self.last_exit_reason, self._planned_reason = code, reason, None
        self._transition(WorkerState.EXITED, reason)
        # A model that never loads in time is as broken as one that fails to load: both must reach FAILED after
        # boot_failure_limit attempts, not be retried forever as "crashes" spread wider than crash_window_s.
        return code == EXIT_BOOT_FAILURE or self._boot_timed_out

    async def spawn(self) -> None:
        self.socket.unlink(missing_ok=True)
        forked = await self.forker.fork(self.spec, self.id, self.socket) if self.forker is not None else None
        self.proc = proc = forked or await asyncio.create_subprocess_exec(
            *self.spec.command(self.id, self.socket), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            # Own session: a Ctrl-C in the operator's terminal reaches only the supervisor, which drains in order.
            start_new_session=True, env=self.spec.env, limit=OUTPUT_LINE_LIMIT)
        self.generation = next(_SPAWNS)
        self.started_at, self.ready_at, self.probe_failures, self.health = time.monotonic(), None, 0, {}
        self.last_error = None  # a cause belongs to the process that printed it, not to its successor
        self._boot_timed_out = False
        self.served_at_start = self.served
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.socket)))
        self._keep(asyncio.create_task(relay_output(proc.pid, proc.stdout, f"worker={self.id}", self._remember_error,
                                                    self._output.set), name=f"output-{self.key}"))
        log.info("%s %s (%s)", self.tag, "forked by the zygote" if forked else "spawned", self.spec.engine)

    async def boot(self) -> bool:
        """Wait until /health says ready; False if the process exited, timed out or we were told to stop."""
        deadline = time.monotonic() + self.spec.boot_timeout_s
        exited = asyncio.ensure_future(self._process().wait())
        try:
            while not exited.done():
                if self._retiring:
                    await self.terminate("stopped while booting")
                    return False
                if time.monotonic() > deadline:
                    self._boot_timed_out = True
                    self._planned_reason = f"boot timeout after {self.spec.boot_timeout_s:g}s"
                    await self.terminate(self._planned_reason)
                    return False
                self._output.clear()
                if await self.probe(quiet=True):
                    if self.state is not WorkerState.STARTING:
                        # retire() moved us to STOPPING while this probe was in flight: going READY now would
                        # raise IllegalTransition and leave the worker stuck in STOPPING.
                        return False
                    self._transition(WorkerState.READY, f"model {self.health.get('model_version', '?')} "
                                     f"loaded in {self.health.get('load_s') or 0:.2f}s, "
                                     f"warm-up {self.health.get('warmup_s') or 0:.2f}s")
                    self.ready_at = time.monotonic()
                    return True
                printed = asyncio.ensure_future(self._output.wait())
                try:
                    await asyncio.wait({exited, printed}, timeout=BOOT_POLL_S, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    printed.cancel()
            return False
        finally:
            exited.cancel()

    async def serve(self) -> None:
        """Probe on a fixed schedule until the process exits; stop it once it is hung (see the module docstring)."""
        exited = asyncio.ensure_future(self._process().wait())
        interval, threshold = self.spec.probe_interval_s, self.spec.failure_threshold
        # Slots are counted in integers from one origin: summing floats would let slot k drift before k x interval.
        origin = self.clock()
        slot = last_ok = 0
        try:
            while not exited.done():
                slot += 1
                await self._sleep_until(exited, origin + slot * interval)
                if exited.done() or self.state not in (WorkerState.READY, WorkerState.DRAINING):
                    break
                ok = await self.probe()
                if ok:
                    last_ok = slot
                    if self.ready_at and self.policy.on_ready_for(time.monotonic() - self.ready_at):
                        log.info("%s stable for %.0fs: backoff reset", self.tag, self.policy.backoff_reset_s)
                elif slot - last_ok >= threshold or self.clock() >= origin + (last_ok + threshold) * interval:
                    silent_s = self.clock() - (origin + last_ok * interval)
                    self._planned_reason = (f"hung: {self.probe_failures} health probes failed, "
                                            f"no answer for {silent_s:.1f}s")
                    await self.terminate(self._planned_reason, at_once=True)
                    break
                # A probe that overran its slot (timeout above the interval, a stalled loop): skip the slots it
                # covered rather than fire the missed probes back to back.
                slot = max(slot, math.floor((self.clock() - origin) / interval))
            await exited
        finally:
            exited.cancel()

    async def _sleep_until(self, exited: asyncio.Future[int | None], when: float) -> None:
        """Wait until ``clock()`` reaches ``when`` or the process exits (a seam for fake-clock tests)."""
        await asyncio.wait({exited}, timeout=max(0.0, when - self.clock()))

    async def wait_before_restart(self, boot_failure: bool) -> bool:
        decision = self.policy.on_exit(time.monotonic(), boot_failure=boot_failure)
        if decision.failed:
            self._transition(WorkerState.FAILED, f"{decision.reason}; retry in {decision.delay_s:g}s")
        else:
            self._transition(WorkerState.BACKOFF, f"{decision.reason}; restart in {decision.delay_s:g}s")
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=decision.delay_s)
        except asyncio.TimeoutError:
            pass
        return not self._retiring

    # -- probing ---------------------------------------------------------------------------------------------
    async def probe(self, quiet: bool = False) -> bool:
        start = time.monotonic()
        # spawn() opened the session; it is closed only once the process has exited, after the last probe.
        assert self.session is not None, f"{self.tag} probed without a session"
        try:
            timeout = aiohttp.ClientTimeout(total=self.spec.probe_timeout_s)
            async with self.session.get("http://worker/health", timeout=timeout) as resp:
                body = await resp.json(content_type=None)
            ok = resp.status == 200 and body.get("state") == "ready"
            if ok or quiet:
                self.health = body if isinstance(body, dict) else {}
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            ok, body = False, {"error": str(exc) or type(exc).__name__}
        self.last_probe_ms = (time.monotonic() - start) * 1000
        if ok:
            recovered, self.probe_failures = self.probe_failures > 0, 0
            if recovered:
                # The balancer skips a worker with failed probes while others are ready: tell it it is usable again.
                log.info("%s health probe answered again", self.tag)
                self._on_change(self)
        elif not quiet:
            self.probe_failures += 1
            log.warning("%s health probe failed (%d/%d): %s", self.tag, self.probe_failures,
                        self.spec.failure_threshold, body.get("error") or body.get("state"))
        return ok

    # -- stopping --------------------------------------------------------------------------------------------
    async def retire(self, reason: str, drain_timeout_s: float) -> None:
        """Stop on purpose: finish the request in flight (up to the deadline), then TERM, KILL after the grace."""
        self._retiring = True
        self._wake.set()
        if self.state is WorkerState.READY:
            self._transition(WorkerState.DRAINING, reason)
            try:
                # Checked first: wait_for with a zero timeout gives up even on an event that is already set.
                if not self._idle.is_set():
                    await asyncio.wait_for(self._idle.wait(), timeout=drain_timeout_s)
            except asyncio.TimeoutError:
                log.warning("%s drain deadline passed with %d in flight", self.tag, self.in_flight)
        if self.state in (WorkerState.DRAINING, WorkerState.STARTING):
            self._planned_reason = self._planned_reason or reason
            await self.terminate(reason)
        if self._task is not None:
            # wait(), not shield(): the lifecycle task may have ended with an error, which the supervisor's done
            # callback reports and handles; raising it here as well would fail an unrelated replacement or stop.
            await asyncio.wait({self._task})

    async def terminate(self, reason: str, *, at_once: bool = False) -> None:
        """TERM now, KILL after ``kill_grace_s``. ``at_once`` (a worker judged hung): KILL without the grace, since a
        SIGSTOPped or wedged process ignores TERM and the grace would only keep its slot out of service longer."""
        if self.state in (WorkerState.STARTING, WorkerState.READY, WorkerState.DRAINING):
            self._transition(WorkerState.STOPPING, reason)
        if self.proc is None:
            return  # retired before its first spawn completed: boot() sees _retiring and stops it
        if at_once:
            log.warning("%s KILL at once (hung: no TERM grace)", self.tag)
            self._signal(signal.SIGKILL)
            await self.proc.wait()
            return
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout=self.spec.kill_grace_s)
        except asyncio.TimeoutError:
            log.warning("%s did not exit %gs after TERM: KILL", self.tag, self.spec.kill_grace_s)
            self._signal(signal.SIGKILL)
            await self.proc.wait()

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def abandon(self) -> bool:
        """The supervisor gives this handle up (its lifecycle task died of an error): from now on it counts as
        retiring, so it is neither counted toward the target nor respawned for. True if it was retiring already."""
        was_retiring, self._retiring = self._retiring, True
        return was_retiring

    def kill_now(self) -> None:
        """Last resort on forced shutdown."""
        self._retiring = True
        self._wake.set()
        self._signal(signal.SIGKILL)

    # -- request accounting (used by the balancer) ------------------------------------------------------------
    def begin_request(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def record_usage(self, rss_bytes: int | None, cpu_percent: float | None) -> None:
        """The watchdog's latest sample of this process (None when it could not be read)."""
        self.rss_bytes, self.cpu_percent = rss_bytes, cpu_percent

    def end_request(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self.served += 1
        if self.in_flight == 0:
            self._idle.set()
        self._on_change(self)

    @property
    def alive(self) -> bool:
        return self.state in LIVE

    async def _close_session(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()

    def _keep(self, task: asyncio.Task[None]) -> None:
        # The loop holds tasks weakly; keep a reference until they finish.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _remember_error(self, line: str) -> None:
        self.last_error = error_line(line)
