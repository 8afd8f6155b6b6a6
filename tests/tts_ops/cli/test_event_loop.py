"""The daemon's event loop choice (``server.event_loop``): uvloop when installed and chosen, asyncio otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tts_ops.cli import event_loop
from tts_ops.cli.errors import CliError


async def loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_setting_runs_asyncio_own_loop():
    assert event_loop.loop_name("asyncio") == "asyncio"
    assert event_loop.run(loop_type, "asyncio").startswith("asyncio")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="auto picks uvloop on Linux only")
def test_auto_runs_uvloop_when_installed():
    assert event_loop.loop_name("auto").startswith("uvloop ")
    assert event_loop.run(loop_type, "auto").startswith("uvloop")


def test_uvloop_by_name_without_uvloop_is_a_named_error(monkeypatch):
    monkeypatch.setattr(event_loop, "uvloop", None)
    assert event_loop.loop_name("auto") == "asyncio"
    with pytest.raises(CliError, match="server.event_loop"):
        event_loop.run(loop_type, "uvloop")
