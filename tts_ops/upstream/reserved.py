"""A worker lender holding one worker reserved beforehand (daemon process, event loop): the first ``acquire``
hands that worker back without queueing; a retry acquires from the balancer as usual. Lets a request widen onto
workers idle at that moment (``Balancer.reserve``) through the ordinary upstream call, retries included."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic

from tts_ops.upstream.balancer import Balancer, W

__all__ = ["ReservedLender"]


class ReservedLender(Generic[W]):
    """``balancer`` with ``worker`` (already reserved by ``Balancer.reserve``) lent first. Call ``discard`` when
    done: it releases the reservation if no call ever took it (a chunk cancelled before it started)."""

    def __init__(self, balancer: Balancer[W], worker: W) -> None:
        self.balancer = balancer
        self._worker: W | None = worker

    async def acquire(self, avoid: Iterable[str] = (), dead: Iterable[tuple[str, int | None]] = (),
                      retry: bool = False) -> W:
        worker, self._worker = self._worker, None
        if worker is not None:
            return worker
        return await self.balancer.acquire(avoid, dead, retry=retry)

    def release(self, worker: W, ok: bool) -> None:
        self.balancer.release(worker, ok)

    def discard(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            self.balancer.release(worker, False)
