"""Fixtures for the Mandarin frontend tests: the Baker mapper (symbol inventory) from the model store, and one
shared frontend."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def mapper(baker_mapper) -> dict:
    return baker_mapper


@pytest.fixture(scope="session")
def frontend(mapper):
    from inference.text import MandarinFrontend

    return MandarinFrontend(mapper)
