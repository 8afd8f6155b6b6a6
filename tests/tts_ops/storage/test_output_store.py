"""OutputStore: names come only from the request id, writes are atomic, and open_output/handler serve nothing but
the store's own regular files (no traversal, no symlinks, no directories)."""

from __future__ import annotations

import gzip
import logging
import os
import re
import stat
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.storage.output_store import CHUNK_BYTES, NAME_RE, OutputStore


@pytest.fixture
def store(tmp_path: Path) -> OutputStore:
    return OutputStore(tmp_path / "out", enabled=True)


def saved(store: OutputStore, request_id: str, data: bytes, fmt_ext: str) -> str:
    """``store.save`` where the test needs the file: its name (a save that returns None fails the test)."""
    name = store.save(request_id, data, fmt_ext)
    assert name is not None, f"{request_id}: nothing saved"
    return name


def served(store: OutputStore, name: str) -> bytes | None:
    """What ``open_output`` would let the handler serve under ``name`` (None: refused)."""
    opened = store.open_output(name)
    if opened is None:
        return None
    fd, st = opened
    try:
        return os.read(fd, st.st_size + 1)
    finally:
        os.close(fd)


def test_save_resolve_round_trip(store: OutputStore) -> None:
    name = store.save("req-1_A", b"RIFFdata", "wav")
    assert name is not None and re.fullmatch(r"\d{8}-\d{6}-req-1_A\.wav", name)
    path = store.directory / name
    assert served(store, name) == b"RIFFdata"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in store.directory.iterdir()] == [name]  # no temporary file left behind


@pytest.mark.parametrize("request_id", ["../../etc/passwd", "a.b", "", "x" * 65, "id with space", "é", "a/b", None])
def test_invalid_request_id_gets_generated_name(store: OutputStore, request_id: str | None) -> None:
    name = store.save(request_id, b"data", "mp3")  # type: ignore[arg-type]  # None on purpose: an untyped caller
    assert name is not None and re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{32}\.mp3", name)
    assert served(store, name) is not None


def test_extension_whitelist(store: OutputStore) -> None:
    assert saved(store, "r", b"d", ".FLAC").endswith("-r.flac")
    assert saved(store, "r2", b"d", "opus").endswith("-r2.ogg")  # the format name inference/audio.py uses
    with pytest.raises(ValueError, match=r"^unsupported output extension 'sh'; allowed: wav, flac, ogg, mp3, pcm$"):
        store.save("r", b"d", "sh")
    with pytest.raises(ValueError, match=r"^unsupported output extension 'wav/\.\./\.\./x'; allowed: "):
        store.save("r", b"d", "wav/../../x")


def test_applied_directory_is_used_and_the_move_is_warned_about(store: OutputStore, tmp_path: Path, caplog) -> None:
    first = saved(store, "r1", b"one", "wav")
    caplog.set_level(logging.INFO, "tts_ops.output_store")
    store.apply(tmp_path / "out", enabled=True)  # unchanged: nothing to say (control for the warning below)
    assert not caplog.records
    store.apply(tmp_path / "out2", enabled=True)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"saved to {tmp_path / 'out2'}" in warning and f"files in {tmp_path / 'out'} are no longer" in warning
    second = saved(store, "r2", b"two", "wav")
    assert (tmp_path / "out2" / second).read_bytes() == b"two"
    assert served(store, first) is None and (tmp_path / "out" / first).exists()  # left behind, no longer served


async def test_disabled_or_paused_store_saves_nothing(tmp_path: Path) -> None:
    disabled = OutputStore(tmp_path / "off", enabled=False)
    assert disabled.save("r", b"d", "wav") is None
    assert await disabled.save_async("r", b"d", "wav") is None
    assert not (tmp_path / "off").exists()
    paused = OutputStore(tmp_path / "p", enabled=True)
    paused.pause()
    assert await paused.save_async("r", b"d", "wav") is None
    paused.resume()
    assert await paused.save_async("r", b"d", "wav") is not None


