"""The instance record and token file: written once, read back validated, removed only by the daemon that wrote
them (pure file logic, no daemon)."""

from __future__ import annotations

import json
import os

import pytest

from tts_ops.instance import InstanceFiles, InstanceRecord, list_records, read_record, record_path
from tts_ops.instance.record import client_host


def files(tmp_path, *, generated=True, token="tok-123"):
    return InstanceFiles(record_path(tmp_path, "tts-ops-5000"), tmp_path / "tts-ops-5000.token", token,
                         generated=generated)


def test_publish_writes_a_private_record_and_token_withdraw_removes_them(tmp_path):
    published = files(tmp_path)
    published.publish("tts-ops-5000", "http://127.0.0.1:5000", "http://127.0.0.1:5001")
    record = read_record(published.record_file)
    assert record is not None and record.pid == os.getpid() and record.alive()
    assert (record.name, record.admin_url, record.token_file) == ("tts-ops-5000", "http://127.0.0.1:5001",
                                                                   str(tmp_path / "tts-ops-5000.token"))
    assert published.token_file.read_text() == "tok-123\n"
    assert {published.record_file.stat().st_mode & 0o777, published.token_file.stat().st_mode & 0o777} == {0o600}
    published.withdraw()
    assert not published.record_file.exists() and not published.token_file.exists()


def test_a_configured_token_is_never_written_and_a_foreign_token_file_is_left_alone(tmp_path):
    published = files(tmp_path, generated=False, token="configured-secret")
    published.token_file.write_text("put there by the operator\n")
    published.publish("tts-ops-5000", "http://127.0.0.1:5000", "http://127.0.0.1:5001")
    record = read_record(published.record_file)
    assert record is not None and record.token_file is None
    assert "configured-secret" not in published.record_file.read_text()
    published.withdraw()
    assert published.token_file.read_text() == "put there by the operator\n"


def test_withdraw_leaves_files_another_daemon_replaced(tmp_path):
    published = files(tmp_path)
    published.publish("tts-ops-5000", "http://127.0.0.1:5000", "http://127.0.0.1:5001")
    # Another daemon took the name over (this one lost its lock, say): its record and token are not ours to delete.
    other = InstanceRecord("tts-ops-5000", os.getpid() + 1_000_000, "u", "v", None, 0.0)
    published.record_file.write_text(other.to_json())
    published.token_file.write_text("someone-else\n")
    published.withdraw()
    assert read_record(published.record_file) == other
    assert published.token_file.read_text() == "someone-else\n"


def test_withdraw_before_publish_touches_nothing(tmp_path):
    never = files(tmp_path)
    never.token_file.write_text("tok-123\n")
    never.withdraw()
    assert never.token_file.exists()


@pytest.mark.parametrize("text, problem", [
    ("{", "unreadable instance record"), ("[]", "not a JSON object"),
    (json.dumps({"name": "x", "pid": "12", "public_url": "u", "admin_url": "v", "started_at": 1}), "pid"),
    (json.dumps({"name": "x", "pid": 1, "public_url": "u", "admin_url": "v", "started_at": 1, "token_file": 3}),
     "token_file"),
])
def test_a_broken_record_is_a_clear_error(tmp_path, text, problem):
    path = record_path(tmp_path, "x")
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        read_record(path)
    assert list_records(tmp_path) == [(path, None)]


def test_missing_record_is_none_and_a_dead_pid_is_not_alive(tmp_path):
    assert read_record(record_path(tmp_path, "nobody")) is None
    dead = InstanceRecord("x", 2**22 + 12345, "u", "v", None, 0.0)  # above pid_max's default: never a process
    assert not dead.alive()


@pytest.mark.parametrize("host, expected", [("0.0.0.0", "127.0.0.1"), ("", "127.0.0.1"), ("::", "[::1]"),
                                            ("::1", "[::1]"), ("10.1.2.3", "10.1.2.3")])
def test_client_host_turns_wildcards_into_loopback(host, expected):
    assert client_host(host) == expected
