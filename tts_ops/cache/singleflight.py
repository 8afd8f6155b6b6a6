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

Scope is one daemon process: two daemons sharing a Redis may still synthesize the same text twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Generic, Literal, TypeVar

from tts_ops.errors import TtsOpsError

__all__ = ["SingleFlight", "SharedCallCancelled", "Role"]

T = TypeVar("T")
Role = Literal["leader", "follower", "late"]
log = logging.getLogger("tts_ops.cache")


class SharedCallCancelled(TtsOpsError):
    """The shared factory call was cancelled from inside (not by its waiters leaving)."""


@dataclass(eq=False)
class _Flight:
    result: asyncio.Future
    waiters: int = 0
    abandoned: bool = False
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
        """The factory's result for ``key`` and how this caller got it: ran it ("leader"), waited for a call
        already running ("follower"), or joined after it finished, while its result was being stored ("late")."""
        flight = self._flights.get(key)
        if flight is None:
            role: Role = "leader"
            flight = self._flights[key] = _Flight(asyncio.get_running_loop().create_future())
            flight.task = asyncio.create_task(self._lead(key, flight, factory, after), name=f"cache-flight:{key}")
        else:
            role = "late" if flight.result.done() else "follower"
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.result), role
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
                except Exception:  # noqa: BLE001 - the waiters already have their result
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
