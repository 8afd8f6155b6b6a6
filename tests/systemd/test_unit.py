"""Static checks of systemd/tts-ops.service, plus `systemd-analyze verify`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD_DIR = ROOT / "systemd"
UNIT = SYSTEMD_DIR / "tts-ops.service"
# tts_ops' default drain time; TimeoutStopSec must leave room beyond it.
GRACEFUL_TIMEOUT_S = 30


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> ordered (key, value) pairs.  Hand-rolled because unit files
    repeat keys (Environment=, and `ExecStart=` resets), which configparser
    either rejects or silently collapses."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"directive outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a KEY=value line: {line!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, list[tuple[str, str]]]:
    return parse_unit(UNIT.read_text())


def values(unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= appears {len(found)} times: {found}"
    return found[0]


def test_sections(unit):
    assert set(unit) == {"Unit", "Service", "Install"}
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_notify_and_watchdog(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "WatchdogSec") == "30"
    assert one(unit, "Service", "ExecStart") == (
        "/opt/tts-ops/venv/bin/tts-ops serve --config /etc/tts-ops/tts-ops.yaml")
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_lifecycle(unit):
    assert one(unit, "Service", "TimeoutStartSec") == "300"
    assert one(unit, "Service", "KillMode") == "mixed"
    assert int(one(unit, "Service", "TimeoutStopSec")) > GRACEFUL_TIMEOUT_S
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "RestartSec") == "5"
    assert one(unit, "Service", "OOMPolicy") == "continue"
    # Start limits live in [Unit]; in [Service] they are legacy/ignored.
    assert one(unit, "Unit", "StartLimitIntervalSec") == "600"
    assert one(unit, "Unit", "StartLimitBurst") == "10"
    # An instant crash loop is retried for burst x RestartSec before systemd gives up: at least 45 s, so a
    # transient cause (Redis restarting, port in TIME_WAIT) has time to clear.
    restart_s = int(one(unit, "Service", "RestartSec"))
    assert int(one(unit, "Unit", "StartLimitBurst")) * restart_s >= 45
    # RestartSteps=/RestartMaxDelaySec= need systemd >= 254; the target is 252.
    assert not values(unit, "Service", "RestartSteps") and not values(unit, "Service", "RestartMaxDelaySec")
    assert not values(unit, "Service", "StartLimitIntervalSec")
    assert not values(unit, "Service", "StartLimitBurst")


def test_user_and_directories(unit):
    assert one(unit, "Service", "User") == "tts-ops"
    assert one(unit, "Service", "Group") == "tts-ops"
    assert not values(unit, "Service", "DynamicUser")
    for key in ("StateDirectory", "LogsDirectory", "CacheDirectory", "RuntimeDirectory"):
        assert one(unit, "Service", key) == "tts-ops"
    assert one(unit, "Service", "RuntimeDirectoryMode") == "0700"
    assert one(unit, "Service", "UMask") == "0027"
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/tts-ops/tts-ops.env"
    assert one(unit, "Service", "LimitNOFILE") == "65536"
    env = values(unit, "Service", "Environment")
    assert "PYTHONUNBUFFERED=1" in env
    # The model store must be inside a directory the sandbox leaves writable.
    model_dir = [e.split("=", 1)[1] for e in env if e.startswith("TTS_OPS_MODEL_DIR=")]
    assert model_dir == ["/var/cache/tts-ops/models"]


@pytest.mark.parametrize("key", [
    "NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
    "ProtectControlGroups", "ProtectClock", "ProtectHostname", "RestrictNamespaces",
    "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
])
def test_hardening_enabled(unit, key):
    assert one(unit, "Service", key) == "true"


def test_hardening_values(unit):
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert one(unit, "Service", "SystemCallArchitectures") == "native"
    assert one(unit, "Service", "CapabilityBoundingSet") == ""
    assert set(one(unit, "Service", "RestrictAddressFamilies").split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6"}
    # LiteRT/XNNPACK JIT needs W+X mappings: must stay off.
    assert not values(unit, "Service", "MemoryDenyWriteExecute")


def test_install_doc_matches_unit(unit):
    doc = (SYSTEMD_DIR / "INSTALL.md").read_text()
    exec_start = one(unit, "Service", "ExecStart")
    binary = exec_start.split()[0]
    assert binary.startswith("/opt/tts-ops/venv/") and "python3 -m venv /opt/tts-ops/venv" in doc
    assert "useradd --system" in doc
    assert "install -m 0644 systemd/tts-ops.service /etc/systemd/system/tts-ops.service" in doc
    assert "TTS_OPS_MODEL_DIR=/var/cache/tts-ops/models" in doc
    for cmd in ("systemctl daemon-reload", "systemctl enable --now tts-ops",
                "systemctl status tts-ops", "journalctl -u tts-ops"):
        assert cmd in doc


def test_env_example():
    text = (SYSTEMD_DIR / "tts-ops.env.example").read_text()
    assignments = [line for line in text.splitlines() if re.match(r"[A-Z_]+=", line)]
    assert assignments == [], "the example must not set anything by default"
    for key in ("TTS_OPS_ADMIN_TOKEN", "TTS_OPS_REDIS_URL"):
        assert re.search(rf"^#{key}=", text, re.M)
    assert "0600" in text


def test_systemd_analyze_verify(tmp_path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed (apt-get install -y --no-install-recommends systemd)")
    # verify checks that ExecStart= exists and is executable: point it at a
    # binary every host has; everything else is checked as shipped.
    text = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", UNIT.read_text())
    copy = tmp_path / "tts-ops.service"
    copy.write_text(text)
    proc = subprocess.run([exe, "verify", str(copy)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    output = (proc.stdout + proc.stderr).strip()
    # Unknown or malformed directives are only warnings (exit 0): fail on any
    # message about our unit, not just on the exit code.
    ours = [line for line in output.splitlines()
            if str(copy) in line or "tts-ops.service" in line]
    assert proc.returncode == 0, output
    assert ours == [], output
