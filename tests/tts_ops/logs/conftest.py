from __future__ import annotations

import pytest

from tts_ops.logs.manager import LogManager


@pytest.fixture(autouse=True)
def _close_logging(monkeypatch):
    """Every test leaves the loggers as it found them, whatever it configured: every ``LogManager`` built during
    the test (by ``setup_logging`` or directly) is closed afterwards, which undoes its logger changes. ``close``
    is idempotent, so the ones a later ``setup_logging`` already closed are skipped."""
    created: list[LogManager] = []
    real_init = LogManager.__init__

    def tracking_init(self: LogManager, *args, **kwargs) -> None:
        real_init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(LogManager, "__init__", tracking_init)
    yield
    for manager in reversed(created):
        manager.close()
