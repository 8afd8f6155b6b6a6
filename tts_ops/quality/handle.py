"""The supervised scorer process (daemon process, on the event loop; the scoring itself runs in the child):
spawn, wait for its ready line, feed it samples one at a time from the monitor's bounded queue, and restart it per
the workers' restart policy (``tts_ops.supervisor.policy``) when it exits.

Like a worker's ``WorkerHandle.run`` the lifecycle coroutine reads like a runbook, but the scorer needs no socket
and no probes: it talks over its pipes (``tts_vocab.scoring``: one JSON line per message), its exit is noticed at
once through ``proc.wait()``, and a hung scorer is one that does not answer a sample within ``score_timeout_s``
(KILLed, the sample counted as lost). Its stderr is relayed to the daemon's log tagged ``[scorer pid=...]``; the
last ERROR line it printed (e.g. "boot failed: torch is not installed ...") is the reason a FAILED scorer shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tts_ops.quality.spec import ScorerSpec
from tts_ops.quality.states import ScorerState, check_transition
from tts_ops.supervisor.output import LEVELS
from tts_ops.supervisor.policy import RestartPolicy
from tts_ops.supervisor.reasons import describe_exit, error_line
from tts_vocab import scoring
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE

if TYPE_CHECKING:
    from tts_ops.quality.monitor import Sample

log = logging.getLogger("tts_ops.quality")
scorer_log = logging.getLogger("tts_ops.scorer")
T = TypeVar("T")
# A reply line is ~100 bytes; the limit only bounds what a broken scorer could make us buffer.
LINE_LIMIT = 1 << 16


class ScorerHandle:
    """One scorer process at a time and its restart history. ``on_reply(sample, reply)`` gets every answer;
    ``on_lost(sample, why)`` every sample taken from the queue that got none (the scorer died or hung on it)."""

    def __init__(self, spec: ScorerSpec, queue: asyncio.Queue[Sample],
                 on_reply: Callable[[Sample, scoring.ScoreReply], None], on_lost: Callable[[Sample, str], None]
                 ) -> None:
        self.spec = spec
        self.state = ScorerState.STARTING
        self.policy = RestartPolicy(**spec.policy)
        self._queue = queue
        self._on_reply = on_reply
        self._on_lost = on_lost
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.reason: str | None = None  # why it is not READY: the last exit, or the error it printed
        self.last_error: str | None = None
        self.ready_at: float | None = None
        self.load_s: float | None = None
        self._stopping = False
        self._boot_timed_out = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @property
    def tag(self) -> str:
        return f"[scorer pid={self.pid or '-'}]"

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="quality-scorer")
        return self._task

    def _transition(self, new: ScorerState, reason: str = "") -> None:
        check_transition(self.state, new)
        old, self.state = self.state, new
        level = logging.WARNING if new in (ScorerState.FAILED, ScorerState.BACKOFF) else logging.INFO
        log.log(level, "%s %s -> %s%s", self.tag, old.value, new.value, f": {reason}" if reason else "")

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                boot_failure = await self.live_once()
                if self._stopping or not await self.wait_before_restart(boot_failure):
                    self._transition(ScorerState.STOPPED)
                    return
                self.restarts += 1
                self._transition(ScorerState.STARTING, f"restart #{self.restarts}")
        finally:
            self._signal(signal.SIGKILL)

    async def live_once(self) -> bool:
        """One process from spawn to exit (ends in EXITED); True if its exit counts as a boot failure."""
        try:
            proc = await self.spawn()
        except OSError as exc:
            self.reason = f"spawn failed: {exc}"
            log.error("%s could not start a process: %s", self.tag, exc)
            self._transition(ScorerState.EXITED, self.reason)
            return False
        if await self.boot(proc):
            await self.serve(proc)
        code = await proc.wait()
        if self._pump is not None:
            await self._pump  # the last lines it printed (its boot error) are relayed before the verdict
        planned = "boot timeout" if self._boot_timed_out else None
        self.reason = planned or describe_exit(code)
        if self.last_error and (code == EXIT_BOOT_FAILURE or code not in (0, None)):
            self.reason = f"{self.reason}: {self.last_error}"
        self._transition(ScorerState.EXITED, self.reason)
        return code == EXIT_BOOT_FAILURE or self._boot_timed_out

    async def spawn(self) -> asyncio.subprocess.Process:
        self.proc = proc = await asyncio.create_subprocess_exec(
            *self.spec.command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, env=self.spec.process_env(), limit=LINE_LIMIT)
        self.last_error, self.ready_at, self._boot_timed_out = None, None, False
        self._pump = asyncio.create_task(self._relay(proc), name="quality-scorer-output")
        log.info("%s spawned (threads=%d, nice=%d)", self.tag, self.spec.threads, self.spec.nice)
        return proc

    async def boot(self, proc: asyncio.subprocess.Process) -> bool:
        """Wait for the ready line; False if the process exited, timed out, spoke nonsense or we are stopping."""
        assert proc.stdout is not None
        try:
            raw = await self._until_stop(proc.stdout.readline(), self.spec.boot_timeout_s)
        except asyncio.TimeoutError:
            self._boot_timed_out = True
            await self.terminate(f"boot timeout after {self.spec.boot_timeout_s:g}s", at_once=True)
            return False
        if raw is None or not raw:
            if raw is None:
                await self.terminate("stopped while booting")
            return False
        try:
            ready = scoring.ScorerReady.from_wire(json.loads(raw))
        except ValueError as exc:
            await self.terminate(f"bad ready line: {exc}", at_once=True)
            return False
        self.ready_at, self.load_s, self.reason = time.monotonic(), ready.load_s, None
        self._transition(ScorerState.READY, f"{ready.model} loaded in {ready.load_s:.2f}s")
        return True

    async def serve(self, proc: asyncio.subprocess.Process) -> None:
        """Samples from the queue, one at a time, until the process exits or we are told to stop."""
        while proc.returncode is None:
            sample = await self._until_stop(self._queue.get(), None, proc)
            if sample is None:
                if self._stopping:
                    await self.terminate("daemon stopping")
                return
            if not await self._score(proc, sample):
                return
            if self.ready_at and self.policy.on_ready_for(time.monotonic() - self.ready_at):
                log.info("%s stable for %.0fs: backoff reset", self.tag, self.policy.backoff_reset_s)

    async def _score(self, proc: asyncio.subprocess.Process, sample: Sample) -> bool:
        """Send one sample and hand its reply on; False (the sample counted as lost) if the scorer died, hung or
        broke the protocol, which ends this process's life."""
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(scoring.line(sample.request()))
            await proc.stdin.drain()
            raw = await self._until_stop(proc.stdout.readline(), self.spec.score_timeout_s, proc)
        except (BrokenPipeError, ConnectionResetError):
            raw = b""
        except asyncio.TimeoutError:
            self._on_lost(sample, "timeout")
            await self.terminate(f"no score within {self.spec.score_timeout_s:g}s", at_once=True)
            return False
        if raw is None and self._stopping:
            self._on_lost(sample, "stopping")
            await self.terminate("daemon stopping")
            return False
        if not raw:
            self._on_lost(sample, "scorer_exited")
            return False
        try:
            reply = scoring.ScoreReply.from_wire(json.loads(raw))
        except ValueError as exc:
            self._on_lost(sample, "scorer_exited")
            await self.terminate(f"bad reply: {exc}", at_once=True)
            return False
        self._on_reply(sample, reply)
        return True

    async def _until_stop(self, step: Awaitable[T], timeout_s: float | None,
                          proc: asyncio.subprocess.Process | None = None) -> T | None:
        """``await step`` unless stop() (or the process's exit, when given) comes first: then None."""
        work = asyncio.ensure_future(step)
        waits: set[asyncio.Future[Any]] = {work, asyncio.ensure_future(self._wake.wait())}
        if proc is not None:
            waits.add(asyncio.ensure_future(proc.wait()))
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                return work.result()
            if not done:
                raise asyncio.TimeoutError
            return None
        finally:
            for future in waits:
                future.cancel()

    async def wait_before_restart(self, boot_failure: bool) -> bool:
        decision = self.policy.on_exit(time.monotonic(), boot_failure=boot_failure)
        if decision.failed:
            self._transition(ScorerState.FAILED, f"{decision.reason}; retry in {decision.delay_s:g}s")
        else:
            self._transition(ScorerState.BACKOFF, f"{decision.reason}; restart in {decision.delay_s:g}s")
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=decision.delay_s)
        except asyncio.TimeoutError:
            pass
        return not self._stopping

    # -- stopping --------------------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Stop for good (daemon shutdown): a sample being scored is abandoned, the process ended."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task})

    async def terminate(self, reason: str, *, at_once: bool = False) -> None:
        """Close stdin (a scorer exits at EOF) and TERM, KILL after ``kill_grace_s``; KILL at once (``at_once``)
        for a hung or broken one."""
        if self.state in (ScorerState.STARTING, ScorerState.READY):
            self._transition(ScorerState.STOPPING, reason)
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        if at_once:
            self._signal(signal.SIGKILL)
        else:
            if proc.stdin is not None:
                proc.stdin.close()
            self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=self.spec.kill_grace_s)
        except asyncio.TimeoutError:
            log.warning("%s did not exit %gs after TERM: KILL", self.tag, self.spec.kill_grace_s)
            self._signal(signal.SIGKILL)
            await proc.wait()

    def kill_now(self) -> None:
        """Last resort on forced shutdown."""
        self._stopping = True
        self._wake.set()
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    async def _relay(self, proc: asyncio.subprocess.Process) -> None:
        """The scorer's stderr line by line into the daemon's log, at the level it logged."""
        assert proc.stderr is not None
        pid = proc.pid
        while True:
            try:
                line = await proc.stderr.readline()
            except ValueError:
                line = await proc.stderr.read(LINE_LIMIT)
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()
            first, _, rest = text.partition(" ")
            level = LEVELS.get(first)
            scorer_log.log(level or logging.INFO, "[scorer pid=%s] %s", pid, rest if level else text)
            if level is not None and level >= logging.ERROR:
                self.last_error = error_line(rest)

    def snapshot(self) -> dict[str, object]:
        return {"state": self.state.value, "pid": self.pid, "restarts": self.restarts, "reason": self.reason,
                "load_s": self.load_s,
                "ready_for_s": round(time.monotonic() - self.ready_at, 1)
                if self.ready_at and self.state is ScorerState.READY else None}
