"""tts_ops.observability.sdnotify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid

import pytest

from tests.conftest import drain_datagrams
from tts_ops.observability.sdnotify import SystemdNotifier, child_env, run_watchdog

LOGGER = "tts_ops.sdnotify"


def _recv(sock: socket.socket, timeout: float = 2.0) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    finally:
        sock.setblocking(False)


@pytest.fixture
def abstract_listener():
    name = f"tts-ops-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    yield sock, "@" + name
    sock.close()


@pytest.mark.parametrize("which", ["path", "abstract"])
def test_messages_byte_exact(which, notify_listener, abstract_listener):
    sock, addr = notify_listener if which == "path" else abstract_listener
    n = SystemdNotifier({"NOTIFY_SOCKET": addr})
    assert n.enabled

    assert n.ready()
    assert _recv(sock) == b"READY=1"
    assert n.ready(status="serving 4 workers")
    assert _recv(sock) == b"READY=1\nSTATUS=serving 4 workers"
    assert n.status("warming up: 2/4 models")
    assert _recv(sock) == b"STATUS=warming up: 2/4 models"
    assert n.stopping()
    assert _recv(sock) == b"STOPPING=1"
    assert n.watchdog()
    assert _recv(sock) == b"WATCHDOG=1"
    assert n.extend_timeout(30_000_000)
    assert _recv(sock) == b"EXTEND_TIMEOUT_USEC=30000000"
    assert n.notify("READY=1\nSTATUS=raw")
    assert _recv(sock) == b"READY=1\nSTATUS=raw"
    assert n.notify(STATUS="\u5408\u6210\u4e2d")  # non-ASCII status is UTF-8
    assert _recv(sock) == "STATUS=\u5408\u6210\u4e2d".encode()
    n.close()


def test_reloading_carries_monotonic_usec(notify_listener):
    sock, addr = notify_listener
    n = SystemdNotifier({"NOTIFY_SOCKET": addr})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    lines = _recv(sock).split(b"\n")
    assert lines[0] == b"RELOADING=1"
    assert len(lines) == 2 and lines[1].startswith(b"MONOTONIC_USEC=")
    usec = int(lines[1].split(b"=", 1)[1])
    assert before <= usec <= after


def test_newlines_in_values_cannot_inject_fields(notify_listener):
    sock, addr = notify_listener
    n = SystemdNotifier({"NOTIFY_SOCKET": addr})
    assert n.status("boom\nREADY=1")
    assert _recv(sock) == b"STATUS=boom READY=1"


def test_invalid_input_is_dropped_not_raised(notify_listener, caplog):
    sock, addr = notify_listener
    n = SystemdNotifier({"NOTIFY_SOCKET": addr})
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert n.extend_timeout(0) is False
        assert n.extend_timeout("soon") is False  # type: ignore[arg-type]
        assert n.notify(**{"bad key": 1}) is False
        assert n.notify() is False
    assert drain_datagrams(sock) == []


def test_no_notify_socket_is_a_noop(caplog):
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        n = SystemdNotifier({"WATCHDOG_USEC": "200000"})
        results = [n.ready("x"), n.status("x"), n.reloading(), n.stopping(),
                   n.watchdog(), n.extend_timeout(1), n.notify(STATUS="x")]
    assert results == [False] * 7
    assert not n.enabled
    assert n.watchdog_interval_s is None
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 1 and records[0].levelno == logging.DEBUG


def test_default_environ_is_os_environ(monkeypatch, notify_listener):
    sock, addr = notify_listener
    monkeypatch.setenv("NOTIFY_SOCKET", addr)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert SystemdNotifier().ready()
    assert _recv(sock) == b"READY=1"


def test_missing_socket_logged_once_never_raises(tmp_path, caplog):
    n = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nope.sock")})
    assert n.enabled
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(5):
            assert n.ready() is False
            assert n.watchdog() is False
            assert n.status("still here") is False
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "nope.sock" in warnings[0].getMessage()


def test_unsupported_address_disables(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        n = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and n.ready() is False
    assert len([r for r in caplog.records if r.name == LOGGER]) == 1


def test_watchdog_interval_and_pid():
    base = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}
    assert SystemdNotifier(base).watchdog_interval_s == 15.0
    ours = SystemdNotifier({**base, "WATCHDOG_PID": str(os.getpid())})
    assert ours.watchdog_interval_s == 15.0
    theirs = SystemdNotifier({**base, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert theirs.watchdog_interval_s is None
    assert SystemdNotifier({**base, "WATCHDOG_PID": "junk"}).watchdog_interval_s is None
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x"}).watchdog_interval_s is None
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "0"}).watchdog_interval_s is None
    assert SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "abc"}).watchdog_interval_s is None


def test_child_env_strips_systemd_vars():
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000",
           "WATCHDOG_PID": "123", "PATH": "/usr/bin", "TTS_OPS_ADMIN_TOKEN": "t"}
    out = child_env(env)
    assert out == {"PATH": "/usr/bin", "TTS_OPS_ADMIN_TOKEN": "t"}
    assert "NOTIFY_SOCKET" in env  # input untouched
    assert isinstance(child_env(), dict)


# --- run_watchdog -----------------------------------------------------------

def _wd_notifier(addr: str, **extra: str) -> SystemdNotifier:
    # WATCHDOG_USEC=200000 -> one ping every 100 ms.
    return SystemdNotifier({"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "200000",
                            "WATCHDOG_PID": str(os.getpid()), **extra})


async def until(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` on the loop; fail when it is not true within ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not reached within {timeout} s"
        await asyncio.sleep(0.01)


class Ticks:
    """A ``healthy`` callback that counts the watchdog's ticks (it is called once per tick, before the ping),
    so a test waits for N ticks instead of sleeping and hoping the loop ran."""

    def __init__(self, ok: bool = True, raises: bool = False) -> None:
        self.ok, self.raises, self.calls = ok, raises, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.raises:
            raise RuntimeError("supervisor state unreadable")
        return self.ok

    async def wait(self, more: int, what: str) -> None:
        target = self.calls + more
        await until(lambda: self.calls >= target, what=what)


async def test_run_watchdog_pings_and_stops(notify_listener):
    sock, addr = notify_listener
    n = _wd_notifier(addr)
    assert n.watchdog_interval_s == pytest.approx(0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_watchdog(n, stop))
    await asyncio.sleep(0.55)
    pings = drain_datagrams(sock)
    assert set(pings) == {b"WATCHDOG=1"}
    assert 3 <= len(pings) <= 8  # ~6 expected; loose for a loaded CI box
    # Positive control for the check below: a running watchdog does ping within a 0.25 s window.
    await asyncio.sleep(0.25)
    assert len(drain_datagrams(sock)) >= 1
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)
    await asyncio.sleep(0.25)
    assert drain_datagrams(sock) == []  # nothing after stop


async def test_blocked_loop_sends_no_pings(notify_listener):
    sock, addr = notify_listener
    n = _wd_notifier(addr)
    stop = asyncio.Event()
    task = asyncio.create_task(run_watchdog(n, stop))
    await until(lambda: len(drain_datagrams(sock)) >= 1, what="first ping")
    # Positive control: with the loop turning, the same 0.6 s window holds several pings.
    await asyncio.sleep(0.6)
    assert len(drain_datagrams(sock)) >= 3

    during_block: list[int] = []

    def blocker() -> None:
        # Runs as a loop callback: nothing else on the loop runs until it
        # returns, so the datagrams queued across the sleep are exactly the
        # pings sent while the loop was stalled.
        drain_datagrams(sock)
        time.sleep(0.6)
        during_block.append(len(drain_datagrams(sock)))

    asyncio.get_running_loop().call_soon(blocker)
    await until(lambda: bool(during_block), what="blocker ran")
    assert during_block == [0]
    await until(lambda: len(drain_datagrams(sock)) >= 1, what="pings resume once the loop turns again")
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


async def test_unhealthy_gate_withholds_pings(notify_listener, caplog):
    sock, addr = notify_listener
    n = _wd_notifier(addr)
    ticks = Ticks(ok=False)
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        task = asyncio.create_task(run_watchdog(n, stop, healthy=ticks))
        await ticks.wait(3, "three unhealthy ticks")
        assert drain_datagrams(sock) == []
        # Positive control: the same number of ticks, healthy this time, does send pings.
        ticks.ok = True
        await ticks.wait(3, "three healthy ticks")
        assert len(drain_datagrams(sock)) >= 2
        stop.set()
        await asyncio.wait_for(task, timeout=1.0)
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per transition, not per tick


async def test_raising_health_check_counts_as_unhealthy(notify_listener):
    sock, addr = notify_listener
    stop = asyncio.Event()
    ticks = Ticks(raises=True)
    task = asyncio.create_task(run_watchdog(_wd_notifier(addr), stop, healthy=ticks))
    await ticks.wait(3, "three raising health checks")
    assert drain_datagrams(sock) == []
    assert not task.done()  # the exception did not end the watchdog
    # Positive control: once the check stops raising, the same number of ticks sends pings.
    ticks.raises = False
    await ticks.wait(3, "three passing health checks")
    assert len(drain_datagrams(sock)) >= 2
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)


async def test_watchdog_pid_mismatch_sends_nothing(notify_listener):
    sock, addr = notify_listener
    n = _wd_notifier(addr, WATCHDOG_PID=str(os.getpid() + 1))
    stop = asyncio.Event()
    await asyncio.wait_for(run_watchdog(n, stop), timeout=1.0)  # returns at once
    assert n.watchdog() is False
    assert drain_datagrams(sock) == []


async def test_run_watchdog_without_watchdog_returns(notify_listener):
    sock, addr = notify_listener
    await asyncio.wait_for(run_watchdog(SystemdNotifier({"NOTIFY_SOCKET": addr}), asyncio.Event()), 1.0)
    await asyncio.wait_for(run_watchdog(SystemdNotifier({}), asyncio.Event()), 1.0)
    assert drain_datagrams(sock) == []


async def test_run_watchdog_survives_missing_socket(tmp_path):
    n = _wd_notifier(str(tmp_path / "gone.sock"))
    stop = asyncio.Event()
    ticks = Ticks()
    task = asyncio.create_task(run_watchdog(n, stop, healthy=ticks))
    await ticks.wait(3, "three ticks")  # each passing tick tries a ping on the missing socket
    assert n.watchdog() is False  # the sends do fail
    assert not task.done()  # send failures do not kill the task
    stop.set()
    await asyncio.wait_for(task, timeout=1.0)
