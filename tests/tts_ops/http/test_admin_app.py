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


class Daemon:
    """Records ``scale`` calls (None = reset) and drain requests."""

    def __init__(self, config) -> None:
        self.config = config
        self.scaled: list[int | None] = []
        self.stops: list[str] = []

    async def scale(self, count: int | None) -> None:
        self.scaled.append(count)

    def request_stop(self, reason: str) -> bool:
        self.stops.append(reason)
        return len(self.stops) == 1

    def status(self) -> dict:
        target = self.scaled[-1] if self.scaled and self.scaled[-1] is not None else 1
        return {"workers": {"target": target}, "state": "draining" if self.stops else "running", "in_flight": 0}


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
    assert admin.daemon.scaled == []
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_unknown_charset_is_not_a_500(admin):
    # request.json() decoded with the declared charset: an unknown one raised LookupError.
    resp = await admin.post("/admin/scale", data=b'{"workers": 2}',
                            headers={**AUTH, "Content-Type": "application/json; charset=x-nonexistent"})
    assert resp.status == 200 and admin.daemon.scaled == [2]


@pytest.mark.parametrize("body", [b"{}", b'{"workers": 0}', b'{"workers": 65}', b'{"workers": true}',
                                  b'{"workers": 1.5}', b"[2]", b"2", b'{"reset": false}', b'{"reset": 1}',
                                  b'{"workers": 2, "reset": true}', b'{"workers": 2, "wrokers": 3}'])
async def test_invalid_scale_requests_are_400(admin, body):
    resp = await admin.post("/admin/scale", data=body, headers=AUTH)
    assert resp.status == 400 and "between 1 and 64" in (await resp.json())["error"]
    assert admin.daemon.scaled == []


async def test_valid_scale_request_scales(admin):
    resp = await admin.post("/admin/scale", data=b'{"workers": 3.0}', headers=AUTH)
    assert resp.status == 200 and (await resp.json())["workers"] == 3
    assert admin.daemon.scaled == [3]
    resp = await admin.post("/admin/scale", data=b'{"workers": 3}')
    assert resp.status == 401


async def test_reset_drops_the_runtime_scale(admin):
    resp = await admin.post("/admin/scale", data=b'{"reset": true}', headers=AUTH)
    assert resp.status == 200 and (await resp.json())["workers"] == 1
    assert admin.daemon.scaled == [None]


async def test_drain_is_accepted_once_and_reported_as_already_under_way_after(admin):
    resp = await admin.post("/admin/drain", headers=AUTH)
    assert resp.status == 202
    assert await resp.json() == {"draining": True, "already": False, "state": "draining", "in_flight": 0}
    resp = await admin.post("/admin/drain", headers=AUTH)
    assert resp.status == 202 and (await resp.json())["already"] is True
    assert admin.daemon.stops == ["POST /admin/drain", "POST /admin/drain"]
    assert (await admin.post("/admin/drain")).status == 401
