"""End-to-end online quality sampling on a real ``tts-ops serve`` with the real scorer (CPU torch + Distill-MOS):
with ``quality.sample_rate: 1.0`` every synthesis gets a follow-up ``mos`` line in synthesis.log, a
``tts_ops_mos`` observation and a place in /admin/status; a SIGKILLed scorer is restarted while synthesis goes on;
a scorer that cannot boot (torch or the weights missing) is FAILED with the reason and the service still serves."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest

from tests.conftest import http
from tts_vocab import headers as h

pytestmark = pytest.mark.slow

SENTENCES = ["今天天气很好。", "我们一起去公园散步吧！", "这个问题需要认真考虑。"]


def synthesize(daemon, text: str, request_id: str, **fields) -> None:
    code, _, body = http("POST", daemon.base_url + "/tts", {"text": text, **fields},
                         headers={h.REQUEST_ID: request_id}, timeout=60)
    assert code == 200, body[:300]


def mos_lines(daemon) -> dict[str, dict]:
    path = daemon.workdir / "logs" / "synthesis.log"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    return {line["request_id"]: line for line in lines if line.get("event") == "mos"}


def metrics(daemon) -> str:
    code, _, body = http("GET", daemon.admin_url + "/metrics", token=daemon.token)
    assert code == 200
    return body.decode()


def sample_value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == want:
            return float(match.group(2))
    return 0.0


def scorer(daemon) -> dict:
    return daemon.status()["quality"]["scorer"]


@pytest.fixture(scope="module")
def sampled(module_daemon):
    # min_mos 5.0: every score is "low", so the alert path is exercised on real scores too.
    daemon = module_daemon({"quality": {"sample_rate": 1.0, "min_mos": 5.0}, "cache": {"enabled": False}})
    daemon.wait_until(lambda: scorer(daemon)["state"] == "ready", 120, what="scorer ready")
    return daemon


def test_every_synthesis_is_scored_logged_exported_and_shown(sampled):
    daemon = sampled
    ids = [f"mos-{i}" for i in range(len(SENTENCES))]
    for request_id, text, emotion in zip(ids, SENTENCES, ("neutral", "sad", "neutral"), strict=True):
        synthesize(daemon, text, request_id, emotion=emotion)
    lines = daemon.wait_until(lambda: (found := mos_lines(daemon)) and set(ids) <= set(found) and found, 120,
                              what="a mos line per request")
    for request_id in ids:
        line = lines[request_id]
        assert 1.0 <= line["mos"] <= 5.0 and line["engine"] == "fastspeech2-baker", line
        assert re.fullmatch(r"[0-9a-f]{64}", line["text_sha256"]) and line["low_quality"] is True
        # The warning names the request and the text hash.
        assert re.search(rf"low quality: request {request_id} scored MOS .* text_sha256 {line['text_sha256']}",
                         daemon.log())

    text = metrics(daemon)
    engine = "fastspeech2-baker"
    assert sample_value(text, "tts_ops_mos_count", engine=engine, emotion="neutral") >= 2
    assert sample_value(text, "tts_ops_mos_count", engine=engine, emotion="sad") >= 1
    assert sample_value(text, "tts_ops_mos_low_quality_total", engine=engine, emotion="neutral") >= 2
    assert "tts_ops_mos_samples_dropped_total" in text

    quality = daemon.status()["quality"]
    assert quality["scored"] >= 3 and quality["low_quality"] >= 3
    assert set(quality["recent_mean"]) >= {"neutral", "sad"}
    assert 1.0 <= quality["recent_mean"]["neutral"] <= 5.0
    assert quality["scorer"]["pid"] and quality["scorer"]["state"] == "ready"


def test_a_killed_scorer_is_restarted_and_synthesis_goes_on(sampled):
    daemon = sampled
    before = scorer(daemon)
    os.kill(before["pid"], signal.SIGKILL)
    daemon.wait_until(lambda: scorer(daemon)["state"] != "ready" or scorer(daemon)["pid"] != before["pid"], 30,
                      what="the scorer's death noticed")
    synthesize(daemon, "杀掉打分进程也不影响合成。", "after-kill")  # served while the scorer is down or booting
    after = daemon.wait_until(lambda: (s := scorer(daemon))["state"] == "ready" and s, 120, what="scorer restarted")
    assert after["pid"] != before["pid"] and after["restarts"] == before["restarts"] + 1
    assert "killed by SIGKILL" in daemon.log()
    synthesize(daemon, "新的打分进程继续工作。", "after-restart")
    daemon.wait_until(lambda: "after-restart" in mos_lines(daemon), 120, what="a score from the new scorer")


def blocker(root: Path, what: str) -> Path:
    """A directory that, first on PYTHONPATH, hides torch (``torch``) or stands in for a distillmos wheel without
    its weights (``weights``)."""
    if what == "torch":
        (root / "torch").mkdir(parents=True)
        (root / "torch" / "__init__.py").write_text('raise ImportError("torch hidden by the test")\n')
    else:
        (root / "distillmos").mkdir(parents=True)
        (root / "distillmos" / "__init__.py").write_text("")
        (root / "distillmos" / "sqa.py").write_text("class ConvTransformerSQAModel:\n    pass\n")
    return root


@pytest.mark.parametrize(("missing", "reason"), [("torch", "torch is not installed"),
                                                  ("weights", "distillmos weights not found")])
def test_a_scorer_that_cannot_boot_is_failed_with_the_reason_and_the_service_serves(start_daemon, tmp_path,
                                                                                     missing, reason):
    path = os.pathsep.join(p for p in (str(blocker(tmp_path / "blocker", missing)), os.environ.get("PYTHONPATH"))
                           if p)
    daemon = start_daemon({"quality": {"sample_rate": 1.0}}, env={"PYTHONPATH": path})
    state = daemon.wait_until(lambda: (s := scorer(daemon))["state"] == "failed" and s, 120,
                              what="scorer FAILED")
    assert reason in state["reason"] and "boot failure (exit 3)" in state["reason"], state
    assert state["restarts"] == 0  # one boot failure is enough: no retry loop before the cool-down
    synthesize(daemon, "没有打分也照常合成。", "no-scorer")
    quality = daemon.status()["quality"]
    assert quality["dropped"]["scorer_failed"] == 1 and quality["scored"] == 0
    assert sample_value(metrics(daemon), "tts_ops_mos_samples_dropped_total", reason="scorer_failed") == 1
