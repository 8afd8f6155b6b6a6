"""Worker memory benchmark: RSS, PSS and USS of real worker processes idle and after growing inputs.

Usage::

    python bench/memory.py [--workers 1] [--mixed 200] [--threads 1] [--store-dir DIR] [--zygote]

Method: starts ``--workers`` real ``python -m inference.worker`` processes on Unix sockets (as the supervisor
does, without the daemon) or, with ``--zygote``, starts ``python -m inference.zygote`` and has it fork them (as the
daemon does with ``workers.zygote: true``: this process is their child subreaper and their ``--parent-pid``); waits
until each answers ``/health`` ready (model loaded and warmed up), then drives
every worker from its own client thread, one request at a time, and samples each worker's memory with psutil's
``memory_full_info()`` (``/proc/PID/smaps_rollup``) after each phase:

1. idle: right after READY;
2. after 20 requests of 200 characters;
3. after one request of 1,000 characters;
4. after ``--mixed`` mixed requests (10-400 characters, every emotion, speeds 0.5-2.0, seeded), sampled every
   quarter, so a leak (still climbing) can be told from a plateau.

USS (memory only this process holds) is what another worker would add; PSS shares the common pages out; RSS counts
them in full. With ``--zygote`` the zygote's own figures are shown too (its pages are what forked workers share).
Request counts are per worker. Texts are cut from the benchmark paragraph, as in bench/engine.py.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import psutil
from engine import table, text_of_length  # bench/ is on sys.path when run as python bench/memory.py

from tts_ops.supervisor.zygote import become_subreaper
from tts_vocab.emotions import EMOTIONS
from tts_vocab.zygote import MAX_PACKET_BYTES, ForkReply, ForkRequest, ZygoteReady

MIXED_CHARS = (10, 30, 60, 120, 200, 400)
MIXED_SPEEDS = (0.5, 0.8, 1.0, 1.0, 1.5, 2.0)
MIB = 2**20


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def call(socket_path: str, method: str, path: str, body: dict | None = None, timeout: float = 300) -> tuple[int, bytes]:
    conn = UnixHTTPConnection(socket_path, timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class ForkedProc:
    """A worker the zygote forked, reparented to this process (its subreaper): the part of Popen the bench uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def terminate(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.returncode


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen | ForkedProc
    socket: str

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited with {self.proc.returncode} before it was ready")
            try:
                if call(self.socket, "GET", "/health", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit(f"{self.name} not ready after {timeout} s")

    def synthesize(self, text: str, emotion: str = "neutral", speed: float = 1.0) -> None:
        status, body = call(self.socket, "POST", "/synthesize", {"text": text, "emotion": emotion, "speed": speed})
        if status != 200:
            sys.exit(f"{self.name}: synthesis failed with {status}: {body[:300]!r}")

    def memory(self) -> tuple[float, float, float]:
        return memory_of(self.proc.pid)


def memory_of(pid: int) -> tuple[float, float, float]:
    """RSS, PSS and USS of ``pid`` in MiB (``/proc/PID/smaps_rollup``)."""
    info = psutil.Process(pid).memory_full_info()
    return info.rss / MIB, info.pss / MIB, info.uss / MIB


def start_workers(count: int, threads: int, store_dir: str | None, workdir: Path) -> list[Worker]:
    workers = []
    for index in range(1, count + 1):
        sock = str(workdir / f"w{index}.sock")
        cmd = [sys.executable, "-m", "inference.worker", *worker_args(index, threads, store_dir, workdir)]
        with open(workdir / f"w{index}.log", "wb") as stderr:  # the child keeps its own copy of the fd
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        workers.append(Worker(f"w{index}", proc, sock))
    for worker in workers:
        worker.wait_ready()
    return workers


def worker_args(index: int, threads: int, store_dir: str | None, workdir: Path) -> list[str]:
    args = ["--socket", str(workdir / f"w{index}.sock"), "--threads", str(threads), "--worker-id", f"w{index}",
            "--parent-pid", str(os.getpid())]
    return args + (["--store-dir", store_dir] if store_dir else [])


def start_zygote(threads: int, store_dir: str | None, workdir: Path) -> tuple[subprocess.Popen, socket.socket]:
    """The zygote, preloaded and ready to fork (this process made its workers' subreaper first)."""
    become_subreaper()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cmd = [sys.executable, "-m", "inference.zygote", "--threads", str(threads), "--control-fd", str(theirs.fileno()),
           "--parent-pid", str(os.getpid())] + (["--store-dir", store_dir] if store_dir else [])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # as the daemon starts it
    with open(workdir / "zygote.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=(theirs.fileno(),), env=env)
    theirs.close()
    ours.settimeout(300)
    packet = ours.recv(MAX_PACKET_BYTES)
    if not packet:
        sys.exit(f"the zygote exited with {proc.wait()} before it was ready; see {workdir / 'zygote.log'}")
    print(f"  zygote ready: preloaded in {ZygoteReady.from_wire(packet).preload_s:.2f} s", file=sys.stderr)
    return proc, ours


def fork_workers(count: int, threads: int, store_dir: str | None, workdir: Path,
                 control: socket.socket) -> list[Worker]:
    workers = []
    for index in range(1, count + 1):
        with open(workdir / f"w{index}.log", "wb") as log:  # the zygote's worker keeps its own copy of the fd
            socket.send_fds(control, [ForkRequest(tuple(worker_args(index, threads, store_dir, workdir))).to_wire()],
                            [log.fileno()])
            reply = ForkReply.from_wire(control.recv(MAX_PACKET_BYTES))
        if reply.pid is None:
            sys.exit(f"the zygote could not fork w{index}: {reply.error}")
        workers.append(Worker(f"w{index}", ForkedProc(reply.pid), str(workdir / f"w{index}.sock")))
    for worker in workers:
        worker.wait_ready()
    return workers


def on_every_worker(workers: list[Worker], job: Callable[[Worker], None]) -> float:
    """Run ``job`` for each worker on its own thread; the wall seconds it took."""
    start = time.monotonic()
    threads = [threading.Thread(target=job, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - start


def mixed_jobs(count: int, seed: int) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    return [(text_of_length(rng.choice(MIXED_CHARS)), rng.choice(EMOTIONS), rng.choice(MIXED_SPEEDS))
            for _ in range(count)]


def run_phases(workers: list[Worker], mixed: int,
               zygote_pid: int | None = None) -> list[tuple[str, float, list[tuple[float, float, float]]]]:
    """Drive the phases; each row has every worker's (RSS, PSS, USS), then the zygote's when there is one."""
    rows = []

    def sample(phase: str, seconds: float) -> None:
        figures = [worker.memory() for worker in workers]
        rows.append((phase, seconds, figures + ([memory_of(zygote_pid)] if zygote_pid else [])))
        print(f"  {phase}: done in {seconds:.0f} s", file=sys.stderr, flush=True)

    sample("idle (READY)", 0.0)
    text200 = text_of_length(200)
    sample("after 20 x 200 chars", on_every_worker(workers, lambda w: [w.synthesize(text200) for _ in range(20)]))
    sample("after 1 x 1,000 chars", on_every_worker(workers, lambda w: w.synthesize(text_of_length(1000))))
    jobs = mixed_jobs(mixed, seed=11)
    quarters = [jobs[i * len(jobs) // 4:(i + 1) * len(jobs) // 4] for i in range(4)]
    done = 0
    for part in quarters:
        seconds = on_every_worker(workers, lambda w, part=part: [w.synthesize(*job) for job in part])
        done += len(part)
        sample(f"after {done} mixed", seconds)
    return rows


def describe_machine(threads: int, workers: int, mixed: int) -> str:
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("ai-edge-litert", "numpy", "psutil"))
    memory = psutil.virtual_memory().total / 2**30
    return (f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs, {memory:.1f} GiB), "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {versions}\n"
            f"{workers} worker(s), {threads} inference thread(s) each, requests per worker; mixed = {mixed} requests "
            f"of {'/'.join(map(str, MIXED_CHARS))} chars, all emotions, speeds {min(MIXED_SPEEDS)}-{max(MIXED_SPEEDS)}"
            f"\nmemory: psutil memory_full_info() of each worker (RSS, PSS, USS in MiB) after the phase")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="worker processes, driven in parallel")
    parser.add_argument("--mixed", type=int, default=200, help="mixed requests per worker in the last phase")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per worker")
    parser.add_argument("--store-dir", default=None, help="model store (default: $TTS_OPS_MODEL_DIR or cache)")
    parser.add_argument("--zygote", action="store_true", help="workers forked by a preloaded zygote (the default "
                        "in the daemon) instead of cold-started; the zygote's own figures are shown too")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.mixed < 4:
        parser.error("--workers must be >= 1 and --mixed >= 4")
    workdir = Path(tempfile.mkdtemp(prefix="ttsmem-", dir="/tmp"))
    zygote: subprocess.Popen | None = None
    workers: list[Worker] = []
    try:
        if args.zygote:
            zygote, control = start_zygote(args.threads, args.store_dir, workdir)
            workers = fork_workers(args.workers, args.threads, args.store_dir, workdir, control)
        else:
            workers = start_workers(args.workers, args.threads, args.store_dir, workdir)
        rows = run_phases(workers, args.mixed, zygote.pid if zygote else None)
    finally:
        for worker in workers:
            worker.proc.terminate()
            worker.proc.wait(30)
        if zygote is not None:
            zygote.terminate()
            zygote.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
    print(describe_machine(args.threads, args.workers, args.mixed)
          + ("; workers forked by the zygote (its figures last)" if zygote else "; cold-started workers"))
    print()
    names = [w.name for w in workers] + (["zygote"] if zygote else [])
    header = ["phase", "wall s"] + [f"{name} {kind}" for name in names for kind in ("RSS", "PSS", "USS")]
    print(table(header, [[phase, f"{seconds:.0f}", *(f"{value:.0f}" for figures in memory for value in figures)]
                         for phase, seconds, memory in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
