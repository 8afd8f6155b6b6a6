"""Bounded worker memory (issue 11): a real worker process does not keep growing with the longest input it saw.

LiteRT sized its buffers to every new largest input and kept them, so a worker's memory used to climb with each
longer mel. Here one worker gets twenty long texts, each spoken slower than the one before (so each mel is longer
than any before); its unique memory (USS) after the twenty must stay within a margin of what it held after two.
"""

from __future__ import annotations

import psutil
import pytest

from tests.inference.test_worker import PARAGRAPH, WorkerProcess, ready_worker

# USS may still move a little (Python's heap, the acoustic model's buffers below their bound); the unbounded growth
# this guards against was ~0.7 MiB per frame the longest mel gained, ~500 MiB over these texts.
MARGIN_MIB = 40
MIB = 2**20


def growing_jobs(count: int) -> list[dict]:
    """Texts of one model-sized chunk (60 characters, ~120 phoneme ids), slower every time, so every job makes the
    longest mel so far (~600 frames at speed 1.0, ~1,300 at 0.5)."""
    text = (PARAGRAPH.replace("。", "，") * 2)[:59] + "。"
    return [{"text": text, "speed": round(1.0 - 0.5 * index / (count - 1), 3)} for index in range(count)]


@pytest.fixture
def worker(model_store_dir):
    """A fresh worker: it has seen nothing but its warm-up texts."""
    with ready_worker(model_store_dir) as proc:
        yield proc


def test_worker_memory_after_twenty_growing_texts_stays_within_a_margin_of_after_two(worker: WorkerProcess):
    process = psutil.Process(worker.proc.pid)
    durations = []
    uss = {}
    for index, job in enumerate(growing_jobs(20), start=1):
        reply = worker.synthesize(job)
        assert reply.status == 200, reply.body[:300]
        durations.append(float(reply.headers["x-audio-duration"]))
        if index in (2, 20):
            uss[index] = process.memory_full_info().uss / MIB
    # The jobs did grow (else the bound would be tested on nothing): the last audio is ~twice the first.
    assert durations == sorted(durations) and durations[-1] > 1.7 * durations[0], durations
    assert uss[20] <= uss[2] + MARGIN_MIB, f"USS {uss[2]:.0f} MiB after 2 texts, {uss[20]:.0f} MiB after 20"
