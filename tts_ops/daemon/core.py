"""``tts-ops serve``: the long-running daemon that composes supervisor, front end, admin API and systemd
notification, and owns signals and the shutdown order (daemon process, one asyncio event loop).

Signals only set events: TERM/INT = graceful stop (a second one forces), HUP = reload config + rolling restart,
USR1 = reopen log files. The daemon's own lifecycle is ``DaemonState``; every move goes through ``_transition``.
After a successful reload each long-lived component takes over its own part of the new config with its ``apply``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tts_ops.cache import ResultCache
from tts_ops.config import Config, ConfigError, effective_config, instance_key, restart_only_changes
from tts_ops.daemon.lifecycle import DAEMON_MOVES, DaemonState
from tts_ops.daemon.scale_target import ScaleTarget
from tts_ops.daemon.specs import pool_settings, resolved_dir, scorer_spec, worker_spec
from tts_ops.http.admin import AdminApi, resolve_token
from tts_ops.http.public import FrontEnd
from tts_ops.instance import InstanceFiles, RuntimeLock, record_path
from tts_ops.instance.record import client_host
from tts_ops.logs.manager import LogManager
from tts_ops.maintenance.scheduler import Maintenance
from tts_ops.observability.metrics import Metrics
from tts_ops.observability.sdnotify import SystemdNotifier, run_watchdog
from tts_ops.quality import QualityMonitor
from tts_ops.storage.output_store import OutputStore
from tts_ops.supervisor import Supervisor, WorkerSpec
from tts_ops.supervisor.pool import ReplacementFailed
from tts_ops.supervisor.states import IllegalTransition
from tts_ops.supervisor.zygote import ZygoteKeeper
from tts_ops.upstream.balancer import Balancer
from tts_vocab.exit_codes import EXIT_FORCED

log = logging.getLogger("tts_ops.daemon")
# How long a forced stop waits for the SIGKILLed workers' exit codes.
FORCED_REAP_S = 3.0
STATUS_INTERVAL_S = 1.0
# Grace at shutdown for admin requests still running (a status, or a CLI waiting on a restart or scale): the
# workers are being stopped anyway, so waiting longer would only delay the drain of the public listener.
ADMIN_SHUTDOWN_TIMEOUT_S = 5.0


# Which settings a reload can apply, and the config it runs with, are config's knowledge: tts_ops.config.reload.


class Daemon:
    def __init__(self, config: Config, reload_config: Callable[[], Config] | None = None,
                 log_manager: LogManager | None = None) -> None:
        self.config = config
        self._reload_config = reload_config
        self.log_manager = log_manager
        self.state = DaemonState.STARTING
        self.notifier = SystemdNotifier()
        self.zygote = ZygoteKeeper(worker_spec(config), enabled=config.workers.zygote)
        self.supervisor = Supervisor(worker_spec(config), config.workers.count, pool_settings(config),
                                     forker=self.zygote)
        self.scale_target = ScaleTarget(config.workers.count)
        self.balancer = Balancer(self.supervisor, config.server.queue_limit)
        self.cache = ResultCache.from_config(config.cache)
        self.output_store = OutputStore(config.output.dir, enabled=config.output.save)
        self.maintenance = Maintenance(config, log_manager=log_manager, output_store=self.output_store)
        self.metrics = Metrics(supervisor=self.supervisor, balancer=self.balancer, cache=self.cache,
                               maintenance=self.maintenance, log_manager=log_manager)
        self.quality = QualityMonitor(config.quality, scorer_spec(config),
                                      sink=self.metrics if config.metrics.enabled else None)
        self.frontend = FrontEnd(config, self.supervisor, self.balancer, self.cache,
                                 output_store=self.output_store,
                                 metrics=self.metrics if config.metrics.enabled else None,
                                 sampler=self.quality if self.quality.enabled else None)
        self.runtime_lock = RuntimeLock(worker_spec(config).runtime_dir)
        state_dir = resolved_dir(config.paths.state_dir, "paths.state_dir")
        self.token_file = config.admin.token_file or state_dir / "admin.token"
        # Decided now (the admin app is built with it) but written only once both ports are ours: a second
        # daemon started by mistake must not replace the running one's token or instance record.
        self.token = resolve_token(config.admin.token)
        self.instance_files = InstanceFiles(record_path(state_dir, instance_key(config)), self.token_file,
                                            self.token, generated=config.admin.token is None)
        self.admin = AdminApi(self, self.token, metrics=self.metrics if config.metrics.enabled else None)
        self.started = time.time()
        self.reloads = 0
        self.last_reload: dict[str, Any] | None = None
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._reload = asyncio.Event()
        self._reopen = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._runners: list[web.AppRunner] = []
        self._signals_installed = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _transition(self, new: DaemonState, reason: str = "") -> None:
        if new not in DAEMON_MOVES[self.state]:
            raise IllegalTransition(f"daemon cannot go from {self.state.value} to {new.value}")
        old, self.state = self.state, new
        # The front end's own view: health checks fail from the start of the drain, so load balancers move away,
        # while requests are still served until the listener closes (STOPPING).
        self.frontend.set_draining(new in (DaemonState.DRAINING, DaemonState.STOPPING, DaemonState.STOPPED))
        self.frontend.set_accepting(new in (DaemonState.STARTING, DaemonState.RUNNING, DaemonState.RELOADING,
                                            DaemonState.DRAINING))
        log.info("daemon %s -> %s%s", old.value, new.value, f": {reason}" if reason else "")

    # -- signals ---------------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """Route the signals to the daemon's events; ``run`` calls it, earlier callers make it a no-op there."""
        if self._signals_installed:
            return
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        loop.add_signal_handler(signal.SIGUSR1, self._reopen.set)
        self._signals_installed = True

    def request_reload(self) -> None:
        """As SIGHUP: reload once running (a request made while starting waits for the RUNNING state)."""
        self._reload.set()

    def request_stop(self, reason: str) -> bool:
        """As a first SIGTERM (``POST /admin/drain``): drain, then stop. False if a stop was already under way."""
        if self._stop.is_set():
            return False
        log.info("%s: graceful shutdown", reason)
        self._stop.set()
        return True

    def _on_stop_signal(self, name: str) -> None:
        if self._stop.is_set():
            log.warning("second %s: forcing shutdown", name)
            self._force.set()
        else:
            log.info("%s: graceful shutdown (send again to force)", name)
            self._stop.set()

    # -- run -------------------------------------------------------------------------------------------------
    async def run(self) -> int:
        self.install_signal_handlers()
        await self.cache.start()
        try:
            # Lock and ports first: if another daemon holds either, nothing of it is touched - no token written,
            # no worker spawned (workers would re-bind and unlink its sockets in a shared runtime directory).
            self.runtime_lock.acquire(instance_key(self.config))
            await self.start_listeners()
            self.publish_instance()
        except BaseException:
            for runner in self._runners:
                await runner.cleanup()
            await self.cache.close()
            self.runtime_lock.release()
            self._transition(DaemonState.STOPPED, "start failed")
            raise
        self.zygote.start()
        await self.supervisor.start()
        self.quality.start()
        self.maintenance.start()
        self._tasks = [asyncio.create_task(self.announce_ready(), name="announce-ready"),
                       asyncio.create_task(self.reload_loop(), name="reload"),
                       asyncio.create_task(self.reopen_loop(), name="reopen-logs"),
                       asyncio.create_task(run_watchdog(self.notifier, self._stop), name="sd-watchdog")]
        self._transition(DaemonState.RUNNING)
        await self._stop.wait()
        try:
            return await self.shutdown()
        finally:
            self.instance_files.withdraw()
            self.runtime_lock.release()  # workers stopped (or killed): their sockets are no longer ours to guard

    async def start_listeners(self) -> None:
        server, admin = self.config.server, self.config.admin
        public = web.AppRunner(self.frontend.build_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=server.graceful_timeout_s, handler_cancellation=True)
        await public.setup()
        self._runners.append(public)
        await web.TCPSite(public, server.host, server.port, reuse_address=True).start()
        admin_runner = web.AppRunner(self.admin.build_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=ADMIN_SHUTDOWN_TIMEOUT_S)
        await admin_runner.setup()
        self._runners.append(admin_runner)
        await web.TCPSite(admin_runner, admin.host, admin.port, reuse_address=True).start()
        log.info("listening on http://%s:%d (admin http://%s:%d, %s)", server.host, server.port, admin.host,
                 admin.port, f"token file {self.token_file}" if admin.token is None else "configured token")
        if self.config.metrics.enabled and self.config.metrics.public:
            await self.start_metrics_listener()

    async def start_metrics_listener(self) -> None:
        """``metrics.public``: /metrics without a token on its own address; stopped with the other runners."""
        host, port = self.config.metrics.host, self.config.metrics.port
        runner = web.AppRunner(self.metrics.build_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=ADMIN_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        log.info("public metrics on http://%s:%d/metrics (no authentication)", host, port)

    def publish_instance(self) -> None:
        """Tell the CLI where this instance is: the instance record and, for a generated token, the token file. A
        configured token comes from the config or a root-only environment file and is never copied to disk; a
        token file already there is left alone (a daemon deletes only files it wrote)."""
        server, admin = self.config.server, self.config.admin
        self.instance_files.publish(instance_key(self.config), f"http://{client_host(server.host)}:{server.port}",
                                    f"http://{client_host(admin.host)}:{admin.port}")

    async def announce_ready(self) -> None:
        """READY=1 once the first worker is ready, then keep STATUS= current for ``systemctl status``."""
        await self.supervisor.wait_for(lambda: bool(self.supervisor.ready_workers()))
        log.info("first worker ready: accepting requests")
        self.notifier.ready(self.status_line())
        last = ""
        while True:
            try:
                line = self.status_line()
                if line != last:
                    self.notifier.status(line)
                    last = line
            except Exception:
                log.exception("status update failed")
            await asyncio.sleep(STATUS_INTERVAL_S)

    def status_line(self) -> str:
        ready, total = len(self.supervisor.ready_workers()), len(self.supervisor.workers)
        return f"{ready}/{total} workers ready, queue {self.balancer.queue_depth}, in flight {self.balancer.in_flight}"

    async def reload_loop(self) -> None:
        # Lives as long as the daemon: a failing reload is logged, the next SIGHUP is handled as usual.
        while True:
            await self._reload.wait()
            self._reload.clear()
            try:
                await self.reload()
            except Exception:
                log.exception("SIGHUP: reload failed unexpectedly")

    async def reopen_loop(self) -> None:
        """SIGUSR1: reopen the log files, for hosts whose external logrotate renamed them."""
        while True:
            await self._reopen.wait()
            self._reopen.clear()
            if self.log_manager is None:
                continue
            try:
                reopened = await asyncio.to_thread(self.log_manager.reopen_all)
                log.info("SIGUSR1: log files reopened: %s", reopened)
            except Exception:
                log.exception("SIGUSR1: reopening the log files failed")

    async def reload(self) -> None:
        """HUP: re-read the config, roll every worker onto it (one at a time, without dropping requests), and only
        once that worked switch the front end, balancer, maintenance and output store to it. A failed rollout
        leaves the running config in force everywhere, including for workers started later."""
        if self.state is not DaemonState.RUNNING:
            log.warning("SIGHUP ignored while %s", self.state.value)
            return
        if self._reload_config is None:
            log.warning("SIGHUP: no config source to reload; rolling restart only")
            new = self.config
        else:
            try:
                new = self._reload_config()
            except ConfigError as exc:
                log.error("SIGHUP: config rejected, keeping the running one:\n%s", exc)
                self.last_reload = {"ok": False, "at": time.time(), "error": f"config rejected: {exc}"}
                return
        self._transition(DaemonState.RELOADING)
        self.notifier.reloading()
        try:
            await self._roll_out(new)
        finally:
            if self.state is DaemonState.RELOADING:
                self._transition(DaemonState.RUNNING)
                self.notifier.ready(self.status_line())

    async def _roll_out(self, new: Config) -> None:
        old = self.config
        for section, keys in restart_only_changes(old, new).items():
            log.warning("SIGHUP: %s changed in '%s': needs a restart to take effect; the running values stay",
                        ", ".join(keys), section)
        effective = effective_config(old, new)
        old_spec, old_settings = self.supervisor.spec, self.supervisor.settings
        # Successors started by the rollout need the new spec and request budget; both are undone on failure.
        self.supervisor.apply(worker_spec(effective), pool_settings(effective))
        self.zygote.apply(self.supervisor.spec, effective.workers.zygote)
        target = self.scale_target.reloaded(effective.workers.count)
        try:
            await self.supervisor.rolling_restart("reload")
            if target.count != self.supervisor.target:
                await self.supervisor.scale(target.count)
        except Exception as exc:
            # Later recycles, restarts and scale-ups must not spawn workers from a spec that just failed.
            self.supervisor.apply(old_spec, old_settings)
            self.zygote.apply(old_spec, old.workers.zygote)
            log.error("SIGHUP: reload failed, keeping the running config (engine %s): %s", old.workers.engine, exc,
                      exc_info=not isinstance(exc, ReplacementFailed))
            self.last_reload = {"ok": False, "at": time.time(), "error": str(exc)}
            await self._roll_back(old_spec)
            return
        if target.override is not None:
            log.info("SIGHUP: keeping the runtime scale of %d workers (the file says %d; 'tts-ops scale --reset' "
                     "follows the file)", target.override, target.configured)
        self.scale_target = target
        self._switch_config(effective)
        self.reloads += 1
        self.last_reload = {"ok": True, "at": time.time(), "error": None}
        log.info("SIGHUP: reload applied (engine %s, %d workers)", effective.workers.engine, effective.workers.count)

    async def _roll_back(self, old_spec: WorkerSpec) -> None:
        """Workers replaced before the rollout stopped run the new spec; put them back on the running one."""
        try:
            await self.supervisor.rolling_restart("reload rollback", only=lambda w: w.spec is not old_spec)
        except ReplacementFailed as exc:
            log.error("SIGHUP: could not move every worker back to the running config: %s", exc)

    def _switch_config(self, config: Config) -> None:
        """Every long-lived component takes over its part of the new config (the supervisor did in ``_roll_out``)."""
        self.config = config
        self.frontend.apply(config)
        self.balancer.apply(config.server.queue_limit)
        self.output_store.apply(config.output.dir, enabled=config.output.save)
        self.maintenance.apply(config)

    async def scale(self, count: int | None) -> None:
        """A runtime scale to ``count`` workers, kept across reloads; None = back to the file's count."""
        target = self.scale_target.reset() if count is None else self.scale_target.scaled(count)
        await self.supervisor.scale(target.count)
        self.scale_target = target

    # -- shutdown --------------------------------------------------------------------------------------------
    async def shutdown(self) -> int:
        """The one shutdown order: fail the health checks while still serving (drain delay), stop accepting, drain
        until the deadline, cancel the rest, stop workers, close resources in reverse, tell systemd. A second TERM
        at any point kills the workers and exits at once."""
        self.notifier.stopping()
        server = self.config.server
        self._transition(DaemonState.DRAINING, f"health checks fail, still serving for {server.drain_delay_s:g}s, "
                         f"then in-flight requests get {server.graceful_timeout_s:g}s")
        graceful = asyncio.create_task(self._graceful_stop())
        forced = asyncio.create_task(self._force.wait())
        await asyncio.wait({graceful, forced}, return_when=asyncio.FIRST_COMPLETED)
        if forced.done() and not graceful.done():
            self.supervisor.kill_all()
            self.quality.kill_now()
            self.zygote.kill()
            graceful.cancel()
            # Their exit codes collected before the loop closes (its child watcher would warn about the pids).
            unreaped = await self.supervisor.reap(FORCED_REAP_S)
            if unreaped:
                log.warning("forced stop: %d worker(s) not reaped after %.0f s", unreaped, FORCED_REAP_S)
            self._transition(DaemonState.STOPPED, "forced")
            return EXIT_FORCED
        forced.cancel()
        graceful.result()
        self._transition(DaemonState.STOPPED)
        log.info("stopped")
        return 0

    async def _graceful_stop(self) -> None:
        await asyncio.sleep(self.config.server.drain_delay_s)
        self._transition(DaemonState.STOPPING, f"{self.balancer.in_flight} in flight, {self.balancer.queue_depth} "
                         f"queued, deadline {self.config.server.graceful_timeout_s:g}s")
        # aiohttp's cleanup stops listening, closes idle keep-alives, waits for handlers up to the deadline and
        # cancels the rest; the workers must outlive it so in-flight requests can finish.
        for runner in self._runners:
            await runner.cleanup()
        self.balancer.close()
        await self.maintenance.shutdown()
        # The zygote and the scorer first, together: draining workers need neither, and a spawn still waiting for
        # the zygote must not wait long.
        await asyncio.gather(self.zygote.stop(), self.quality.stop())
        await self.supervisor.stop(drain_timeout_s=self.config.workers.kill_grace_s)
        for task in reversed(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.cache.close()
        self.notifier.close()

    # -- reporting -------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        workers = self.supervisor.snapshot()
        return {
            "pid": os.getpid(), "state": self.state.value, "uptime_s": round(time.time() - self.started, 1),
            "reloads": self.reloads, "last_reload": self.last_reload,
            "accepting": self.frontend.accepting, "engine": self.config.workers.engine,
            "workers": {"target": self.supervisor.target, **self.scale_target.public(),
                        "ready": len(self.supervisor.ready_workers()),
                        "total": len(workers), "items": workers, "zygote": self.zygote.snapshot()},
            "queue_depth": self.balancer.queue_depth, "queue_limit": self.balancer.queue_limit,
            "in_flight": self.balancer.in_flight, "totals": dict(self.frontend.totals),
            "restarts_by_reason": dict(self.supervisor.restarts_by_reason),
            "retired_workers": self.supervisor.retired_count,
            "cache": self.cache.stats(),
            "maintenance": self.maintenance.status(),
            "output": {"dir": str(self.config.output.dir), "save": self.config.output.save,
                       "paused": self.output_store.paused, "saved": self.output_store.saved},
            "logs": self.log_manager.stats() if self.log_manager is not None else None,
            "quality": self.quality.status(),
        }
