"""The daemon's side of the zygote (daemon process, on its event loop): start and supervise
``python -m inference.zygote``, ask it for workers, and track the workers it forks.

``ZygoteKeeper`` runs the zygote like a worker slot: spawn, wait for its ready packet, restart it per the restart
policy when it exits (the first restart after a healthy period at once, backoff on repeated crashes, FAILED with
a cool-down after repeated boot failures). ``fork`` is what a ``WorkerHandle`` asks first; it answers None
whenever the zygote cannot serve (disabled, down, preloaded for another spec, a fork that failed), and the handle
then cold-spawns as before, so a zygote crash costs speed, never a worker. A fork request made while the zygote
boots waits for it: at daemon start N forks after one preload beat N cold starts on a few cores.

Tracking a process the daemon did not spawn itself: the zygote double-forks and the daemon is a child subreaper
(``PR_SET_CHILD_SUBREAPER``), so each forked worker is reparented to the daemon and is its child like a cold
one (see ``inference.zygote``). ``ForkedProcess`` waits for it with a pidfd (readable on exit) and ``waitid``,
which returns the exact exit status: exit codes, boot-failure accounting, signals and PDEATHSIG all work as for a
cold worker. A zygote that reported exits instead would lose them when it crashed, and could not give workers a
PDEATHSIG tied to the daemon. Side effect of the subreaper: an orphan of any descendant becomes the daemon's
child; workers start no processes of their own, and asyncio only waits for the pids it spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import enum
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from tts_ops.supervisor.output import OUTPUT_LINE_LIMIT, relay_output
from tts_ops.supervisor.policy import RestartPolicy
from tts_ops.supervisor.reasons import describe_exit
from tts_ops.supervisor.spec import WorkerSpec
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE
from tts_vocab.zygote import MAX_PACKET_BYTES, ForkReply, ForkRequest, ZygoteReady

__all__ = ["ForkedProcess", "ZygoteKeeper", "ZygoteState"]

log = logging.getLogger("tts_ops.supervisor")
# Seconds to read what a dead zygote left in its output pipe before moving on.
OUTPUT_DRAIN_S = 5.0
PR_SET_CHILD_SUBREAPER = 36
# A fork answers in milliseconds; a zygote that takes longer is wedged and is killed (and restarted).
FORK_TIMEOUT_S = 10.0
# Status code recorded for a forked worker whose exit status could not be read (it was not reparented to us).
UNKNOWN_EXIT = 255


class ZygoteState(enum.Enum):
    OFF = "off"            # workers.zygote is false, or the daemon is stopping it
    STARTING = "starting"  # spawned, preloading; fork requests wait for it
    READY = "ready"        # forks workers
    DOWN = "down"          # exited; restarted after the policy's delay, workers cold-start meanwhile


def become_subreaper() -> None:
    """Make orphaned descendants (the zygote's workers) children of this process (Linux only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def discard_fork(pid: int) -> None:
    """Kill and reap a forked worker the daemon could not adopt (``adopt`` closed what it had opened)."""
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


class ForkedProcess:
    """A worker the zygote forked and the daemon adopted: the ``WorkerProcess`` a handle supervises."""

    def __init__(self, pid: int, pidfd: int, stdout: asyncio.StreamReader) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.stdout = stdout
        self._pidfd = pidfd
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(pidfd, self._reap)

    @classmethod
    async def adopt(cls, pid: int, output_fd: int) -> ForkedProcess:
        """Track ``pid`` (our child through the subreaper) and read its output from the pipe ``output_fd``."""
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(output_fd, "rb", buffering=0)  # owns the fd from here: closed with it on failure
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            pipe.close()
            raise
        reader = asyncio.StreamReader(limit=OUTPUT_LINE_LIMIT, loop=loop)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe)
        except OSError:
            os.close(pidfd)
            pipe.close()
            raise
        return cls(pid, pidfd, reader)

    def _reap(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        try:
            info = os.waitid(os.P_PIDFD, self._pidfd, os.WEXITED)
            assert info is not None  # WNOHANG is not set: waitid waits for the (already exited) child
            code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        except ChildProcessError:
            log.error("[worker pid=%d] exited but is not our child (no subreaper?): exit status unknown", self.pid)
            code = UNKNOWN_EXIT
        os.close(self._pidfd)
        self.returncode = code
        self._exit.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)


