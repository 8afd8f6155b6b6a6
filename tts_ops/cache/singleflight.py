"""In-process single flight: concurrent requests for the same cache key share one factory call (one synthesis).

Runs in the daemon process on its event loop; no locks are needed because everything happens on that one loop.
The factory runs in its own task, not in the first caller's, so the callers ("waiters") are interchangeable:

* every waiter awaits a shielded future, so a waiter cancelled because its HTTP client went away leaves the
  synthesis running for the others; only when *all* waiters are gone is the factory task cancelled (nobody
  wants the audio any more, and a worker slot is freed);
* an exception from the factory is delivered to every waiter, and the key is released at once so the next
  request retries instead of inheriting the failure;
* after a success the optional ``after`` step (the cache store) runs while the key is still registered:
  requests arriving during the store get the finished result ("late") instead of starting a second synthesis.

``StreamFlights`` is the same idea for streamed answers, where waiting for the whole result would lose the early
first byte: one production task emits items (the bytes to send) into a shared log, and every reader, the one that
started it included, replays what was produced so far and then follows live. Readers are interchangeable in the
same way: one that leaves (client gone) does not stop the production while another still reads, the last one
leaving cancels it, and an error reaches every reader after the items produced before it.

Scope is one daemon process: two daemons sharing a Redis may still synthesize the same text twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from tts_ops.errors import TtsOpsError

__all__ = ["SingleFlight", "SharedCallCancelled", "Role", "StreamFlights", "StreamReader"]

T = TypeVar("T")
Item = TypeVar("Item")
Role = Literal["leader", "follower", "late"]
log = logging.getLogger("tts_ops.cache")


class SharedCallCancelled(TtsOpsError):
    """The shared factory call was cancelled from inside (not by its waiters leaving)."""


@dataclass(eq=False)
class _Flight:
    result: asyncio.Future
    waiters: int = 0
    abandoned: bool = False
    claimed: bool = False
    task: asyncio.Task | None = field(default=None, repr=False)


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def __contains__(self, key: str) -> bool:
        return key in self._flights

    async def run(self, key: str, factory: Callable[[], Awaitable[T]],
                  after: Callable[[T], Awaitable[Any]] | None = None) -> tuple[T, Role]:
        """The factory's result for ``key`` and how this caller got it: "leader" for the first caller to collect
        the result of a call (normally the one that started it; another waiter if that one left), "follower" for
        the others that waited for it, "late" for one that joined after it finished, while its result was being
        stored. Exactly one caller per successful call is its leader (none if every waiter left)."""
        flight = self._flights.get(key)
        if flight is None:
            role: Role = "leader"  # provisional: settled when the result is collected
            flight = self._flights[key] = _Flight(asyncio.get_running_loop().create_future())
            flight.task = asyncio.create_task(self._lead(key, flight, factory, after), name=f"cache-flight:{key}")
        else:
            role = "late" if flight.result.done() else "follower"
        flight.waiters += 1
        try:
            value = await asyncio.shield(flight.result)
            if role != "late":
                # The first waiter to collect the result is its leader, the one that accounts for the work: the
                # request that started the call may have gone meanwhile.
                role = "follower" if flight.claimed else "leader"
                flight.claimed = True
            return value, role
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.result.done():
                self._abandon(key, flight)

    def _abandon(self, key: str, flight: _Flight) -> None:
        # Unregister first: a request arriving right after must start a fresh call, not join a dying one.
        flight.abandoned = True
        if self._flights.get(key) is flight:
            del self._flights[key]
        if flight.task is not None:
            flight.task.cancel()

    async def _lead(self, key: str, flight: _Flight, factory: Callable[[], Awaitable[T]],
                    after: Callable[[T], Awaitable[Any]] | None) -> None:
        try:
            try:
                value = await factory()
            except asyncio.CancelledError:
                if flight.abandoned:
                    flight.result.cancel()
                    raise
                # Cancelled by something else (e.g. the factory's own awaitable): waiters were not cancelled,
                # so they get an error instead of a CancelledError they would mistake for their own.
                self._fail(flight, SharedCallCancelled("the shared synthesis call was cancelled"))
                return
            except BaseException as exc:
                self._fail(flight, exc)
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt/SystemExit: waiters are released above, the loop still sees it
                return
            flight.result.set_result(value)
            if after is not None:
                try:
                    await after(value)
                except Exception:  # the waiters already have their result
                    log.exception("cache: storing a shared result failed")
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]

    @staticmethod
    def _fail(flight: _Flight, exc: BaseException) -> None:
        if not flight.result.done():
            flight.result.set_exception(exc)
            # Marks the exception retrieved: if every waiter left meanwhile, asyncio must not log it as lost.
            flight.result.exception()


# --- streams: one production, many readers that each replay then follow it --------------------------------------


@dataclass(eq=False)
class _Production:
    items: list = field(default_factory=list)
    finished: bool = False
    result: Any = None
    error: BaseException | None = None
    readers: int = 0
    abandoned: bool = False
    claimed: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = field(default=None, repr=False)

    def emit(self, item: Any) -> None:
        self.items.append(item)
        self._wake()

    def end(self, result: Any = None, error: BaseException | None = None) -> None:
        if not self.finished:
            self.finished, self.result, self.error = True, result, error
            self._wake()

    def _wake(self) -> None:
        # A fresh event per change: readers that saw the old one wake, later readers wait for the next change.
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class StreamReader(Generic[Item, T]):
    """One reader of a shared production: ``async with`` it, ``async for`` the items (the production's error is
    raised after the items produced before it), then ``result``. Leaving is what lets an abandoned production be
    cancelled, so always use it as a context manager."""

    def __init__(self, flights: StreamFlights[Item, T], key: str, production: _Production, role: Role) -> None:
        self._flights, self._key, self._production = flights, key, production
        self.role = role
        self._position = 0
        self._left = False
        production.readers += 1

    async def __aenter__(self) -> StreamReader[Item, T]:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.leave()

    def __aiter__(self) -> StreamReader[Item, T]:
        return self

    async def __anext__(self) -> Item:
        production = self._production
        while True:
            if self._position < len(production.items):
                self._position += 1
                return production.items[self._position - 1]
            if production.finished:
                if production.error is not None:
                    raise production.error
                raise StopAsyncIteration
            await production.changed.wait()

    @property
    def result(self) -> T:
        """The production's result, once the items are exhausted without an error."""
        return self._production.result

    def claim(self) -> bool:
        """True for the first reader to ask: the one that accounts for the work done (metrics, logs)."""
        claimed, self._production.claimed = self._production.claimed, True
        return not claimed

    def leave(self) -> None:
        if self._left:
            return
        self._left = True
        production = self._production
        production.readers -= 1
        if production.readers == 0 and not production.finished:
            self._flights._abandon(self._key, production)


