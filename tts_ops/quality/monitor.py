"""Online quality sampling (daemon process, event loop): which finished syntheses are scored, the bounded queue in
front of the scorer process, and what a score does.

``offer`` is called by the synthesis service after an answer was recorded (cache hits and shared single-flight
answers are not syntheses and are never offered). It never waits: a sample is taken with probability
``quality.sample_rate`` and put on a queue of ``quality.queue_size``; when the queue is full, or the scorer is
FAILED, the sample is dropped and counted by reason. The scorer (``ScorerHandle``) takes samples one at a time.

A score arrives after the answer's ``synthesis.log`` line was written, so it is a follow-up line in the same file,
tied to it by ``request_id``: ``{"event": "mos", "request_id", "mos", "engine", "emotion", "text_sha256", ...}``.
It is also observed in the ``tts_ops_mos`` histogram (by engine and emotion), kept in a window of recent scores per
emotion for ``/admin/status``, and a score under ``quality.min_mos`` is a warning naming the request id and the
text hash, counted in ``tts_ops_mos_low_quality_total``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import statistics
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tts_ops.config.schema import QualityConfig
from tts_ops.logs.synthesis import log_quality
from tts_ops.quality.handle import ScorerHandle
from tts_ops.quality.spec import ScorerSpec
from tts_ops.quality.states import ScorerState
from tts_vocab import SynthesisJob
from tts_vocab.scoring import ScoreReply, ScoreRequest

log = logging.getLogger("tts_ops.quality")
# Scores per emotion behind the "recent mean" of /admin/status.
RECENT = 50
# Why a sample got no score (the ``reason`` label of tts_ops_mos_samples_dropped_total).
DROP_REASONS = ("queue_full", "scorer_failed", "scorer_exited", "timeout", "stopping")


class MosSink(Protocol):
    """Where scores and drops are counted for Prometheus (``tts_ops.observability.metrics.Metrics``)."""

    def observe_mos(self, engine: str, emotion: str, mos: float) -> None: ...
    def mos_sample_dropped(self, reason: str) -> None: ...
    def mos_low_quality(self, engine: str, emotion: str) -> None: ...


@dataclass(frozen=True)
class Sample:
    """One finished synthesis waiting to be scored, and what its score is reported with."""

    request_id: str
    engine: str
    emotion: str
    text_sha256: str
    audio: bytes
    format: str
    sample_rate: int

    def request(self) -> ScoreRequest:
        return ScoreRequest(self.request_id, self.audio, self.format, self.sample_rate)


class QualityMonitor:
    """The sampler and its scorer. Disabled (``sample_rate`` 0) it starts no process and takes no sample."""

    def __init__(self, config: QualityConfig, spec: ScorerSpec, *, sink: MosSink | None = None,
                 chance: Callable[[], float] = random.random) -> None:
        self.config = config
        self._sink = sink
        self._chance = chance
        self.queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=config.queue_size)
        self.scorer = ScorerHandle(spec, self.queue, self._on_reply, self._lost) if self.enabled else None
        self.offered = 0
        self.scored = 0
        self.unscorable = 0
        self.low_quality = 0
        self.dropped: Counter[str] = Counter()
        self.recent: dict[str, deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.config.sample_rate > 0

    def start(self) -> None:
        if self.scorer is not None:
            self.scorer.start()

    async def stop(self) -> None:
        if self.scorer is not None:
            await self.scorer.stop()
        while not self.queue.empty():
            self._lost(self.queue.get_nowait(), "stopping")

    def kill_now(self) -> None:
        if self.scorer is not None:
            self.scorer.kill_now()

    # -- sampling --------------------------------------------------------------------------------------------
    def offer(self, job: SynthesisJob, audio: bytes, sample_rate: int, *, request_id: str, engine: str) -> bool:
        """Maybe queue one finished synthesis for scoring (never waits); True if it was queued."""
        if self.scorer is None or self._chance() >= self.config.sample_rate:
            return False
        self.offered += 1
        text_sha256 = hashlib.sha256(job.text.encode("utf-8", "surrogatepass")).hexdigest()
        sample = Sample(request_id, engine, job.emotion, text_sha256, audio, job.format, sample_rate)
        if self.scorer.state is ScorerState.FAILED:
            self._lost(sample, "scorer_failed")
            return False
        try:
            self.queue.put_nowait(sample)
        except asyncio.QueueFull:
            self._lost(sample, "queue_full")
            return False
        return True

    # -- results ---------------------------------------------------------------------------------------------
    def _on_reply(self, sample: Sample, reply: ScoreReply) -> None:
        if reply.mos is None:
            # Audio the model cannot score (too short, silence): said once in the log, not a quality verdict.
            self.unscorable += 1
            log.info("request %s not scored: %s", sample.request_id, reply.error)
            return
        mos = round(reply.mos, 3)
        self.scored += 1
        self.recent.setdefault(sample.emotion, deque(maxlen=RECENT)).append(mos)
        low = self.config.min_mos is not None and mos < self.config.min_mos
        try:
            log_quality({"request_id": sample.request_id, "event": "mos", "mos": mos, "engine": sample.engine,
                         "emotion": sample.emotion, "text_sha256": sample.text_sha256,
                         "score_s": round(reply.score_s, 3), "low_quality": low})
            if self._sink is not None:
                self._sink.observe_mos(sample.engine, sample.emotion, mos)
                if low:
                    self._sink.mos_low_quality(sample.engine, sample.emotion)
        except Exception as exc:  # a side channel: never stops the scoring loop
            log.warning("could not record the MOS of request %s: %s", sample.request_id, exc)
        if low:
            self.low_quality += 1
            log.warning("low quality: request %s scored MOS %.2f (< quality.min_mos %.2f), emotion %s, "
                        "text_sha256 %s", sample.request_id, mos, self.config.min_mos, sample.emotion,
                        sample.text_sha256)

    def _lost(self, sample: Sample, reason: str) -> None:
        self.dropped[reason] += 1
        if self._sink is not None:
            self._sink.mos_sample_dropped(reason)
        log.debug("sample of request %s dropped: %s", sample.request_id, reason)

    # -- reporting -------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The ``quality`` part of /admin/status."""
        out: dict[str, Any] = {"enabled": self.enabled, "sample_rate": self.config.sample_rate,
                               "min_mos": self.config.min_mos}
        if self.scorer is None:
            return {**out, "scorer": {"state": "off"}}
        return {**out, "scorer": self.scorer.snapshot(), "queue": self.queue.qsize(),
                "queue_size": self.config.queue_size, "offered": self.offered, "scored": self.scored,
                "unscorable": self.unscorable, "low_quality": self.low_quality,
                "dropped": {reason: self.dropped[reason] for reason in DROP_REASONS},
                "recent_mean": {emotion: round(statistics.fmean(scores), 3)
                                for emotion, scores in sorted(self.recent.items()) if scores},
                "recent_count": {emotion: len(scores) for emotion, scores in sorted(self.recent.items())}}
