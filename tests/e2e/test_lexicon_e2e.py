"""The pronunciation dictionary on a real daemon: the phonemizer view and the model version follow it, SIGHUP
loads an edited file without a restart, and a bad file at HUP is rejected naming its line while the running
dictionary stays active; at start a bad file is a configuration error."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import http

TEXT = "我们去银行办事。"


def bank_reading(daemon) -> list[str]:
    code, _, body = http("POST", daemon.base_url + "/frontend", {"text": TEXT})
    assert code == 200, body
    return json.loads(body)["chunks"][0]["pinyin"][3:5]


def hup_and_wait(daemon, what: str) -> dict:
    before = daemon.status()["reloads"], (daemon.status()["last_reload"] or {}).get("at")
    daemon.proc.send_signal(signal.SIGHUP)
    return daemon.wait_until(lambda: (lambda s: s["state"] == "running" and (s["reloads"], (s["last_reload"] or {})
                                                                                .get("at")) != before and s)(
        daemon.status()), 120, what=what)


def run_cli(daemon, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tts_ops.cli", *args, "--config", str(daemon.config_path)],
                         capture_output=True, text=True, timeout=120, env=daemon.env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.mark.slow
def test_lexicon_is_applied_and_reloaded_on_hup(start_daemon, tmp_path):
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("# ops fixes\n银行\tyin2 xing2\n", encoding="utf-8")
    daemon = start_daemon({"engines": {"fastspeech2_baker": {"lexicon": str(lexicon)}}})
    assert bank_reading(daemon) == ["yin2", "xing2"]
    # The operator's shell shows the same reading (tts-ops frontend loads the dictionary in-process).
    assert json.loads(run_cli(daemon, "frontend", TEXT, "--json"))["chunks"][0]["pinyin"][3:5] == ["yin2", "xing2"]
    code, headers, _ = http("POST", daemon.base_url + "/tts", {"text": TEXT})
    assert code == 200 and "+lexicon." in headers["X-Model-Version"]
    version = headers["X-Model-Version"]
    [worker] = [row["id"] for row in daemon.status()["workers"]["items"]]

    # A bad line: the reload is rejected naming it, the running dictionary stays, no worker is replaced.
    lexicon.write_text("# ops fixes\n银行\tyin2 hang2\n行长\thang2\n", encoding="utf-8")
    status = hup_and_wait(daemon, "the rejected reload")
    assert status["last_reload"]["ok"] is False and status["reloads"] == 0
    assert "line 3: 2 characters in '行长' but 1 syllables" in status["last_reload"]["error"]
    assert "config rejected, keeping the running one" in daemon.log() and "line 3" in daemon.log()
    assert bank_reading(daemon) == ["yin2", "xing2"]
    assert [row["id"] for row in daemon.status()["workers"]["items"]] == [worker]
    # The admin commands keep working while the file has a bad line; check-config names it.
    run_cli(daemon, "status")  # exits 0
    checked = subprocess.run([sys.executable, "-m", "tts_ops.cli", "check-config", "--config",
                              str(daemon.config_path)], capture_output=True, text=True, timeout=60, env=daemon.env)
    assert checked.returncode != 0 and "line 3" in checked.stderr

    # Fixed: the next HUP rolls the workers onto it, without a restart of the daemon.
    lexicon.write_text("# ops fixes\n银行\tyin2 hang2\n办事\tban4 shi4\n", encoding="utf-8")
    status = hup_and_wait(daemon, "the applied reload")
    assert status["last_reload"]["ok"] is True and status["reloads"] == 1
    assert bank_reading(daemon) == ["yin2", "hang2"]
    code, headers, _ = http("POST", daemon.base_url + "/tts", {"text": TEXT})
    assert code == 200 and "+lexicon." in headers["X-Model-Version"] and headers["X-Model-Version"] != version
    # Workers read the daemon's validated copy, never the operator's file directly.
    copies = sorted(p.name for p in (daemon.workdir / "run").glob("lexicon-*.tsv"))
    assert len(copies) == 2


@pytest.mark.slow
def test_bad_lexicon_at_start_is_a_config_error(tmp_path):
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("银行\tyin2\n", encoding="utf-8")
    config = tmp_path / "tts-ops.yaml"
    config.write_text(f"engines:\n  fastspeech2_baker:\n    lexicon: {lexicon}\n"
                      f"paths:\n  runtime_dir: {tmp_path / 'run'}\n  state_dir: {tmp_path / 'state'}\n")
    proc = subprocess.run([sys.executable, "-m", "tts_ops.cli", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert (f"invalid configuration: engines.fastspeech2_baker.lexicon: {lexicon}: line 1: 2 characters in '银行' "
            "but 1 syllables") in proc.stderr
    assert "Traceback" not in proc.stderr
