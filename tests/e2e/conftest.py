"""``module_daemon``: like the suite's ``start_daemon`` factory, but the daemons live for the whole module, so the
many small OpenAI checks share a few daemons instead of paying a start (model load, warm-up) each. These daemons
keep the default in-process cache unless a test's config turns it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, dispose, launch_daemon


@pytest.fixture(scope="module")
def module_daemon(model_store_dir: Path):
    started: list[DaemonProcess] = []

    def start(config: dict | None = None, *, workers: int = 1) -> DaemonProcess:
        daemon = launch_daemon(model_store_dir, config, workers=workers, cache=True, prefix="ttsops-oa-")
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        dispose(daemon)
