from __future__ import annotations

import pytest

from tts_ops import logs


@pytest.fixture(autouse=True)
def _close_logging():
    """Every test leaves the loggers as it found them, whatever it configured."""
    yield
    manager = logs.current_manager()
    if manager is not None:
        manager.close()
