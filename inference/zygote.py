"""The zygote: a pre-loaded parent that forks inference workers on request (its own process,
``python -m inference.zygote``, started and supervised by the daemon: ``tts_ops.supervisor.zygote``).

Boot: import what a worker runs, preload the engine (model files located, checked and read, frontend tables and
FSTs built: ``Engine.preload``), ``gc.freeze()``, then tell the daemon it is ready (``tts_vocab.zygote``). From
then on it forks one worker per request. A forked worker shares all of that copy-on-write and skips the imports
and the loading; it creates its LiteRT interpreters and its threads (event loop, inference executor) only after
the fork, and then runs exactly the code of a cold worker (``inference.worker.main``). The zygote itself stays
single-threaded (one BLAS thread, no event loop), so a fork never copies a lock that another thread held.

Double fork, so that the daemon is the worker's parent: the zygote forks an intermediate process that forks the
worker and exits at once. The daemon is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so the orphaned worker
is reparented to the daemon, not to init. The daemon then waits for it like any child (a pidfd and ``waitid``:
the exact exit status), signals it knowing the pid cannot be reused before it has reaped it, and the worker's
PDEATHSIG follows the daemon. A zygote crash leaves running workers alone. The worker sets PDEATHSIG only once
it has been reparented: set earlier, the intermediate's exit would fire it.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from inference import worker
from inference.errors import BootError
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE, EXIT_OK, EXIT_RUNTIME_CRASH
from tts_vocab.zygote import MAX_PACKET_BYTES, ForkReply, ForkRequest, ZygoteReady

if TYPE_CHECKING:
    from inference.engines.base import Engine

log = logging.getLogger("tts_ops.zygote")
# How long a forked worker waits to be reparented to the daemon after the intermediate process exits (normally
# well under a millisecond); past it the daemon is taken for gone and the worker exits as an orphan would.
REPARENT_TIMEOUT_S = 2.0
REPARENT_POLL_S = 0.0005


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m inference.zygote", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="fastspeech2-baker", help="engine id to preload")
    parser.add_argument("--control-fd", type=int, required=True, help="inherited control socket (SOCK_SEQPACKET)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of the workers' engine")
    parser.add_argument("--store-dir", default=None, help="model store directory")
    parser.add_argument("--options", default=None, help="engine options as JSON")
    parser.add_argument("--parent-pid", type=int, default=None, help="supervisor pid; exit if it is gone")
    return parser.parse_args(argv)


def preload(args: argparse.Namespace) -> Engine:
    """The engine with everything but its runtime sessions loaded, and the modules a worker imports later."""
    # Heavy (numpy, LiteRT's module, libsndfile): imported here so that every forked worker finds them loaded.
    import soundfile  # noqa: F401
    from ai_edge_litert import interpreter  # noqa: F401  # the module only: no interpreter before the fork

    import inference.audio
    import inference.loudness  # noqa: F401  # pyloudnorm + scipy: ~0.7 s a worker's first answer would pay
    from inference.engines import create_engine

    options = json.loads(args.options) if args.options else {}
    store = Path(args.store_dir) if args.store_dir else None
    engine = create_engine(args.engine, store_dir=store, threads=args.threads, options=options)
    engine.preload()
    return engine


def serve(control: socket.socket, engine: Engine) -> int:
    """Fork a worker per request until the daemon closes its end of the control socket."""
    while True:
        packet, fds, _, _ = socket.recv_fds(control, MAX_PACKET_BYTES, 1)
        if not packet:
            log.info("control socket closed by the daemon: exiting")
            return EXIT_OK
        try:
            if len(fds) != 1:
                raise ValueError(f"a fork request carries one file descriptor, got {len(fds)}")
            request = ForkRequest.from_wire(packet)
            reply = ForkReply(fork_worker(request.argv, fds[0], control, engine))
        except (OSError, ValueError) as exc:
            log.error("fork request failed: %s", exc)
            reply = ForkReply(None, str(exc))
        finally:
            for fd in fds:
                os.close(fd)
        control.send(reply.to_wire())


def fork_worker(argv: tuple[str, ...], output_fd: int, control: socket.socket, engine: Engine) -> int:
    """Fork (twice) a worker running ``argv``; its pid once it has been reparented to the daemon."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # the intermediate: fork the worker, report its pid, exit so it is reparented
        code = 0
        try:
            os.close(read_end)
            pid = os.fork()
            if pid == 0:
                os.close(write_end)
                become_worker(argv, output_fd, control, engine)
            os.write(write_end, pid.to_bytes(4, "little"))
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_end)
    try:
        data = os.read(read_end, 4)
    finally:
        os.close(read_end)
        # Once the intermediate is reaped, the worker has been reparented: the daemon can wait for it.
        os.waitpid(middle, 0)
    if len(data) != 4:
        raise OSError("the intermediate process exited without forking a worker")
    return int.from_bytes(data, "little")


