"""Streaming benchmark: how soon the first audio arrives for a long text, and what parallel chunks buy.

    python bench/stream.py [--repeats N]

Starts a real ``tts-ops serve`` (1 worker, the bundled voice, result cache disabled so every request is
synthesized, temporary directories, free loopback ports) and, for a ~1,000-character Chinese text:

1. time to synthesize the text's first chunk alone (``POST /tts`` with just that chunk), the yardstick;
2. time to first audio byte (TTFB) and total time of ``POST /v1/audio/speech`` (pcm, streamed) on 1 worker;
3. the whole text without streaming (``POST /tts``) on 1 worker;
4. the admin API scales the daemon to 2 workers; 2 and 3 again, plus TTFB of mp3 and opus streams.

The target is TTFB <= first chunk alone + 0.2 s, and a shorter total with 2 workers (chunks run in parallel).
Medians of N runs (default 3). A script, not a test: it prints figures and judges only those two lines.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PARAGRAPH = ("清晨的城市刚刚醒来，街道两旁的梧桐树在微风中轻轻摇晃。"
             "早餐店的老板已经忙碌了两个小时，蒸笼里冒出阵阵热气，"
             "豆浆和油条的香味飘满了整条街。上班的人们匆匆走过，有的人一边走路一边看手机，有的人停下来买一份热乎乎的早点。"
             "公交车站前排起了长队，司机师傅熟练地打开车门，微笑着向每一位乘客问好。学校门口，家长们把孩子送到老师手里，"
             "叮嘱他们要好好学习，注意安全。")
ALLOWANCE_S = 0.2


def long_text(chars: int = 1000) -> str:
    text, n = "", 1
    while len(text) < chars:
        text += f"第{n}段。" + PARAGRAPH
        n += 1
    cut = text.rfind("。", 0, chars) + 1
    return text[:cut]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    def __init__(self, workers: int) -> None:
        from inference.models.store import default_store_dir

        self.workdir = Path(tempfile.mkdtemp(prefix="ttsstream-", dir="/tmp"))
        self.port, self.admin_port = free_port(), free_port()
        self.token = "bench-stream-token"
        self.config = {
            "server": {"host": "127.0.0.1", "port": self.port, "max_text_chars": 2000, "max_body_bytes": 65536},
            "admin": {"host": "127.0.0.1", "port": self.admin_port, "token": self.token},
            "workers": {"count": workers},
            "cache": {"enabled": False},
            "logging": {"dir": str(self.workdir / "logs")}, "output": {"dir": str(self.workdir / "output")},
            "paths": {"state_dir": str(self.workdir / "state"), "runtime_dir": str(self.workdir / "run")},
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TTS_OPS_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        self.env["TTS_OPS_MODEL_DIR"] = str(default_store_dir())
        self.log_path = self.workdir / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        path = self.workdir / "tts-ops.yaml"
        path.write_text(yaml.safe_dump(self.config))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tts_ops.cli", "serve", "--config", str(path)],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir)

    def request(self, method: str, path: str, body: dict | None = None, *, admin: bool = False,
                timeout: float = 300) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port if admin else self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if admin:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def ready_workers(self) -> int:
        try:
            return json.loads(self.request("GET", "/ready", timeout=5)[1])["workers"]["ready"]
        except (OSError, ValueError, KeyError):
            return 0

    def wait_ready(self, workers: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit("daemon exited:\n" + self.log_path.read_text(errors="replace")[-3000:])
            if self.ready_workers() >= workers:
                return
            time.sleep(0.1)
        raise SystemExit(f"timed out waiting for {workers} ready workers")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def timed(daemon: Daemon, path: str, body: dict) -> tuple[float, float, int]:
    """(seconds to the first body byte, seconds to the last, bytes) of one POST."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=300)
    start = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    first = resp.read1(65536)
    ttfb = time.perf_counter() - start
    if resp.status != 200:
        raise SystemExit(f"{path} answered {resp.status}: {first[:300]!r}")
    size = len(first)
    while True:
        piece = resp.read1(65536)
        if not piece:
            break
        size += len(piece)
    total = time.perf_counter() - start
    conn.close()
    return ttfb, total, size


