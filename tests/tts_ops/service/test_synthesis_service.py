"""The synthesis service without HTTP (real ``SynthesisService``, stand-in worker call): upstream failures become
the errors the http layer renders and are counted once each; ``apply`` makes the next request read the new
config; the counters read as the dict ``/admin/status`` shows."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.fakes.chunk_worker import ChunkWorker, make_service
from tts_ops.config import load_config
from tts_ops.service.errors import RequestError, ServiceError
from tts_ops.service.totals import Totals
from tts_ops.upstream.balancer import NoCapacity, Overloaded
from tts_ops.upstream.client import UpstreamFailed, WorkerRejected
from tts_vocab import SynthesisJob

JOB = SynthesisJob(text="你好，世界。", format="pcm")


def make_config(tmp_path, **server):
    return load_config(overrides={"paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
                                  "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")},
                                  "server": server}, env={})


class Failing(ChunkWorker):
    def __init__(self, error: BaseException) -> None:
        super().__init__([JOB.text])
        self.error = error

    async def __call__(self, balancer, job, *, admitted=False):
        await super().__call__(balancer, job, admitted=admitted)
        raise self.error


@pytest.mark.parametrize("error, kind, status, counter", [
    (Overloaded("queue full"), ServiceError, 503, "shed"),
    (NoCapacity("no worker can become ready"), ServiceError, 503, "failed"),
    (UpstreamFailed("both attempts failed"), ServiceError, 502, "failed"),
    (WorkerRejected(422, "bad voice"), RequestError, 422, None),
])
async def test_upstream_failures_become_http_errors_and_are_counted(tmp_path, error, kind, status, counter):
    service = make_service(make_config(tmp_path, retry_after_s=7), Failing(error))
    with pytest.raises(kind, match=str(error)) as caught:
        await service.run_job(JOB)
    assert caught.value.status == status
    assert caught.value.headers == ({"Retry-After": "7"} if status == 503 else {})
    assert service.totals == (Totals(**{counter: 1}) if counter else Totals())


async def test_the_deadline_is_a_504_counted_as_a_timeout(tmp_path):
    worker = ChunkWorker([JOB.text], gates={0: asyncio.Event()})  # never answers
    service = make_service(make_config(tmp_path, request_timeout_s=0.2), worker)
    with pytest.raises(ServiceError, match="within 0.2s") as caught:
        await service.run_job(JOB)
    assert caught.value.status == 504 and service.totals.timeouts == 1 and worker.cancelled == 1


class RetriedOnce(ChunkWorker):
    async def __call__(self, balancer, job, *, admitted=False):
        return dataclasses.replace(await super().__call__(balancer, job, admitted=admitted), attempts=2)


async def test_a_success_counts_nothing_and_a_retry_counts_once(tmp_path):
    service = make_service(make_config(tmp_path), ChunkWorker([JOB.text]))
    assert (await service.run_job(JOB)).worker_id == "w1"
    assert service.totals == Totals()
    retried = make_service(make_config(tmp_path), RetriedOnce([JOB.text]))
    assert (await retried.run_job(JOB)).attempts == 2
    assert retried.totals == Totals(retried=1)


async def test_apply_makes_the_next_request_use_the_new_config(tmp_path):
    service = make_service(make_config(tmp_path, retry_after_s=2), Failing(Overloaded("queue full")))
    with pytest.raises(ServiceError) as before:
        await service.run_job(JOB)
    assert before.value.headers == {"Retry-After": "2"}  # positive control: the old value
    new = make_config(tmp_path, retry_after_s=9)
    service.apply(new)
    with pytest.raises(ServiceError) as after:
        await service.run_job(JOB)
    assert service.config is new and after.value.headers == {"Retry-After": "9"}


def test_totals_read_as_the_status_dict():
    totals = Totals()
    totals.request()
    totals.answered()
    totals.request()
    assert dict(totals) == totals.as_dict() == {"requests": 2, "ok": 1, "client_errors": 0, "shed": 0,
                                                "timeouts": 0, "failed": 0, "retried": 0}
    assert totals["ok"] == 1
    with pytest.raises(KeyError, match="nope"):
        totals["nope"]
    with pytest.raises(TypeError):
        totals["ok"] = 5  # counted through its methods only
