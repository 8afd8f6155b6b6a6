"""A real HAProxy child process for the fleet tests, started from the committed ``deploy/haproxy.cfg`` with its
addresses (listener, stats, the two servers) given through the environment variables that file reads."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import stop_process
from tests.support.redis_server import free_port

HAPROXY = shutil.which("haproxy")
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"



class HAProxy:
    """``servers``: the tts-ops instances' public ports (server names tts1, tts2, ... in that order)."""

    def __init__(self, server_ports: list[int]) -> None:
        if HAPROXY is None:
            # A missing real part fails the suite: a skip would hide that the fleet tests never ran.
            pytest.fail("haproxy not installed (apt-get install -y haproxy; scripts/test does it as root)",
                        pytrace=False)
        self.port, self.stats_port = free_port(), free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ttslb-", dir="/tmp"))
        self.log_path = self.dir / "haproxy.log"
        self.env = {**os.environ, "TTS_OPS_LB_BIND": f"127.0.0.1:{self.port}",
                    "TTS_OPS_LB_STATS": f"127.0.0.1:{self.stats_port}",
                    **{f"TTS_OPS_SERVER_{i}": f"127.0.0.1:{port}" for i, port in enumerate(server_ports, 1)}}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(CONFIG)], stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.server_states()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"haproxy exited with {self.proc.returncode}:\n{self.log()}") from None
                time.sleep(0.05)
        raise RuntimeError(f"haproxy stats did not answer within 10 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def server_states(self) -> dict[str, str]:
        """Server name -> HAProxy's status of it (UP, DOWN, "UP 1/2", "DOWN 1/2", MAINT, no check)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5) as resp:
            text = resp.read().decode()
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows
                if row["pxname"] == "tts_ops" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_state(self, server: str, state: str, timeout: float = 30) -> float:
        """Seconds until ``server`` is exactly ``state`` (UP or DOWN)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.server_states().get(server) == state:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"{server} not {state} after {timeout}s: {self.server_states()}\n{self.log()[-3000:]}")

    def close(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)
