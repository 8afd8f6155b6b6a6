"""The inference worker process: loads one engine, warms it up, and serves it over HTTP on a Unix socket.

Runs as its own process (``python -m inference.worker --engine NAME --socket PATH``), started by the supervisor.
``GET /health`` answers from the first moment (state ``loading`` until the model is warm), and keeps answering
during a long synthesis because inference runs on a dedicated thread, one request at a time (engines are not
thread-safe). Exit codes tell the supervisor why it ended: ``EXIT_BOOT_FAILURE`` (3) when the engine cannot load,
so a broken deployment halts restarts; 0 after a graceful TERM; anything else is a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import enum
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from aiohttp import web

from inference.errors import BootError, EngineFailure, TextError
from inference.memory import release_free_memory, use_one_heap
from inference.text.alignment import Timeline, words
from tts_vocab import SynthesisJob, SynthesisReply
from tts_vocab.errors import InvalidRequest
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE, EXIT_OK, EXIT_RUNTIME_CRASH
from tts_vocab.messages import PhonemizeRequest
from tts_vocab.ssml import Script
from tts_vocab.timings import Timings

if TYPE_CHECKING:  # the engine base pulls in numpy; a cold worker imports it after the socket is up
    from inference.engines.base import Engine

log = logging.getLogger("tts_ops.worker")
T = TypeVar("T")
MAX_BODY_BYTES = 1 << 20
PR_SET_PDEATHSIG = 1


class WorkerPhase(enum.Enum):
    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"


def die_with_parent(parent_pid: int | None) -> None:
    """Ask the kernel to TERM us if the supervisor dies, so a worker can never outlive it as an orphan. If the
    supervisor already died while we were importing (before prctl), we were reparented: exit now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        log.error("supervisor (pid %d) is gone; exiting", parent_pid)
        sys.exit(EXIT_OK)


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class WorkerServer:
    """One engine behind a Unix-socket HTTP API."""

    def __init__(self, args: argparse.Namespace, preloaded: Engine | None = None) -> None:
        self.args = args
        # An engine the zygote preloaded (files read, frontend built) before forking us; ``load`` finishes it.
        self._preloaded = preloaded
        self.phase = WorkerPhase.LOADING
        self.engine: Any = None
        self.started = time.monotonic()
        self.served = 0
        self.failed = 0
        self.busy = False
        self.load_s: float | None = None
        self.warmup_s: float | None = None
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._stop = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        socket_path = Path(self.args.socket)
        socket_path.unlink(missing_ok=True)
        site = web.UnixSite(runner, str(socket_path))
        await site.start()
        os.chmod(socket_path, 0o600)
        log.info("listening on %s, loading engine %s", socket_path, self.args.engine)
        load: asyncio.Future[Any] = asyncio.ensure_future(loop.run_in_executor(self._executor, self._load_engine))
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
        done, _ = await asyncio.wait({load, stop}, return_when=asyncio.FIRST_COMPLETED)
        boot_error = load.exception() if load in done else None
        if boot_error is not None:
            await runner.cleanup()
            # aiohttp's cleanup leaves the socket file behind; remove it as drain() does.
            socket_path.unlink(missing_ok=True)
            return self._boot_failed(boot_error)
        if load in done:
            self.phase = WorkerPhase.READY
            info = self.engine.info()
            log.info("ready: %s %s, load %.2fs, warm-up %.2fs", info.id, info.model_version, self.load_s, self.warmup_s)
            await stop
        return await self.drain(runner)

    def _load_engine(self) -> None:
        # Heavy (the engine's runtime): imported on the loader thread after the socket is bound.
        from inference.engines import create_engine

        start = time.monotonic()
        options = json.loads(self.args.options) if self.args.options else {}
        store = Path(self.args.store_dir) if self.args.store_dir else None
        engine = self._preloaded or create_engine(self.args.engine, store_dir=store, threads=self.args.threads,
                                                  options=options)
        engine.load()
        self.load_s = time.monotonic() - start
        self.warmup_s = engine.warm_up(light=self._preloaded is not None)
        release_free_memory()  # what the load and warm-up freed: an idle worker holds only what it uses
        if self.args.loudness_lufs is not None:
            # Heavy (pyloudnorm + scipy, ~0.7 s): imported before READY rather than by the first client's request;
            # a forked worker finds it loaded by the zygote.
            import inference.loudness  # noqa: F401
        self.engine = engine

    def _boot_failed(self, exc: BaseException) -> int:
        if isinstance(exc, BootError):
            log.error("boot failed: %s", exc)
        else:
            log.error("boot failed with an unexpected error", exc_info=exc)
        return EXIT_BOOT_FAILURE

    async def drain(self, runner: web.AppRunner) -> int:
        """Finish the synthesis in progress, then close the socket; the supervisor stops routing to us first."""
        self.phase = WorkerPhase.DRAINING
        log.info("draining (served %d)", self.served)
        async with self._lock:
            pass
        await runner.cleanup()
        self._executor.shutdown(wait=False, cancel_futures=True)
        Path(self.args.socket).unlink(missing_ok=True)
        return EXIT_OK

    # -- HTTP ------------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/health", self.handle_health)
        app.router.add_post("/synthesize", self.handle_synthesize)
        app.router.add_post("/phonemize", self.handle_phonemize)
        return app

    async def handle_health(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "state": self.phase.value, "pid": os.getpid(), "engine": self.args.engine,
            "requests_served": self.served, "requests_failed": self.failed, "busy": self.busy,
            "uptime_s": round(time.monotonic() - self.started, 3), "load_s": self.load_s, "warmup_s": self.warmup_s,
        }
        if self.engine is not None:
            info = self.engine.info()
            body.update(model_version=info.model_version, sample_rate=info.sample_rate, voices=list(info.voices))
        return web.json_response(body, status=200 if self.phase is WorkerPhase.READY else 503)

    async def _accept(self, request: web.Request, parse: Callable[[Any], T]) -> T | web.Response:
        """The request's JSON body through ``parse`` (validated once, where it enters this process), or the error
        answer: 503 until READY, 413, 400 naming the bad field."""
        if self.phase is not WorkerPhase.READY:
            return json_error(503, f"worker is {self.phase.value}", retryable=True)
        try:
            return parse(await request.json())
        except web.HTTPRequestEntityTooLarge:
            return json_error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return json_error(400, "request body must be JSON")
        except InvalidRequest as exc:
            return json_error(400, str(exc), field=exc.field)

    async def handle_phonemize(self, request: web.Request) -> web.Response:
        """``{"text"}`` -> the phonemizer view (``tts_vocab.FrontendView.to_wire``); runs on the inference thread,
        after any synthesis in progress, because the frontend belongs to the engine."""
        wanted = await self._accept(request, PhonemizeRequest.from_wire)
        if isinstance(wanted, web.Response):
            return wanted
        async with self._lock:
            try:
                loop = asyncio.get_running_loop()
                view = await loop.run_in_executor(self._executor, self.engine.phonemize, wanted.text)
            except InvalidRequest as exc:
                return json_error(400, str(exc), field=exc.field)
            except Exception as exc:  # a frontend bug: answer in JSON and keep serving
                log.exception("phonemize raised unexpectedly")
                return json_error(500, f"phonemize failed unexpectedly: {type(exc).__name__}", retryable=True)
        return web.json_response(view.to_wire())

    async def handle_synthesize(self, request: web.Request) -> web.StreamResponse:
        job = await self._accept(request, SynthesisJob.from_wire)
        if isinstance(job, web.Response):
            return job
        async with self._lock:
            self.busy = True
            try:
                result = await asyncio.get_running_loop().run_in_executor(self._executor, self._synthesize, job)
            except InvalidRequest as exc:
                return json_error(400, str(exc), field=exc.field)
            except EngineFailure as exc:
                self.failed += 1
                log.warning("synthesis failed: %s", exc)
                return json_error(500, str(exc), retryable=True)
            except Exception as exc:  # an engine bug: answer in JSON, count it, keep serving
                self.failed += 1
                log.exception("synthesis raised unexpectedly")
                return json_error(500, f"synthesis failed unexpectedly: {type(exc).__name__}", retryable=True)
            finally:
                self.busy = False
        self.served += 1
        encoded, seconds, skipped, timings = result
        info = self.engine.info()
        reply = SynthesisReply(encoded.sample_rate, encoded.duration_s, seconds, info.id, info.model_version,
                               os.getpid(), *SynthesisReply.code_points(skipped), timings=timings)
        trailer = reply.to_wire()
        response = web.StreamResponse(headers=reply.to_headers())
        response.content_type = encoded.content_type
        response.content_length = len(encoded.data) + len(trailer)
        await response.prepare(request)
        await response.write(encoded.data)
        await response.write(trailer)
        await response.write_eof()
        # The reply's buffers were freed only now, after the job's own release: without this a worker kept the
        # last reply's size resident until its next job (measured: +27 MiB USS after a 1,000-character text).
        del encoded, result
        # On the inference thread, not the event loop: malloc_trim walks the heap, and probes must not wait on it;
        # the next job queues behind it on that thread anyway.
        await asyncio.get_running_loop().run_in_executor(self._executor, release_free_memory)
        return response

    def _synthesize(self, job: SynthesisJob) -> tuple[Any, float, tuple[str, ...], Timings | None]:
        """On the inference thread: (the encoded audio, seconds taken, characters the voice could not read, the
        timings when the job asked for them)."""
        # Heavy (numpy, soundfile via inference.audio): imported once the socket is up, so /health answers from
        # the first moment; the first job finds them already loaded by the engine.
        from inference.audio import encode
        from inference.engines.base import SynthesisParams

        start = time.monotonic()
        self.engine.take_skipped()  # whatever a failed job before this one left behind
        params = SynthesisParams.build(job.emotion, job.speed, job.voice)
        timings: Timings | None = None
        rate = self.engine.info().sample_rate
        if job.ssml is not None:
            samples, timings = self._render_ssml(job.ssml, job, params)
        elif job.chunk:
            samples, timings = self._synthesize_chunk(job, params)
        elif job.timestamps:
            samples, timings = self.engine.synthesize_timed(job.text, params)
        else:
            samples = self.engine.synthesize(job.text, params)
        if job.timestamps and timings is None:  # a path that cannot time its audio: the client's 400, not a 502
            raise TextError("timestamps are not available for this request", "timestamps")
        # A gain only: the times stay valid. Each stream chunk is levelled on its own, so the chunks of one answer
        # and separate answers all sit at the same loudness.
        samples = self._level(samples, rate)
        encoded = encode(samples, rate, job.format, job.sample_rate)
        del samples
        # glibc keeps the freed heap (the audio, the engine's scratch arrays) resident for reuse, so a worker
        # would hold memory in proportion to its longest reply: give it back after every job (issue 11).
        release_free_memory()
        return encoded, time.monotonic() - start, self.engine.take_skipped(), timings

    def _render_ssml(self, script: Script, job: SynthesisJob, params: Any) -> tuple[Any, Timings | None]:
        """An SSML document (parsed by the daemon): rendered whole, breaks as exact silence, also as a stream's one
        chunk (then followed by the inter-chunk pause the front end asks for). Timings (when asked) cover the
        document's spoken text (``Script.spoken``), breaks included in the times."""
        import numpy as np  # heavy: see _synthesize

        from inference.audio import check_output, silence
        from inference.engines.script import render_script

        rate = self.engine.info().sample_rate
        timeline = Timeline(script.spoken, rate) if job.timestamps else None
        samples = render_script(self.engine, script, params, timeline)
        check_output(samples, rate)
        if job.pause_after_s:
            pause = silence(job.pause_after_s, rate)
            samples = np.concatenate([samples, pause])
            if timeline is not None:
                timeline.silence(len(pause))
        if timeline is None:
            return samples, None
        chars = timeline.timings()
        return samples, Timings(chars, words(chars))

    def _synthesize_chunk(self, job: SynthesisJob, params: Any) -> tuple[Any, Timings | None]:
        """One chunk of a stream: no re-splitting; the front end asks for the inter-chunk pause so that compressed
        chunks (mp3, opus) carry it inside their own frames. Timings (when asked) count from the chunk's start."""
        import numpy as np  # heavy: see _synthesize

        from inference.audio import check_output, silence

        rate = self.engine.info().sample_rate
        timeline = Timeline(job.text, rate)
        if job.timestamps:
            samples = self.engine.synthesize_chunk_timed(job.text, params, timeline)
        else:
            samples = self.engine.synthesize_chunk(job.text, params)
        check_output(samples, rate)
        if job.pause_after_s:
            pause = silence(job.pause_after_s, rate)
            samples = np.concatenate([samples, pause])
            timeline.silence(len(pause))
        if not job.timestamps:
            return samples, None
        chars = timeline.timings()
        return samples, Timings(chars, words(chars))

    def _level(self, samples: Any, rate: int) -> Any:
        """The engine's samples normalised to ``--loudness-lufs`` (each chunk of a stream on its own, so the chunks
        of one answer and separate answers all sit at the same level); as they are without it."""
        if self.args.loudness_lufs is None:
            return samples
        from inference.loudness import normalize_loudness  # pyloudnorm + scipy: loaded with the first job

        return normalize_loudness(samples, rate, self.args.loudness_lufs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m inference.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="fastspeech2-baker", help="engine id")
    parser.add_argument("--socket", required=True, help="Unix socket path to listen on")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for inference")
    parser.add_argument("--store-dir", default=None, help="model store directory")
    parser.add_argument("--options", default=None, help="engine options as JSON (emotion presets, pauses...)")
    parser.add_argument("--worker-id", default=None, help="id used in log lines")
    parser.add_argument("--loudness-lufs", type=float, default=None,
                        help="normalise every answer to this integrated loudness (LUFS) before encoding")
    parser.add_argument("--parent-pid", type=int, default=None, help="supervisor pid; exit if it is gone")
    return parser.parse_args(argv)


