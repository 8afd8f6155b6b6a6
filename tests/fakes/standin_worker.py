"""A stand-in inference worker process for supervisor tests: answers ``/health`` on its Unix socket like the real
worker, without a model, so a pool boots in well under a second. Run as a script:

    python standin_worker.py SOCKET [--boot-s S] [--exit-after-s S --exit-code N]

``--boot-s``: answer "loading" for that long first. ``--exit-after-s``: once ready, exit with ``--exit-code`` after
that long (a crash). SIGTERM exits 0 like the real worker; it exits on its own when its parent goes away.
``StandinSpec`` (importable) is a WorkerSpec that starts this script instead of ``inference.worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from tts_ops.supervisor.handle import WorkerSpec

SCRIPT = Path(__file__).resolve()


@dataclass(frozen=True)
class StandinSpec(WorkerSpec):
    args: tuple[str, ...] = ()

    def command(self, worker_id: str, socket: Path) -> list[str]:
        return [sys.executable, str(SCRIPT), str(socket), *self.args]


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("--boot-s", type=float, default=0.0)
    parser.add_argument("--exit-after-s", type=float, default=None)
    parser.add_argument("--exit-code", type=int, default=1)
    args = parser.parse_args(argv)
    ready_at = time.monotonic() + args.boot_s

    async def health(request: web.Request) -> web.Response:
        state = "ready" if time.monotonic() >= ready_at else "loading"
        return web.json_response({"state": state, "model_version": "stand-in", "load_s": 0.0, "warmup_s": 0.0},
                                 status=200 if state == "ready" else 503)

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.UnixSite(runner, args.socket).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    parent = os.getppid()
    crash_at = ready_at + args.exit_after_s if args.exit_after_s is not None else None
    while not stop.is_set() and os.getppid() == parent:
        if crash_at is not None and time.monotonic() >= crash_at:
            os._exit(args.exit_code)
        try:
            await asyncio.wait_for(stop.wait(), 0.05)
        except asyncio.TimeoutError:
            pass
    await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
