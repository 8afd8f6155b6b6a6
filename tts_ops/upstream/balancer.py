"""Least-outstanding-requests routing over READY workers with a bounded wait queue (daemon process, event loop).

Each worker synthesises one request at a time, so "least outstanding" means: an idle READY worker, preferring the
one that has served least. When none is idle a request waits in a FIFO queue of at most ``queue_limit`` entries;
past that it is shed at once with 503 + Retry-After instead of timing out later. A cancelled waiter (client gone,
deadline passed) leaves the queue and hands any wake-up it received to the next waiter.

A READY worker whose last health probe failed (``probe_failures`` > 0) is a suspect: likely stopped or wedged, and
a request sent to it would hang until the supervisor kills it. Suspects are skipped while any healthy READY
worker exists, even a busy one (waiting for it is cheaper than a likely hang); when every READY worker is a
suspect they are used all the same, so one lost probe on a loaded host cannot stop all service. A suspect whose
probe answers again is announced by the supervisor and wakes the queue.

A retry after a broken connection names the dead processes (``dead``: (id, generation)). It only waits while some
other process can serve it: a READY worker (busy is fine) or a STARTING one (ready within its boot). With none (one
worker, or every other one dead for that request) it fails at once with NoCapacity (503 + Retry-After) instead of
waiting for a restart that ``request_timeout_s`` would cut short (504). A queued retry is re-checked on every pool
change and woken to fail as soon as its last candidate leaves (BACKOFF, FAILED, RETIRED, removed). The check reads
state and generation only, never the worker id alone: a restarted process may keep its predecessor's id.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, Protocol, TypeVar

from tts_ops.errors import TtsOpsError
from tts_ops.supervisor import WorkerState

log = logging.getLogger("tts_ops.balancer")


class Overloaded(TtsOpsError):
    """The wait queue is full: shed load now (503 + Retry-After)."""


class NoCapacity(TtsOpsError):
    """No worker is ready and none can become ready (all FAILED, or shutting down)."""


#: States of a process that is serving, or will within its boot: worth a retry's wait.
CANDIDATE_STATES = frozenset({WorkerState.READY, WorkerState.STARTING})


class RoutedWorker(Protocol):
    """What the balancer reads of a worker (``tts_ops.supervisor.WorkerHandle``) and its request accounting."""

    @property
    def id(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def generation(self) -> int: ...

    @property
    def state(self) -> WorkerState: ...

    @property
    def session(self) -> object: ...  # None: no connection to the worker (yet, or any more)

    @property
    def process_alive(self) -> bool: ...

    @property
    def probe_failures(self) -> int: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def served(self) -> int: ...

    @property
    def served_at_start(self) -> int: ...

    def begin_request(self) -> None: ...

    def end_request(self, ok: bool) -> None: ...


W = TypeVar("W", bound=RoutedWorker)
W_co = TypeVar("W_co", bound=RoutedWorker, covariant=True)


class WorkerPool(Protocol[W_co]):
    """What the balancer needs of the supervisor (``tts_ops.supervisor.Supervisor``)."""

    @property
    def workers(self) -> Mapping[str, W_co]: ...

    def ready_workers(self) -> Sequence[W_co]: ...

    def can_become_ready(self) -> bool: ...

    def add_listener(self, listener: Callable[[W_co], None]) -> None: ...


class Balancer(Generic[W]):
    """Hands out the workers of one pool; ``W`` is the pool's worker type (``WorkerHandle`` in the daemon)."""

    def __init__(self, supervisor: WorkerPool[W], queue_limit: int) -> None:
        self.supervisor = supervisor
        self.queue_limit = queue_limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        #: Queued retries and the processes they must not use, re-checked on every change (see the docstring).
        self._retries: dict[asyncio.Future[None], frozenset[tuple[str, int | None]]] = {}
        self.closed = False
        supervisor.add_listener(self._on_change)

    def apply(self, queue_limit: int) -> None:
        """Take over a reloaded ``server.queue_limit``. Requests already queued keep their place even when the new
        limit is smaller; it only decides whether the next one is shed."""
        self.queue_limit = queue_limit

    @property
    def queue_depth(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return sum(w.in_flight for w in self.supervisor.workers.values())

    def _idle_workers(self, avoid: Iterable[str] = (),
                      dead: Iterable[tuple[str, int | None]] = ()) -> list[W]:
        avoid, dead = set(avoid), set(dead)
        usable = [w for w in self.supervisor.ready_workers()
                  if (w.id, w.generation) not in dead and w.session is not None and w.process_alive]
        healthy = [w for w in usable if not w.probe_failures]
        return [w for w in healthy or usable if w.in_flight == 0 and w.id not in avoid]

    def pick(self, avoid: Iterable[str] = (), dead: Iterable[tuple[str, int | None]] = ()) -> W | None:
        """The idle READY worker that served least, skipping suspects (see the module docstring). ``avoid`` (workers
        that just answered with an error) is a preference; ``dead`` ((id, generation) of worker processes whose
        connection broke) is never picked again: a restarted worker is a new generation, so a single-worker pool
        still recovers."""
        idle = self._idle_workers(avoid, dead) or self._idle_workers((), dead)
        if not idle:
            return None
        return min(idle, key=lambda w: (w.in_flight, w.served - w.served_at_start))

    def has_candidate(self, dead: Iterable[tuple[str, int | None]]) -> bool:
        """Whether a process outside ``dead`` is READY (busy or not) or STARTING, so a retry can be served."""
        dead = set(dead)
        return any(w.state in CANDIDATE_STATES and (w.id, w.generation) not in dead
                   for w in self.supervisor.workers.values())

    def idle_spare(self) -> int:
        """Idle READY workers nobody is queued for (0 while requests wait)."""
        return 0 if self.closed or self._waiters else len(self._idle_workers())

    def reserve(self) -> W | None:
        """An idle worker reserved at once when no request is queued, else None (never waits, never queues). For
        extra parallelism of an admitted request: it takes only a worker nobody waits for. The caller must
        ``release`` it (``ok=False`` when unused)."""
        if self.closed or self._waiters:
            return None
        worker = self.pick()
        if worker is not None:
            worker.begin_request()
        return worker

    async def acquire(self, avoid: Iterable[str] = (), dead: Iterable[tuple[str, int | None]] = (),
                      retry: bool = False) -> W:
        """A worker reserved for one request; the caller must ``release`` it. Cancellation-safe. ``retry`` is for
        work admitted already (a retry, a stream's later chunks): it is never shed for a full queue and goes to
        the head of the queue."""
        avoid, dead = tuple(avoid), tuple(dead)
        while True:
            if self.closed:
                raise NoCapacity("server is shutting down")
            # Also pick when waiters are queued but none has been woken: an idle worker that no
            # queued waiter is on its way to take is one they all refused (its process is in their ``dead``);
            # queueing behind them would wait for an event that may never come.
            if not self._waiters or retry or not any(w.done() and not w.cancelled() for w in self._waiters):
                worker = self.pick(avoid, dead)
                if worker is not None:
                    worker.begin_request()
                    return worker
            if not self.supervisor.can_become_ready():
                raise NoCapacity("no worker is available (all workers failed)")
            if dead and not self.has_candidate(dead):
                raise NoCapacity("no other worker is ready or starting to take the retry")
            if len(self._waiters) >= self.queue_limit and not retry:
                raise Overloaded(f"server is busy: {self.queue_limit} requests already queued")
            waiter = asyncio.get_running_loop().create_future()
            if retry:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            if dead:
                self._retries[waiter] = frozenset(dead)
            position = 0
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_next()
                raise
            finally:
                self._retries.pop(waiter, None)
                if waiter in self._waiters:
                    position = self._waiters.index(waiter)
                    self._waiters.remove(waiter)
            worker = self.pick(avoid, dead)
            if worker is not None:
                worker.begin_request()
                return worker
            # Woken for a worker we must not use (in ``dead``): hand the wake-up to the waiters
            # that were behind us, or it is lost and they stall beside an idle worker. Only those behind, so two
            # such waiters cannot wake each other forever.
            if self._idle_workers():
                self._wake_next(start=position)
            # Woken but the worker went elsewhere (or is one we must not use): wait again at the head.
            retry = True

    def release(self, worker: W, ok: bool) -> None:
        worker.end_request(ok)

    def _on_change(self, worker: W) -> None:
        if worker.state is WorkerState.READY and worker.in_flight == 0:
            self._wake_next()
        elif not self.supervisor.can_become_ready():
            # Everyone failed: waiting cannot succeed, let the queue fail fast.
            for waiter in list(self._waiters):
                if not waiter.done():
                    waiter.set_result(None)
        # Any change may take a retry's last candidate away. A retry woken here finds nothing to pick and fails
        # at the top of ``acquire``; only those with no candidate are woken, so the others keep their place.
        for waiter, dead in list(self._retries.items()):
            if not waiter.done() and not self.has_candidate(dead):
                waiter.set_result(None)

    def _wake_next(self, start: int = 0) -> None:
        for waiter in itertools.islice(self._waiters, start, None):
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Stop handing out workers; queued requests fail with NoCapacity."""
        self.closed = True
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)
