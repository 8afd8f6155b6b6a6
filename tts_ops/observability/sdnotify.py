"""systemd readiness, status and watchdog notifications for the tts-ops daemon.

Role: the daemon's side channel to its service manager.  ``tts-ops serve`` runs
under ``Type=notify`` with ``WatchdogSec=`` (see ``systemd/tts-ops.service``),
so it tells systemd when it is ready, what it is doing, when it reloads or
stops, and proves every few seconds that its event loop still turns.

Where it runs: in the daemon (main) process, on its asyncio event loop.  Every
send is one non-blocking ``sendto`` on an AF_UNIX datagram socket, so nothing
here blocks the loop.  Worker processes must never talk to systemd: spawn them
with ``child_env()`` (and ``NotifyAccess=main`` makes systemd drop anything
they send anyway).

Why no dependency: the sd_notify protocol is a single datagram of
``KEY=value`` lines sent to the socket named by ``$NOTIFY_SOCKET``;
python-systemd would need the libsystemd headers and a compiler on every
install, and the ``sdnotify`` package on PyPI has had no release since 0.3.2
(August 2017).

Contract: best effort.  With ``$NOTIFY_SOCKET`` unset (foreground runs,
tests, containers) every method is a no-op.  A failed send is logged once, as
a warning on the ``tts_ops.observability.sdnotify`` logger (later ones at debug level), and
never raises: losing a status line must not take the TTS service down.  If
the watchdog pings are what fails, systemd restarts us - which is the right
outcome for a daemon that cannot reach its supervisor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Mapping

__all__ = ["SystemdNotifier", "child_env", "run_watchdog", "SYSTEMD_ENV_VARS"]

logger = logging.getLogger("tts_ops.sdnotify")

# The variables systemd hands to the main process only.  A child that inherits
# them would believe it is the service's main process (and, with
# NotifyAccess=all, could mark the unit ready or feed the watchdog for a
# wedged parent).
SYSTEMD_ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

_KEY_RE = re.compile(r"[A-Z_][A-Z0-9_]*\Z")


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a copy of ``environ`` (default ``os.environ``) without the
    systemd notification variables, for spawning worker processes."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k not in SYSTEMD_ENV_VARS}


def _monotonic_usec() -> int:
    # systemd compares MONOTONIC_USEC with its own CLOCK_MONOTONIC reading;
    # ask for that clock explicitly rather than rely on what time.monotonic()
    # happens to use on this platform.
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _clean(value: object) -> str:
    # A newline would start a new assignment: status text built from an
    # exception message could otherwise smuggle in READY=1 or STOPPING=1.
    return str(value).replace("\r", " ").replace("\n", " ")


class SystemdNotifier:
    """Sends sd_notify datagrams to the socket systemd named in the environment.

    Build one per daemon, in the main process, from the environment systemd
    gave it (``environ`` defaults to ``os.environ``; tests pass their own).
    Every method returns True if a datagram was handed to the kernel, False
    otherwise, and never raises.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._logged: set[str] = set()
        self._sock: socket.socket | None = None
        self._addr: bytes | None = self._parse_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = self._parse_usec(env.get("WATCHDOG_USEC"))
        self._watchdog_pid = self._parse_pid(env.get("WATCHDOG_PID"))

    # -- environment ---------------------------------------------------

    def _parse_address(self, raw: str) -> bytes | None:
        if not raw:
            logger.debug("NOTIFY_SOCKET is not set: systemd notifications are disabled")
            return None
        if raw.startswith("@"):
            # Abstract namespace: systemd writes the leading NUL as '@'.
            return b"\0" + os.fsencode(raw[1:])
        if raw.startswith("/"):
            return os.fsencode(raw)
        # e.g. vsock:CID:PORT (systemd >= 253, VMs) - not used on our hosts.
        self._log_once("address", "unsupported NOTIFY_SOCKET %r: systemd notifications disabled", raw)
        return None

    def _parse_usec(self, raw: str | None) -> int | None:
        if raw is None or raw == "":
            return None
        try:
            usec = int(raw)
        except ValueError:
            usec = 0
        if usec <= 0:
            self._log_once("watchdog_usec", "ignoring invalid WATCHDOG_USEC=%r", raw)
            return None
        return usec

    def _parse_pid(self, raw: str | None) -> int | None:
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            # Unparseable means we cannot prove the watchdog is ours: stay
            # silent rather than feed it on behalf of another process.
            self._log_once("watchdog_pid", "ignoring watchdog: invalid WATCHDOG_PID=%r", raw)
            return -1

    # -- properties ----------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True if there is a notification socket to talk to."""
        return self._addr is not None

    def _watchdog_is_ours(self) -> bool:
        # Checked at call time, not construction time, so a forked child that
        # kept this object does not ping for its parent.
        return self._watchdog_pid is None or self._watchdog_pid == os.getpid()

    @property
    def watchdog_interval_s(self) -> float | None:
        """Seconds between watchdog pings: half of ``WATCHDOG_USEC``, as
        systemd recommends.  None if the watchdog is off, not ours
        (``WATCHDOG_PID`` names another process) or there is no socket."""
        if self._watchdog_usec is None or not self.enabled or not self._watchdog_is_ours():
            return None
        return self._watchdog_usec / 2 / 1_000_000

    # -- messages ------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup (or a reload) finished; systemd's start job
        completes and ``systemctl start`` returns."""
        fields: dict[str, object] = {"READY": 1}
        if status is not None:
            fields["STATUS"] = status
        return self.notify(**fields)

    def status(self, text: str) -> bool:
        """``STATUS=``: free text shown by ``systemctl status``."""
        return self.notify(STATUS=text)

    def reloading(self) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC``; send ``ready()`` when the
        reload is done.  systemd >= 253 requires the timestamp for
        Type=notify-reload and older ones ignore it."""
        return self.notify(RELOADING=1, MONOTONIC_USEC=_monotonic_usec())

    def stopping(self) -> bool:
        """``STOPPING=1``: graceful shutdown has begun (draining)."""
        return self.notify(STOPPING=1)

    def watchdog(self) -> bool:
        """``WATCHDOG=1`` keep-alive; skipped if ``WATCHDOG_PID`` is another
        process's pid."""
        if not self._watchdog_is_ours():
            return False
        return self.notify(WATCHDOG=1)

    def extend_timeout(self, usec: int) -> bool:
        """``EXTEND_TIMEOUT_USEC``: ask for ``usec`` more microseconds on the
        current start/stop timeout (e.g. a slow model warm-up)."""
        try:
            value = int(usec)
        except (TypeError, ValueError):
            value = -1
        if value <= 0:
            self._log_once("extend_timeout", "ignoring extend_timeout(%r): not a positive integer", usec)
            return False
        return self.notify(EXTEND_TIMEOUT_USEC=value)

    def notify(self, _raw: str | None = None, /, **fields: object) -> bool:
        """Send one datagram: a raw ``"KEY=value\\n..."`` string (sent as is)
        and/or ``KEY=value`` keyword fields (newlines in values are blanked)."""
        if self._addr is None:
            return False
        lines = [_raw] if _raw else []
        for key, value in fields.items():
            if not _KEY_RE.match(key):
                self._log_once("key", "dropping sd_notify message with invalid key %r", key)
                return False
            lines.append(f"{key}={_clean(value)}")
        if not lines:
            return False
        return self._send("\n".join(lines).encode("utf-8"), self._addr)

    def _send(self, payload: bytes, addr: bytes) -> bool:
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Non-blocking: if systemd's queue is full we drop the
                # message (EAGAIN) instead of stalling the event loop.
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(payload, addr)
            return True
        except OSError as exc:
            # ENOENT/ECONNREFUSED (socket gone), EAGAIN (queue full),
            # EPERM (sandbox): all the same to us - drop and carry on.
            self._log_once("send", "sd_notify to %r failed: %s", addr, exc)
            return False
        except Exception:
            self._log_once("send", "sd_notify to %r failed unexpectedly", addr, exc_info=True)
            return False

    def close(self) -> None:
        """Close the socket (it is reopened on the next send)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _log_once(self, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        # A broken socket fails on every ping (every 15 s for WatchdogSec=30):
        # warn once, then keep the rest at debug level so the journal stays
        # readable.
        level = logging.DEBUG if key in self._logged else logging.WARNING
        self._logged.add(key)
        logger.log(level, msg, *args, exc_info=exc_info)


async def run_watchdog(
    notifier: SystemdNotifier,
    stop_event: asyncio.Event,
    healthy: Callable[[], bool] | None = None,
) -> None:
    """Send ``WATCHDOG=1`` every ``notifier.watchdog_interval_s`` until
    ``stop_event`` is set.  Returns at once if the watchdog is off.

    Run it as a task on the daemon's own event loop: the pings are only sent
    while the loop turns, so a loop stalled by blocking code misses them and
    systemd kills and restarts the daemon - the point of the watchdog.

    ``healthy``, if given, is called (on the loop - keep it cheap and
    non-blocking) before each ping; while it returns False or raises, pings are
    withheld, so e.g. a wedged supervisor loop gets the daemon restarted even
    though the HTTP side still responds.
    """
    interval = notifier.watchdog_interval_s
    if interval is None:
        logger.debug("systemd watchdog not enabled for this process; not pinging")
        return
    logger.debug("systemd watchdog enabled: pinging every %.3f s", interval)
    withheld = False
    while not stop_event.is_set():
        ok = True
        if healthy is not None:
            try:
                ok = bool(healthy())
            except Exception:
                logger.debug("watchdog health check raised", exc_info=True)
                ok = False
        if ok:
            if withheld:
                logger.info("health check passes again: resuming systemd watchdog pings")
                withheld = False
            notifier.watchdog()
        elif not withheld:
            # Logged per transition, not per tick: this is the message an
            # operator needs when systemd later reports a watchdog timeout.
            logger.warning("health check failing: withholding systemd watchdog pings")
            withheld = True
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
        except asyncio.TimeoutError:
            pass