def become_worker(argv: tuple[str, ...], output_fd: int, control: socket.socket, engine: Engine) -> NoReturn:
    """In the forked worker: take a cold worker's process setup, then run its code on the preloaded engine."""
    code = EXIT_RUNTIME_CRASH
    try:
        control.close()
        close_copies_of(1)
        os.setsid()  # as start_new_session: a Ctrl-C in the operator's terminal reaches only the supervisor
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(null)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        wait_for_reparent(worker.parse_args(list(argv)).parent_pid)
        code = worker.main(list(argv), preloaded=engine)
    except BaseException:
        traceback.print_exc()
    worker.exit_process(code)


def close_copies_of(fd: int) -> None:
    """Close every other descriptor on the file ``fd`` is open on. The zygote's output pipe can sit on more fds than
    its stdio (uvloop spawns it with a socket pair and leaves copies open in the child); a worker that kept one
    would hold the pipe open after the zygote died, and the daemon would wait for its end forever."""
    try:
        target = os.fstat(fd)
        others = [int(name) for name in os.listdir("/proc/self/fd") if int(name) > 2]
    except OSError:
        return
    for other in others:
        try:
            same = os.path.samestat(os.fstat(other), target)
        except OSError:  # the fd listdir itself used, already closed
            continue
        if same:
            os.close(other)


def wait_for_reparent(daemon_pid: int | None) -> None:
    """Until the daemon is our parent (the intermediate has exited); ``worker.main`` then sets PDEATHSIG and exits
    if the parent is still not the daemon (no subreaper, or the daemon died meanwhile)."""
    deadline = time.monotonic() + REPARENT_TIMEOUT_S
    while daemon_pid is not None and os.getppid() != daemon_pid and time.monotonic() < deadline:
        time.sleep(REPARENT_POLL_S)


def thread_count() -> int:
    """OS threads of this process (a C library's threads included, which ``threading`` does not see)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    worker.configure_logging(relayed=True)
    worker.die_with_parent(args.parent_pid)
    control = socket.socket(fileno=args.control_fd)
    start = time.monotonic()
    try:
        engine = preload(args)
    except BootError as exc:
        log.error("boot failed: %s", exc)
        return EXIT_BOOT_FAILURE
    except Exception as exc:
        log.error("boot failed with an unexpected error", exc_info=exc)
        return EXIT_BOOT_FAILURE
    preload_s = time.monotonic() - start
    # Objects that exist now are never collected: the children's collections then leave their pages (and
    # reference counts in their GC headers) untouched, so the pages stay shared.
    gc.collect()
    gc.freeze()
    if thread_count() > 1:
        log.warning("%d threads before forking: only the forking thread survives in a worker", thread_count())
    control.send(ZygoteReady(os.getpid(), preload_s).to_wire())
    log.info("ready: %s preloaded in %.2fs; forking workers on request", args.engine, preload_s)
    return serve(control, engine)


if __name__ == "__main__":
    worker.exit_process(main())