def test_write_failure_returns_none(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = OutputStore(tmp_path / "file", enabled=True)
    assert store.save("r", b"d", "wav") is None and store.save_errors == 1


def test_resolve_rejects_everything_else(store: OutputStore, tmp_path: Path) -> None:
    good = store.save("ok", b"d", "wav")
    assert good is not None
    outside = tmp_path / "secret.wav"
    outside.write_text("secret")
    stamp = good.split("-ok")[0]
    link = f"{stamp}-link.wav"
    os.symlink("/etc/passwd", store.directory / link)
    os.symlink(outside, store.directory / f"{stamp}-link2.wav")
    (store.directory / f"{stamp}-adir.wav").mkdir()
    (store.directory / "notes.txt").write_text("n")
    for name in ["../x", "../" + good, "/etc/passwd", str(store.directory / good), f"sub/{good}", good + "/",
                 f"{stamp}-..wav", f"{stamp}-ok.wav.bak", f"{stamp}-ok.exe", "notes.txt", good + "\n",
                 f"{stamp}-missing.wav", link, f"{stamp}-link2.wav", f"{stamp}-adir.wav", "", ".", ".."]:
        assert served(store, name) is None, name
    assert NAME_RE.fullmatch(link)  # the symlink is refused for being a symlink, not for its name
    assert served(store, good) is not None


async def test_handler(store: OutputStore, tmp_path: Path) -> None:
    good = saved(store, "abc", b"RIFF....WAVE", "wav")
    mp3 = store.save("abd", b"ID3", "mp3")
    stamp = good.split("-abc")[0]
    os.symlink("/etc/passwd", store.directory / f"{stamp}-evil.wav")
    app = web.Application()
    app.router.add_get("/output/{name}", store.handler)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(f"/output/{good}")
        assert resp.status == 200 and resp.content_type == "audio/wav"
        assert await resp.read() == b"RIFF....WAVE"
        resp = await client.get(f"/output/{mp3}")
        assert resp.status == 200 and resp.content_type == "audio/mpeg"
        for url in ["/output/..%2F..%2Fetc%2Fpasswd", f"/output/{stamp}-evil.wav", f"/output/{stamp}-nope.wav",
                    "/output/notes.txt", f"/output/..%2F{good}", "/output/%2Fetc%2Fpasswd"]:
            resp = await client.get(url)
            assert resp.status == 404, url
            assert await resp.json() == {"error": "not found"}, url


def serving_app(store: OutputStore) -> web.Application:
    app = web.Application()
    app.router.add_get("/output/{name}", store.handler)
    return app


async def test_handler_serves_no_gz_sibling_and_no_symlink_to_an_output(store: OutputStore, tmp_path: Path) -> None:
    good = saved(store, "abc", b"RIFF-original", "wav")
    # A pre-compressed sibling: aiohttp's FileResponse would serve it to a client accepting gzip.
    (store.directory / f"{good}.gz").write_bytes(gzip.compress(b"SIBLING"))
    other = saved(store, "abd", b"RIFF-other", "wav")
    stamp = good.split("-abc")[0]
    # A symlink named like one of ours, to another output of ours: still not served.
    os.symlink(store.directory / other, store.directory / f"{stamp}-alias.wav")
    async with TestClient(TestServer(serving_app(store))) as client:
        resp = await client.get(f"/output/{good}", headers={"Accept-Encoding": "gzip, br"})
        assert resp.status == 200 and "Content-Encoding" not in resp.headers
        assert await resp.read() == b"RIFF-original"
        assert resp.headers["Content-Length"] == str(len(b"RIFF-original"))
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        resp = await client.get(f"/output/{stamp}-alias.wav")
        assert resp.status == 404 and await resp.json() == {"error": "not found"}
        resp = await client.get(f"/output/{good}.gz")
        assert resp.status == 404
        resp = await client.head(f"/output/{good}")
        assert resp.status == 200 and resp.headers["Content-Length"] == str(len(b"RIFF-original"))
        assert await resp.read() == b""


async def test_handler_streams_the_checked_file_not_a_symlink_swapped_in(store: OutputStore, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    good = saved(store, "abc", b"RIFF-checked", "wav")
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"SECRET")
    checked = store.open_output

    def open_then_swap(name: str):
        opened = checked(name)
        # The attacker wins the race: right after the check, the name becomes a symlink to a secret.
        (store.directory / name).unlink()
        os.symlink(secret, store.directory / name)
        return opened

    monkeypatch.setattr(store, "open_output", open_then_swap)
    async with TestClient(TestServer(serving_app(store))) as client:
        resp = await client.get(f"/output/{good}")
        assert resp.status == 200 and await resp.read() == b"RIFF-checked"
    assert served(store, good) is None  # and from now on the name is refused


async def test_handler_streams_large_files_in_chunks(store: OutputStore) -> None:
    data = os.urandom(3 * CHUNK_BYTES + 123)
    name = store.save("big", data, "flac")
    async with TestClient(TestServer(serving_app(store))) as client:
        resp = await client.get(f"/output/{name}")
        assert resp.status == 200 and resp.content_type == "audio/flac" and await resp.read() == data
