"""A real ``redis-server`` child process for tests: TCP on a free loopback port or a Unix socket in a short /tmp
directory, no persistence; tests stop/pause/restart it to simulate outages."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ping(port: int, unix_socket: Path | None = None) -> bool:
    """Whether a Redis (or Sentinel) answers PING on the loopback port or Unix socket."""
    family = socket.AF_UNIX if unix_socket else socket.AF_INET
    try:
        with socket.socket(family) as sock:
            sock.settimeout(0.5)
            sock.connect(str(unix_socket) if unix_socket else ("127.0.0.1", port))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server child; ``stop()`` kills it (a crash, not a clean shutdown), ``start()`` brings it back
    on the same port/socket with an empty dataset."""

    def __init__(self, *, unix: bool = False) -> None:
        if REDIS_SERVER is None:
            # A missing real part fails the suite (STYLE 9): a skip would hide that the Redis tests never ran.
            pytest.fail("redis-server not installed (apt-get install -y redis-server); the Redis tests need it",
                        pytrace=False)
        # Unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
        self.dir = Path(tempfile.mkdtemp(prefix="ttsc-", dir="/tmp"))
        self.port = 0 if unix else free_port()
        self.socket = self.dir / "redis.sock" if unix else None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0" if self.socket else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning"]
        if self.socket:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ping(self.port, self.socket):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted by the kernel but never answered - a hung Redis."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