def save_coverage() -> None:
    """Save coverage.py's data when the test suite measures this process: ``os._exit`` skips the atexit hook where
    coverage.py would save it. Never imports coverage itself (only consults it when it is already running)."""
    coverage = sys.modules.get("coverage")
    current = coverage.Coverage.current() if coverage is not None else None
    if current is not None:
        current.stop()
        current.save()


def configure_logging(relayed: bool) -> None:
    """Log to stderr; ``relayed``: the supervisor reads our output, so no timestamp or pid of our own."""
    if relayed:
        # The supervisor relays our lines with its own timestamp and [worker=… pid=…] tag.
        fmt = "%(levelname)s %(name)s: %(message)s"
    else:
        fmt = f"%(asctime)s %(levelname)s %(name)s [pid={os.getpid()}] %(message)s"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=fmt)
    # WeTextProcessing announces every FST it loads at INFO; only its warnings matter to an operator.
    # tn/processor.py adds its own INFO StreamHandler and setLevel(INFO) at import unless the
    # "wetext" logger already has a handler, which undid the setLevel below; a NullHandler makes it keep ours.
    logging.getLogger("wetext").addHandler(logging.NullHandler())
    logging.getLogger("wetext").setLevel(logging.WARNING)


def main(argv: list[str] | None = None, preloaded: Engine | None = None) -> int:
    """Run a worker to its end; ``preloaded`` is the zygote's engine in a forked worker (None: a cold start)."""
    args = parse_args(argv)
    configure_logging(relayed=bool(args.worker_id))
    die_with_parent(args.parent_pid)
    use_one_heap()  # before any thread starts: see inference/memory.py
    try:
        return asyncio.run(WorkerServer(args, preloaded).run())
    except Exception:
        log.exception("worker crashed")
        return EXIT_RUNTIME_CRASH


def exit_process(code: int) -> NoReturn:
    # A TERM during model load leaves the loader thread running; exiting here does not wait for it.
    logging.shutdown()
    save_coverage()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_process(main())