def median_run(daemon: Daemon, repeats: int, path: str, body: dict) -> tuple[float, float, int]:
    runs = [timed(daemon, path, body) for _ in range(repeats)]
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[0][2])


def speech(text: str, fmt: str = "pcm") -> dict:
    return {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from inference.text.chunking import split_chunks
    from tts_ops.service.chunk_pipeline import MAX_STREAM_PARALLELISM

    text = long_text()
    chunks = split_chunks(text, 60)
    print(f"text: {len(text)} characters, {len(chunks)} chunks (max 60 chars); first chunk {len(chunks[0])} chars: "
          f"{chunks[0]}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"stream parallelism cap {MAX_STREAM_PARALLELISM}; medians of {args.repeats} runs\n")

    daemon = Daemon(workers=1)
    daemon.start()
    try:
        daemon.wait_ready(1)
        timed(daemon, "/v1/audio/speech", speech(text[:200]))  # warm the front end's and the worker's paths
        rows = []
        chunk_alone = median_run(daemon, args.repeats, "/tts", {"text": chunks[0], "format": "pcm"})[1]
        rows.append(("first chunk alone, /tts pcm (1 worker)", None, chunk_alone))
        one = median_run(daemon, args.repeats, "/v1/audio/speech", speech(text))
        rows.append(("whole text streamed, /v1 pcm (1 worker)", one[0], one[1]))
        whole_one = median_run(daemon, args.repeats, "/tts", {"text": text, "format": "pcm"})
        rows.append(("whole text not streamed, /tts pcm (1 worker)", whole_one[0], whole_one[1]))

        code, body = daemon.request("POST", "/admin/scale", {"workers": 2}, admin=True)
        if code != 200:
            raise SystemExit(f"scale failed: {code} {body[:300]!r}")
        daemon.wait_ready(2)
        timed(daemon, "/v1/audio/speech", speech(text[:200]))
        two = median_run(daemon, args.repeats, "/v1/audio/speech", speech(text))
        rows.append(("whole text streamed, /v1 pcm (2 workers)", two[0], two[1]))
        whole_two = median_run(daemon, args.repeats, "/tts", {"text": text, "format": "pcm"})
        rows.append(("whole text not streamed, /tts pcm (2 workers)", whole_two[0], whole_two[1]))
        for fmt in ("mp3", "opus", "wav", "flac"):
            run = median_run(daemon, args.repeats, "/v1/audio/speech", speech(text, fmt))
            rows.append((f"whole text streamed, /v1 {fmt} (2 workers)", run[0], run[1]))
    finally:
        daemon.stop()

    audio_s = one[2] / 2 / 24000
    print(f"{'measurement':50} {'TTFB s':>8} {'total s':>8}")
    for name, ttfb, total in rows:
        print(f"{name:50} {'' if ttfb is None else f'{ttfb:8.3f}':>8} {total:8.3f}")
    print(f"\naudio produced: {audio_s:.1f} s; real-time factor streamed: 1 worker {one[1] / audio_s:.3f}, "
          f"2 workers {two[1] / audio_s:.3f}")
    verdict = "OK" if one[0] <= chunk_alone + ALLOWANCE_S else "SLOWER THAN TARGET"
    print(f"TTFB (1 worker) {one[0]:.3f} s vs first chunk alone {chunk_alone:.3f} s + {ALLOWANCE_S} s allowance: "
          f"{verdict}")
    print(f"TTFB (2 workers) {two[0]:.3f} s")
    print(f"total streamed: 1 worker {one[1]:.3f} s, 2 workers {two[1]:.3f} s: x{one[1] / two[1]:.2f}")


if __name__ == "__main__":
    main()
