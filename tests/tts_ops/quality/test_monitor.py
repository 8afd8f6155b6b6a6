"""The quality monitor and its supervised scorer (tts_ops.quality) with a stand-in scorer process that speaks the
real protocol without torch: sampling, the bounded queue, what a score does, and the scorer's restarts and FAILED
state. The real scorer runs in tests/e2e/test_quality_e2e.py."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from tts_ops.config.schema import QualityConfig
from tts_ops.quality import QualityMonitor, ScorerSpec
from tts_vocab import SynthesisJob


class Sink:
    def __init__(self) -> None:
        self.scores: list[tuple[str, str, float]] = []
        self.dropped: list[str] = []
        self.low: list[tuple[str, str]] = []

    def observe_mos(self, engine: str, emotion: str, mos: float) -> None:
        self.scores.append((engine, emotion, mos))

    def mos_sample_dropped(self, reason: str) -> None:
        self.dropped.append(reason)

    def mos_low_quality(self, engine: str, emotion: str) -> None:
        self.low.append((engine, emotion))


def monitor(mode: str = "ok", *, mos: float = 3.5, sink: Sink | None = None, **quality) -> QualityMonitor:
    config = QualityConfig(**{"sample_rate": 1.0, **quality})
    env = {**os.environ, "STANDIN_SCORER": mode, "STANDIN_MOS": str(mos)}
    spec = ScorerSpec(module="tests.fakes.standin_scorer", env=env, score_timeout_s=1.0, kill_grace_s=1.0,
                      policy={"backoff_initial_s": 0.05, "failed_cooldown_s": 60, "boot_failure_limit": 1})
    return QualityMonitor(config, spec, sink=sink)


def offer(m: QualityMonitor, request_id: str, emotion: str = "neutral") -> bool:
    job = SynthesisJob(text="你好。", emotion=emotion)
    return m.offer(job, b"\0\0" * 8000, 16000, request_id=request_id, engine="fastspeech2-baker")


async def until(predicate, timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def test_a_full_queue_drops_and_counts_the_sample():
    sink = Sink()
    m = monitor(sink=sink, queue_size=2)  # not started: nothing takes samples off the queue
    assert [offer(m, f"r{i}") for i in range(5)] == [True, True, False, False, False]
    assert m.status()["dropped"]["queue_full"] == 3 and m.status()["queue"] == 2
    assert sink.dropped == ["queue_full"] * 3


async def test_sampling_off_starts_nothing_and_takes_nothing():
    m = monitor(sample_rate=0.0)
    m.start()
    assert not offer(m, "r1") and m.scorer is None and m.status()["scorer"] == {"state": "off"}
    await m.stop()


async def test_every_sample_is_scored_logged_and_counted(caplog):
    sink = Sink()
    m = monitor(sink=sink, mos=2.0, min_mos=2.5)
    m.start()
    try:
        await until(lambda: m.status()["scorer"]["state"] == "ready")
        with caplog.at_level(logging.INFO):
            assert offer(m, "a", "sad") and offer(m, "b")
            await until(lambda: m.scored == 2)
    finally:
        await m.stop()
    assert sink.scores == [("fastspeech2-baker", "sad", 2.0), ("fastspeech2-baker", "neutral", 2.0)]
    assert sink.low == [("fastspeech2-baker", "sad"), ("fastspeech2-baker", "neutral")]
    lines = [r.synthesis for r in caplog.records if r.name == "tts_ops.synthesis"]
    assert [(x["request_id"], x["event"], x["mos"]) for x in lines] == [("a", "mos", 2.0), ("b", "mos", 2.0)]
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and "low quality" in r.getMessage()]
    assert len(warnings) == 2 and "request a" in warnings[0] and lines[0]["text_sha256"] in warnings[0]
    assert m.status()["recent_mean"] == {"neutral": 2.0, "sad": 2.0} and m.status()["scorer"]["state"] == "stopped"


async def test_above_min_mos_is_no_alert():
    sink = Sink()
    m = monitor(sink=sink, mos=4.0, min_mos=2.5)
    m.start()
    try:
        await until(lambda: m.status()["scorer"]["state"] == "ready")
        offer(m, "a")
        await until(lambda: m.scored == 1)
    finally:
        await m.stop()
    assert sink.low == [] and m.low_quality == 0  # control for the test above


@pytest.mark.parametrize(("mode", "reason"), [("hang", "timeout"), ("crash", "scorer_exited")])
async def test_a_hung_or_crashed_scorer_loses_the_sample_and_is_restarted(mode, reason):
    m = monitor(mode)
    m.start()
    try:
        await until(lambda: m.status()["scorer"]["state"] == "ready")
        offer(m, "lost")
        await until(lambda: m.dropped[reason] == 1)
        await until(lambda: m.status()["scorer"]["restarts"] == 1 and m.status()["scorer"]["state"] == "ready")
    finally:
        await m.stop()
    assert m.scored == 0


async def test_a_scorer_that_cannot_boot_is_failed_with_its_error_and_samples_are_dropped():
    m = monitor("boot-fail")
    m.start()
    try:
        await until(lambda: m.status()["scorer"]["state"] == "failed")
        scorer = m.status()["scorer"]
        assert scorer["restarts"] == 0 and "torch is not installed (stand-in)" in scorer["reason"]
        assert not offer(m, "r1") and m.dropped["scorer_failed"] == 1
    finally:
        await m.stop()
    assert m.status()["scorer"]["state"] == "stopped"