class StreamFlights(Generic[Item, T]):
    """Registry of the streamed productions in progress, by key."""

    def __init__(self) -> None:
        self._productions: dict[str, _Production] = {}

    def __len__(self) -> int:
        return len(self._productions)

    def __contains__(self, key: str) -> bool:
        return key in self._productions

    def join(self, key: str, produce: Callable[[Callable[[Item], None]], Awaitable[T]],
             after: Callable[[T], Awaitable[Any]] | None = None) -> StreamReader[Item, T]:
        """A reader of the production for ``key``: the one in progress ("follower", or "late" once it finished
        and its result is being stored by ``after``), or a new one ("leader") running ``produce(emit)`` in its own
        task, so the readers' cancellations do not reach it."""
        production = self._productions.get(key)
        if production is None:
            production = self._productions[key] = _Production()
            production.task = asyncio.create_task(self._produce(key, production, produce, after),
                                                  name=f"stream-flight:{key}")
            return StreamReader(self, key, production, "leader")
        return StreamReader(self, key, production, "late" if production.finished else "follower")

    def _abandon(self, key: str, production: _Production) -> None:
        # Unregistered first: a request arriving right after starts a fresh production, not a dying one.
        production.abandoned = True
        if self._productions.get(key) is production:
            del self._productions[key]
        if production.task is not None:
            production.task.cancel()

    async def _produce(self, key: str, production: _Production,
                       produce: Callable[[Callable[[Item], None]], Awaitable[T]],
                       after: Callable[[T], Awaitable[Any]] | None) -> None:
        try:
            try:
                result = await produce(production.emit)
            except asyncio.CancelledError:
                if production.abandoned:
                    raise
                production.end(error=SharedCallCancelled("the shared synthesis stream was cancelled"))
                return
            except BaseException as exc:
                production.end(error=exc)
                if not isinstance(exc, Exception):
                    raise
                return
            production.end(result)
            if after is not None:
                try:
                    await after(result)
                except Exception:  # the readers already have their result
                    log.exception("cache: storing a shared stream result failed")
        finally:
            if self._productions.get(key) is production:
                del self._productions[key]
