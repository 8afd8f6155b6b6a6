"""Send one synthesis job (or a phonemizer request) to a worker, retrying once on another worker if the first one
dies or breaks the connection mid-request (both are idempotent, so the client only sees success). Daemon process,
event loop.

A worker is reserved for exactly as long as it synthesises. The HTTP call runs in a task of its own that frees
the worker when the worker has answered; the caller only awaits it (shielded). When the caller goes away (client
disconnect, the request deadline, a cancelled stream chunk) the worker's inference thread cannot be stopped, so
the worker stays reserved until it is done instead of being handed a second job that would wait behind the first.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import aiohttp

from tts_ops.errors import TtsOpsError
from tts_vocab import SynthesisJob, SynthesisReply
from tts_vocab.errors import InvalidRequest
from tts_vocab.messages import FrontendView, PhonemizeRequest

log = logging.getLogger("tts_ops.dispatch")
RETRYABLE = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)

#: Worker calls in progress. The loop holds tasks weakly: one whose caller has gone must stay referenced until
#: the worker answers, or it could be collected mid-request and never free its worker.
_calls: set[asyncio.Task[Any]] = set()


class UpstreamWorker(Protocol):
    """What the client needs of a worker handle (``tts_ops.supervisor.handle.WorkerHandle``): who it is, which
    process of it, and the connection to its socket (None while it has none)."""

    @property
    def id(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def generation(self) -> int: ...

    @property
    def session(self) -> aiohttp.ClientSession | None: ...


W = TypeVar("W", bound=UpstreamWorker)
R = TypeVar("R")


class WorkerLender(Protocol[W]):
    """What the client needs of the balancer (``tts_ops.upstream.balancer.Balancer``): a worker reserved for one
    call, handed back with whether it answered."""

    async def acquire(self, avoid: Iterable[str] = (), dead: Iterable[tuple[str, int | None]] = (),
                      retry: bool = False) -> W: ...

    def release(self, worker: W, ok: bool) -> None: ...


class WorkerRejected(TtsOpsError):
    """The worker judged the input invalid (its 4xx); passed through to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpstreamFailed(TtsOpsError):
    """Both attempts failed on the worker side (HTTP 502 to the client)."""


@dataclass(frozen=True)
class Synthesis:
    """A worker's successful answer: the encoded audio and its metadata."""

    audio: bytes
    content_type: str
    worker_id: str
    reply: SynthesisReply
    attempts: int


@dataclass(frozen=True)
class _Reply(Generic[R]):
    status: int
    body: bytes
    content_type: str
    #: What a 200 answer says, parsed once (None for an error answer).
    meta: R | None


#: Parses a 200 answer's headers and body; InvalidRequest when the worker broke the protocol.
Parse = Callable[[Mapping[str, str], bytes], R]


def _synthesis_meta(headers: Mapping[str, str], body: bytes) -> tuple[SynthesisReply, bytes]:
    return SynthesisReply.from_wire(headers, body)


def _frontend_view(headers: Mapping[str, str], body: bytes) -> FrontendView:
    try:
        return FrontendView.from_wire(json.loads(body))
    except ValueError as exc:
        raise InvalidRequest(f"frontend view from a worker is not JSON: {exc}") from None


async def synthesize(balancer: WorkerLender[W], job: SynthesisJob, attempts: int = 2, *,
                     admitted: bool = False) -> Synthesis:
    """``admitted``: work that belongs to a request already admitted (a stream's later chunks): never shed for a
    full queue, and queued at the head, like a retry; a stream must not die half-way because of newer load."""
    (meta, audio), reply, worker_id, attempt = await _call(balancer, "/synthesize", job.to_wire(), _synthesis_meta,
                                                           attempts, admitted, served=True)
    return Synthesis(audio, reply.content_type, worker_id, meta, attempt)


async def phonemize(balancer: WorkerLender[W], text: str, attempts: int = 2) -> FrontendView:
    """The phonemizer view of ``text`` from a worker's engine (``POST /frontend``), with the same retry rules."""
    # Not a synthesis: it does not count as a served request (workers.max_requests recycles on those).
    view, _, _, _ = await _call(balancer, "/phonemize", PhonemizeRequest(text).to_wire(), _frontend_view, attempts,
                                False, served=False)
    return view


