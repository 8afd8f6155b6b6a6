"""Hung detection in ``WorkerHandle.serve`` on a fake clock: probes keep a fixed schedule whatever each one takes, and
the hung verdict comes by interval x threshold + timeout after the last good answer. No process, no real time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tts_ops.supervisor import WorkerHandle, WorkerState
from tts_ops.supervisor.spec import WorkerSpec


class FakeProc:
    pid = 4242

    def __init__(self) -> None:
        self.returncode: int | None = None
        self._done = asyncio.Event()

    async def wait(self) -> int | None:
        await self._done.wait()
        return self.returncode

    def exit(self, code: int) -> None:
        self.returncode = code
        self._done.set()


class Scenario:
    """A READY worker whose probes answer from ``answers`` (True/False), each taking ``ok_s`` or the timeout.
    Records when each probe was sent and when/why the worker was terminated. Once the answers run out the
    process exits by itself."""

    def __init__(self, answers: list[bool], interval: float = 2.0, timeout: float = 1.0, threshold: int = 3,
                 ok_s: float = 0.01, fail_s: float | None = None) -> None:
        spec = WorkerSpec(engine="fake", runtime_dir=Path("/nonexistent"), probe_interval_s=interval,
                          probe_timeout_s=timeout, failure_threshold=threshold)
        self.now = 0.0
        self.sent: list[float] = []
        self.verdict: tuple[float, str] | None = None
        self.at_once = False
        self.answers = list(answers)
        self.worker = worker = WorkerHandle("w1", spec, lambda w: None)
        worker.state = WorkerState.READY
        worker.proc = self.proc = FakeProc()
        worker.clock = lambda: self.now
        fail_s = timeout if fail_s is None else fail_s

        async def sleep_until(exited, when: float) -> None:
            self.now = max(self.now, when)
            await asyncio.sleep(0)

        async def probe(quiet: bool = False) -> bool:
            if not self.answers:
                self.proc.exit(0)
                return True
            self.sent.append(self.now)
            ok = self.answers.pop(0)
            self.now += ok_s if ok else fail_s
            worker.probe_failures = 0 if ok else worker.probe_failures + 1
            return ok

        async def terminate(reason: str, *, at_once: bool = False) -> None:
            self.verdict, self.at_once = (self.now, reason), at_once
            self.proc.exit(-9)

        patch = pytest.MonkeyPatch()  # never undone: the handle lives only as long as the scenario
        patch.setattr(worker, "_sleep_until", sleep_until)
        patch.setattr(worker, "probe", probe)
        patch.setattr(worker, "terminate", terminate)

    async def run(self) -> Scenario:
        await asyncio.wait_for(self.worker.serve(), 5)
        return self

    @property
    def hung(self) -> tuple[float, str]:
        """When and why the worker was terminated, in a scenario that must end in that verdict."""
        assert self.verdict is not None, "the worker was never found hung"
        return self.verdict


async def test_stopped_worker_is_hung_after_interval_x_threshold_plus_timeout():
    """The issue's numbers: interval 2 s, timeout 1 s, threshold 3. Sleeping the interval *after* each probe
    would send at 2, 5, 8 and decide at 9 s; the fixed schedule sends at 2, 4, 6 and decides at 7 s."""
    s = await Scenario([False] * 10).run()
    assert s.sent == [2, 4, 6]
    when, reason = s.hung
    assert when == 2 * 3 + 1
    assert reason == "hung: 3 health probes failed, no answer for 7.0s"
    assert s.at_once  # KILL without the TERM grace: a stopped process ignores TERM


async def test_deadline_counts_from_the_last_good_probe():
    s = await Scenario([True, True] + [False] * 10).run()
    assert s.sent == [2, 4, 6, 8, 10]
    assert s.hung[0] == 4 + 2 * 3 + 1 and "3 health probes failed" in s.hung[1]


async def test_failures_broken_by_a_good_answer_are_not_hung():
    s = await Scenario([False, False, True, False, False, True, False, False, True]).run()
    assert s.verdict is None
    assert s.sent == [2 * k for k in range(1, 10)]  # on schedule although every failure took the full timeout
    assert s.worker.probe_failures == 0


async def test_threshold_one_decides_on_the_first_failure():
    s = await Scenario([True, False], threshold=1).run()
    assert s.hung[0] == 4 + 1 and s.sent == [2, 4]


async def test_overrunning_probe_skips_missed_slots_and_keeps_the_deadline():
    # A probe longer than the interval (only possible with a spec built by hand: the config forbids it).
    s = await Scenario([False] * 10, interval=1.0, timeout=1.5, threshold=3).run()
    assert s.sent == [1, 3]  # slot 2 was covered by the first probe: skipped, not fired late or back to back
    assert s.hung[0] == 4.5 <= 1.0 * 3 + 1.5


@pytest.mark.parametrize("answers", [[False] * 5, [True, False, False, False]])
async def test_fast_failures_need_the_full_threshold(answers):
    # Refused connections fail at once: the count, not the timeout, decides.
    s = await Scenario(answers, fail_s=0.001).run()
    good = answers.count(True)
    assert s.sent == [2 * k for k in range(1, good + 4)]
    assert s.hung[0] == pytest.approx(2 * (good + 3) + 0.001)