class ZygoteKeeper:
    """Supervises the zygote process and forwards fork requests to it (see the module docstring)."""

    def __init__(self, spec: WorkerSpec, enabled: bool = True) -> None:
        self.spec = spec
        self.enabled = enabled
        self.state = ZygoteState.OFF
        self.policy = RestartPolicy(**spec.policy)
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.forks = 0
        self.last_exit_reason: str | None = None
        self.preload_s: float | None = None
        self._key: tuple[object, ...] = ()
        # Fork requests wait for a booting zygote at daemon start and after a new spec, not while it reboots after
        # a crash: then it is down, and workers cold-start.
        self._awaited = True
        self._control: socket.socket | None = None
        self._lock = asyncio.Lock()
        self._settled = asyncio.Event()  # set unless STARTING: fork requests wait on it
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    @staticmethod
    def key(spec: WorkerSpec) -> tuple[object, ...]:
        return tuple(spec.engine_args()) + tuple(sorted((spec.env or {}).items()))

    def _set(self, state: ZygoteState, reason: str = "") -> None:
        old, self.state = self.state, state
        if state is ZygoteState.STARTING:
            self._settled.clear()
        else:
            self._settled.set()
        level = logging.WARNING if state is ZygoteState.DOWN else logging.INFO
        log.log(level, "[zygote pid=%s] %s -> %s%s", self.pid or "-", old.value, state.value,
                f": {reason}" if reason else "")

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._started = True
        if self.enabled and (self._task is None or self._task.done()):
            become_subreaper()
            self._task = asyncio.create_task(self._run(), name="zygote")

    def apply(self, spec: WorkerSpec, enabled: bool) -> None:
        """A reloaded spec: a zygote preloaded for other engine arguments is replaced; workers.zygote on/off."""
        changed = self.key(spec) != self.key(self.spec)
        self.spec, self.enabled = spec, enabled
        if not enabled or changed:
            self._awaited, self._control = True, None
            self._kill()  # _run sees the new spec (or that it is disabled) and acts on it at once
            self._wake.set()
            if enabled and self.state is not ZygoteState.OFF:
                # Successors of the rolling restart that follows wait for the new zygote, not cold-spawn.
                self._key = self.key(spec)
                self._set(ZygoteState.STARTING, f"new engine arguments: preloading {spec.engine}")
        if self._started:  # a daemon that is not running yet starts it with the pool
            self.start()

    async def stop(self) -> None:
        self.enabled = False
        self._wake.set()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        if self._task is not None:
            await asyncio.wait({self._task})
            self._task = None

    def kill(self) -> None:
        """Forced stop: the zygote goes at once."""
        self.enabled = False
        self._wake.set()
        self._kill()

    def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def _run(self) -> None:
        try:
            while self.enabled:
                boot_failure, ready_for = await self._live_once(self.spec)
                if not self.enabled:
                    break
                if ready_for is not None:
                    self.policy.on_ready_for(ready_for)
                if self._wake.is_set():  # replaced on purpose (new spec): no crash to count
                    self._wake.clear()
                    continue
                self._awaited = False
                decision = self.policy.on_exit(time.monotonic(), boot_failure=boot_failure)
                verdict = "FAILED, retry" if decision.failed else "restart"
                self._set(ZygoteState.DOWN, f"{self.last_exit_reason}; {verdict} in {decision.delay_s:g}s "
                                            "(workers cold-start meanwhile)")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=decision.delay_s)
                self._wake.clear()
                self.restarts += 1
        finally:
            self._set(ZygoteState.OFF)

    async def _live_once(self, spec: WorkerSpec) -> tuple[bool, float | None]:
        """One zygote process from spawn to exit: (exited as a boot failure, seconds it was ready or None)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._key = self.key(spec)
        # STARTING before the spawn: the pool's first workers, spawned right after, must wait for this zygote.
        self._set(ZygoteState.STARTING, f"preloading {spec.engine}")
        try:
            with theirs:
                self.proc = proc = await self._spawn(spec, theirs.fileno())
        except OSError as exc:  # short of processes, memory or fds: retried per the policy like a crash
            ours.close()
            self.last_exit_reason = f"spawn failed: {exc}"
            return True, None
        try:
            ours.setblocking(False)
            pump = asyncio.create_task(relay_output(proc.pid, proc.stdout, "zygote"), name="output-zygote")
            ready_at = await self._boot(ours, spec.boot_timeout_s)
            code = await proc.wait()
            self._control = None
            # Its last lines, but bounded: a descendant still holding the pipe must not keep the zygote "alive".
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(pump, OUTPUT_DRAIN_S)
        finally:
            self._control = None
            ours.close()
            self._kill()
        self.last_exit_reason = describe_exit(code) if ready_at or code else "exited before it was ready"
        ready_for = time.monotonic() - ready_at if ready_at else None
        return (code == EXIT_BOOT_FAILURE or ready_at is None), ready_for

    async def _spawn(self, spec: WorkerSpec, control_fd: int) -> asyncio.subprocess.Process:
        env = dict(os.environ if spec.env is None else spec.env)
        # One BLAS thread: numpy's OpenBLAS pool would otherwise start threads that a fork does not carry over.
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "inference.zygote", *spec.engine_args(), "--control-fd", str(control_fd),
            "--parent-pid", str(os.getpid()), pass_fds=(control_fd,), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=env,
            limit=OUTPUT_LINE_LIMIT)

    async def _boot(self, control: socket.socket, timeout_s: float) -> float | None:
        """Wait for the ready packet; the monotonic time it came, or None (exited, timed out, malformed)."""
        try:
            packet = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(control, MAX_PACKET_BYTES),
                                            timeout_s)
            ready = ZygoteReady.from_wire(packet) if packet else None
        except (asyncio.TimeoutError, OSError, ValueError) as exc:
            log.error("[zygote pid=%s] no ready answer: %s", self.pid or "-", str(exc) or type(exc).__name__)
            self._kill()
            return None
        if ready is None:
            return None
        self.preload_s, self._control = ready.preload_s, control
        self._awaited = True
        self._set(ZygoteState.READY, f"{self.spec.engine} preloaded in {ready.preload_s:.2f}s")
        return time.monotonic()

    # -- forking ---------------------------------------------------------------------------------------------
    async def fork(self, spec: WorkerSpec, worker_id: str, socket_path: Path) -> ForkedProcess | None:
        """A worker forked for ``spec``, or None: the caller cold-spawns it."""
        if self.state is ZygoteState.STARTING and self._awaited and self.key(spec) == self._key:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._settled.wait(), spec.boot_timeout_s)
        async with self._lock:
            control = self._control
            if self.state is not ZygoteState.READY or control is None or self.key(spec) != self._key:
                return None
            read_end, write_end = os.pipe()
            try:
                reply = await self._request(control, ForkRequest(tuple(spec.worker_args(worker_id, socket_path))),
                                            write_end)
            finally:
                os.close(write_end)
            if reply is None or reply.pid is None:
                os.close(read_end)
                return None
            try:
                process = await ForkedProcess.adopt(reply.pid, read_end)
            except OSError as exc:  # no pidfd or pipe left: a worker nobody watches must not live on
                log.error("[worker pid=%d] forked but cannot be adopted (%s); killed, cold spawn instead", reply.pid,
                          exc)
                discard_fork(reply.pid)
                return None
            self.forks += 1
            return process

    async def _request(self, control: socket.socket, request: ForkRequest, output_fd: int) -> ForkReply | None:
        try:
            socket.send_fds(control, [request.to_wire()], [output_fd])
            packet = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(control, MAX_PACKET_BYTES),
                                            FORK_TIMEOUT_S)
            reply = ForkReply.from_wire(packet) if packet else ForkReply(None, "the zygote exited")
        except (asyncio.TimeoutError, OSError, ValueError) as exc:
            reply = ForkReply(None, str(exc) or type(exc).__name__)
            self._kill()  # wedged or out of step with us: a restarted zygote starts a clean conversation
        if reply.error:
            log.warning("[zygote pid=%s] fork failed: %s; cold spawn instead", self.pid or "-", reply.error)
        return reply

    def snapshot(self) -> dict[str, object]:
        return {"enabled": self.enabled, "state": self.state.value, "pid": self.pid, "restarts": self.restarts,
                "forks": self.forks, "preload_s": self.preload_s, "last_exit_reason": self.last_exit_reason}