async def _call(balancer: WorkerLender[W], path: str, body: dict[str, Any], parse: Parse[R], attempts: int,
                admitted: bool, *, served: bool) -> tuple[R, _Reply[R], str, int]:
    """One worker call with one retry on another worker: (what the 200 answer says, the answer, the worker's id,
    the attempt)."""
    avoid: list[str] = []
    dead: list[tuple[str, int | None]] = []
    last_error = "no attempt made"
    for attempt in range(1, attempts + 1):
        worker = await balancer.acquire(avoid, dead, retry=admitted or attempt > 1)
        pid, generation = worker.pid, worker.generation
        try:
            # The worker is released by the call's done callback, which runs before this await resumes (it was
            # registered first), so a retry below never sees its own failed worker still reserved.
            reply = await asyncio.shield(_start_call(balancer, worker, path, body, parse, served))
        except RETRYABLE as exc:
            last_error = f"worker {worker.id} connection failed: {exc or type(exc).__name__}"
            dead.append((worker.id, generation))
        else:
            if reply.status == 200 and reply.meta is not None:
                return reply.meta, reply, worker.id, attempt
            message = _error_message(reply.body, reply.status)
            if 400 <= reply.status < 500 and reply.status != 429:
                raise WorkerRejected(reply.status, message)
            last_error = f"worker {worker.id} answered {reply.status}: {message}"
            avoid.append(worker.id)
        log.warning("[worker=%s pid=%s] attempt %d failed (%s)%s", worker.id, pid, attempt, last_error,
                    "; retrying on another worker" if attempt < attempts else "")
    raise UpstreamFailed(last_error)


def _start_call(balancer: WorkerLender[W], worker: W, path: str, body: dict[str, Any],
                parse: Parse[R], served: bool) -> asyncio.Task[_Reply[R]]:
    task = asyncio.create_task(_post(worker.session, path, body, parse), name=f"{path.strip('/')}-{worker.id}")
    _calls.add(task)
    task.add_done_callback(functools.partial(_call_done, balancer, worker, served))
    return task


async def _post(session: aiohttp.ClientSession | None, path: str, payload: dict[str, Any],
                parse: Parse[R]) -> _Reply[R]:
    if session is None:
        raise aiohttp.ClientConnectionError("worker has no connection")
    try:
        return await _exchange(session, path, payload, parse)
    except aiohttp.ClientResponseError as exc:
        # An answer aiohttp cannot read (e.g. a header over its 8 KiB limit): the worker broke the protocol, so
        # this is a worker failure (502, retried elsewhere), never the client's 500.
        return _Reply(502, json.dumps({"error": f"unreadable worker answer: {exc.message}"}).encode(), "", None)


async def _exchange(session: aiohttp.ClientSession, path: str, payload: dict[str, Any],
                    parse: Parse[R]) -> _Reply[R]:
    async with session.post(f"http://worker{path}", json=payload) as resp:
        body = await resp.read()
        if resp.status != 200:
            return _Reply(resp.status, body, resp.content_type, None)
        try:
            meta = parse(resp.headers, body)
        except InvalidRequest as exc:  # a worker breaking the protocol: a worker failure, retried elsewhere
            return _Reply(502, json.dumps({"error": str(exc)}).encode(), resp.content_type, None)
        return _Reply(resp.status, body, resp.content_type, meta)


def _call_done(balancer: WorkerLender[W], worker: W, served: bool, task: asyncio.Task[Any]) -> None:
    """Frees the worker; ``served``: a successful call counts as a request the worker served."""
    _calls.discard(task)
    ok = False
    if not task.cancelled():
        # Retrieved here because a caller that has gone never will (no "exception was never retrieved" noise).
        error = task.exception()
        ok = error is None and task.result().status == 200
    balancer.release(worker, ok and served)


def _error_message(body: bytes, status: int) -> str:
    try:
        return str(json.loads(body).get("error", body[:200].decode("utf-8", "replace")))
    except (ValueError, AttributeError):
        return body[:200].decode("utf-8", "replace") or f"HTTP {status}"
