"""``tts-ops check-config``: exit status and output an operator (or a deploy script) relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tts_ops.cli import main


@pytest.fixture(autouse=True)
def _clean_env(tmp_path, monkeypatch):
    # The effective config depends on TTS_OPS_* and systemd variables and on the working directory.
    for var in ("TTS_OPS_ADMIN_TOKEN", "TTS_OPS_REDIS_URL", "TTS_OPS_WORKERS", "TTS_OPS_PORT", "TTS_OPS_HOST",
                "TTS_OPS_LOG_DIR", "TTS_OPS_OUTPUT_DIR", "TTS_OPS_MODEL_DIR", "TTS_OPS_STATE_DIR",
                "TTS_OPS_RUNTIME_DIR", "STATE_DIRECTORY", "LOGS_DIRECTORY", "CACHE_DIRECTORY", "RUNTIME_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def check(tmp_path: Path, text: str, *extra: str) -> tuple[Path, int, str, str]:
    """Run the real command in a child process: exit status and stderr exactly as a shell sees them."""
    path = tmp_path / "tts-ops.yaml"
    path.write_text(text)
    return path, *run(["check-config", "--config", str(path), *extra])


def run(argv: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "tts_ops.cli", *argv], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_valid_file_prints_ok_then_the_effective_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TTS_OPS_ADMIN_TOKEN", "s3cret-admin-token")
    path = tmp_path / "tts-ops.yaml"
    path.write_text("server:\n  port: 6000\nworkers:\n  count: 2\n")
    assert main(["check-config", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    first, _, rest = out.partition("\n")
    assert first == f"{path}: OK" and err == ""
    effective = yaml.safe_load(rest)
    assert effective["server"]["port"] == 6000 and effective["workers"]["count"] == 2
    assert effective["admin"]["token"] == "***" and "s3cret-admin-token" not in out


def test_quiet_prints_nothing_on_success(tmp_path, capsys):
    path = tmp_path / "tts-ops.yaml"
    path.write_text("server:\n  port: 6000\n")
    assert main(["check-config", "--config", str(path), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")


def test_unknown_key_fails_with_one_line_naming_the_key_path(tmp_path):
    path, code, out, err = check(tmp_path, "server:\n  prot: 6000\n")
    assert code != 0 and out == ""
    assert err == (f"tts-ops check-config: invalid configuration: {path}: server.prot: unknown key "
                   "(did you mean 'port'?)\n")


def test_wrong_type_fails_with_one_line_naming_the_key_path(tmp_path):
    path, code, out, err = check(tmp_path, "workers:\n  count: true\n")
    assert code != 0 and out == ""
    assert err == f"tts-ops check-config: invalid configuration: {path}: workers.count: expected an integer, got true\n"


def test_several_problems_one_line_each(tmp_path, capsys):
    path = tmp_path / "tts-ops.yaml"
    path.write_text("server:\n  port: '5000'\ncache:\n  enabled: 'off'\n")
    assert main(["check-config", "--config", str(path)]) != 0
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "tts-ops check-config: invalid configuration:",
        f"{path}: server.port: expected an integer, got '5000'",
        f"{path}: cache.enabled: expected true or false, got 'off'",
    ]


def test_missing_file_is_one_line(tmp_path, capsys):
    assert main(["check-config", "--config", str(tmp_path / "nope.yaml")]) != 0
    assert capsys.readouterr().err == (
        f"tts-ops check-config: invalid configuration: config file not found: {tmp_path / 'nope.yaml'}\n")


def test_bad_lexicon_lines_are_named_with_their_numbers(tmp_path):
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("# ok\n银行\tyin2 xing2\n行长\thang2\n好\thao9\n", encoding="utf-8")
    path, code, out, err = check(tmp_path, f"engines:\n  fastspeech2_baker:\n    lexicon: {lexicon}\n")
    assert code != 0 and out == ""
    assert err.splitlines() == [
        "tts-ops check-config: invalid configuration:",
        f"engines.fastspeech2_baker.lexicon: {lexicon}: line 3: 2 characters in '行长' but 1 syllables",
        f"engines.fastspeech2_baker.lexicon: {lexicon}: line 4: not tone-numbered pinyin syllables (e.g. hang2, "
        "lv4, de5): hao9"]
    # Positive control: the fixed file passes.
    lexicon.write_text("# ok\n银行\tyin2 xing2\n", encoding="utf-8")
    path, code, out, err = check(tmp_path, f"engines:\n  fastspeech2_baker:\n    lexicon: {lexicon}\n")
    assert code == 0 and err == "" and f"lexicon: {lexicon}" in out
