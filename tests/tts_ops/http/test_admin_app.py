"""The admin app (``AdminApi.build_app``) over aiohttp's test client: request bodies of ``POST /admin/scale`` that are
not a valid scale request are 400s with a JSON error, never a 500. The daemon behind it is a small recorder of
``scale`` calls: what is tested is the handler's parsing, not scaling (the e2e tests scale real workers)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.config import load_config
from tts_ops.http.admin import AdminApi

TOKEN = "admin-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RecordingSupervisor:
    def __init__(self) -> None:
        self.scaled: list[int] = []
        self.workers: dict = {}

    async def scale(self, count: int) -> None:
        self.scaled.append(count)


class Daemon:
    def __init__(self, config) -> None:
        self.config = config
        self.supervisor = RecordingSupervisor()

    def status(self) -> dict:
        return {"workers": {"target": self.supervisor.scaled[-1] if self.supervisor.scaled else 1}}


@pytest.fixture
async def admin(tmp_path):
    config = load_config(overrides={
        "metrics": {"enabled": False},
        "paths": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
        "logging": {"dir": str(tmp_path / "l")}, "output": {"dir": str(tmp_path / "o")}}, env={})
    daemon = Daemon(config)
    client = TestClient(TestServer(AdminApi(daemon, TOKEN).build_app()))
    await client.start_server()
    client.daemon = daemon
    yield client
    await client.close()


@pytest.mark.parametrize("raw, fragment", [
    (b"[" * 60000, "nested too deeply"),             # json.loads raises RecursionError, not ValueError
    (b'{"workers": ' + b"[" * 30000, "nested too deeply"),
    (b"{nope", "valid JSON"),
    (b'{"workers": "\xff"}', "valid JSON"),
], ids=["arrays", "in-a-field", "malformed", "not-utf8"])
async def test_bodies_that_are_not_json_are_400(admin, caplog, raw, fragment):
    resp = await admin.post("/admin/scale", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400
    message = (await resp.json())["error"]
    assert isinstance(message, str) and fragment in message and '{"workers": 2}' in message
    assert admin.daemon.supervisor.scaled == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_unknown_charset_is_not_a_500(admin):
    # request.json() decoded with the declared charset: an unknown one raised LookupError.
    resp = await admin.post("/admin/scale", data=b'{"workers": 2}',
                            headers={**AUTH, "Content-Type": "application/json; charset=x-nonexistent"})
    assert resp.status == 200 and admin.daemon.supervisor.scaled == [2]


@pytest.mark.parametrize("body", [b"{}", b'{"workers": 0}', b'{"workers": 65}', b'{"workers": true}',
                                  b'{"workers": 1.5}', b"[2]", b"2"])
async def test_invalid_scale_requests_are_400(admin, body):
    resp = await admin.post("/admin/scale", data=body, headers=AUTH)
    assert resp.status == 400 and "between 1 and 64" in (await resp.json())["error"]
    assert admin.daemon.supervisor.scaled == []


async def test_valid_scale_request_scales(admin):
    resp = await admin.post("/admin/scale", data=b'{"workers": 3.0}', headers=AUTH)
    assert resp.status == 200 and (await resp.json())["workers"] == 3
    assert admin.daemon.supervisor.scaled == [3]
    resp = await admin.post("/admin/scale", data=b'{"workers": 3}')
    assert resp.status == 401
