"""Stand-in worker processes for dispatch tests: a real aiohttp server per worker on a Unix socket (what the
supervisor's sessions talk to) with a scriptable ``/synthesize``, attached to the balancer tests' FakeSupervisor
with real client sessions. No model, no subprocess."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

from tests.fakes.pool import FakeSupervisor, FakeWorker

RATE = 16000


def pcm_for(text: str) -> bytes:
    """Deterministic audio for a text (so a test can check what it got back): 10 ms per character."""
    n = RATE // 100 * max(1, len(text))
    return (np.full(n, len(text) % 100 + 1, dtype="<i2")).tobytes()


class WorkerServer:
    """One worker's HTTP side. ``gate``: when set to an unset Event, /synthesize waits for it (a long synthesis
    that a test ends when it wants); ``gates``: the same per job text (shared by a pool's servers). ``status``:
    answer this instead of 200. ``delay_s``: a short synthesis."""

    def __init__(self, socket: Path, gates: dict[str, asyncio.Event] | None = None) -> None:
        self.socket = socket
        self.gate: asyncio.Event | None = None
        self.gates = gates if gates is not None else {}
        self.texts: list[str] = []  # job texts in the order they arrived
        self.status = 200
        self.delay_s = 0.0
        self.received = 0
        self.answered = 0
        self.started = asyncio.Event()  # set when a /synthesize request arrives
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        job = await request.json()
        self.received += 1
        self.texts.append(job["text"])
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if job["text"] in self.gates:
            await self.gates[job["text"]].wait()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.answered += 1
        if self.status != 200:
            return web.json_response({"error": f"stand-in error {self.status}"}, status=self.status)
        audio = pcm_for(job["text"])
        return web.Response(body=audio, content_type="audio/pcm",
                            headers={"X-Sample-Rate": str(RATE), "X-Audio-Duration": f"{len(audio) / 2 / RATE:.3f}",
                                     "X-Synthesis-Time": f"{self.delay_s:.3f}", "X-Engine": "stand-in"})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/synthesize", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        await web.UnixSite(self.runner, str(self.socket)).start()

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


class Pool:
    """``FakeSupervisor`` whose workers have real sessions to real stand-in servers."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to ~107 bytes: pytest's tmp_path can be longer.
        self.dir = Path(tempfile.mkdtemp(prefix="disp", dir="/tmp"))
        self.sup = FakeSupervisor()
        self.servers: dict[str, WorkerServer] = {}
        self.gates: dict[str, asyncio.Event] = {}

    async def add(self, worker_id: str, pid: int, *, serve: bool = True) -> FakeWorker:
        """A READY worker; ``serve=False``: its process is gone (connections to it fail)."""
        socket = self.dir / f"{worker_id}.sock"
        worker = self.sup.add(worker_id, pid)
        worker.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket)))
        server = self.servers[worker_id] = WorkerServer(socket, self.gates)
        if serve:
            await server.start()
        return worker

    def texts(self) -> list[str]:
        return [text for server in self.servers.values() for text in server.texts]

    def answered(self) -> int:
        return sum(server.answered for server in self.servers.values())

    async def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        for server in self.servers.values():
            await server.stop()
        for worker in self.sup.workers.values():
            if isinstance(worker.session, aiohttp.ClientSession):
                await worker.session.close()
        shutil.rmtree(self.dir, ignore_errors=True)


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)
