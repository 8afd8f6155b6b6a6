"""Two OutputStores on one directory, as two instances behind a load balancer sharing ``output.dir``: names never
collide, each serves what the other wrote, a file is never visible (nor served) half-written, and a file
deleted under a download ends it short instead of failing the request."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tts_ops.storage import output_store
from tts_ops.storage.output_store import CHUNK_BYTES, NAME_RE, TMP_RE, OutputStore


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    return tmp_path / "shared-output"


@pytest.fixture
def stores(shared: Path) -> tuple[OutputStore, OutputStore]:
    return OutputStore(shared, enabled=True), OutputStore(shared, enabled=True)


def client_of(store: OutputStore) -> TestClient:
    app = web.Application()
    app.router.add_get("/output/{name}", store.handler)
    return TestClient(TestServer(app))


def test_concurrent_saves_of_two_instances_never_collide(stores) -> None:
    """Request ids are uuid4s (what the service passes): 400 saves within the same second from both instances."""
    def save(i: int) -> tuple[str | None, bytes]:
        data = f"audio {i}".encode()
        return stores[i % 2].save(uuid.uuid4().hex, data, "wav"), data

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(save, range(400)))
    names = [name for name, _ in results]
    assert None not in names and len(set(names)) == 400
    assert all(NAME_RE.fullmatch(name) for name in names)
    directory = stores[0].directory
    for name, data in results:
        assert (directory / name).read_bytes() == data  # nobody's file replaced by another's
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)  # no temporary file left behind


async def test_a_download_url_from_one_instance_works_on_the_other(stores) -> None:
    a, b = stores
    audio = os.urandom(3 * CHUNK_BYTES + 17)
    name = a.save(uuid.uuid4().hex, audio, "wav")
    assert name is not None
    for store in (b, a):
        async with client_of(store) as client:
            resp = await client.get(f"/output/{name}")
            assert resp.status == 200 and resp.headers["Content-Type"] == "audio/wav"
            assert await resp.read() == audio
    async with client_of(b) as client:  # positive control: the other's unknown name is still a 404
        assert (await client.get("/output/20250101-000000-nosuchfile.wav")).status == 404


async def test_a_file_being_written_is_not_visible_to_the_other_instance(stores, monkeypatch) -> None:
    a, b = stores
    writing, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:  # instance A stalls mid-save, after writing, before the rename
        writing.set()
        release.wait(5)
        real_fsync(fd)

    monkeypatch.setattr(output_store.os, "fsync", slow_fsync)
    request_id = uuid.uuid4().hex
    saving = asyncio.create_task(asyncio.to_thread(a.save, request_id, b"complete audio", "wav"))
    assert await asyncio.to_thread(writing.wait, 5)
    [tmp] = list(a.directory.iterdir())
    assert TMP_RE.fullmatch(tmp.name) and not NAME_RE.fullmatch(tmp.name)
    final = tmp.name[1:].split(".wav.")[0] + ".wav"  # the name it will have
    async with client_of(b) as client:
        assert (await client.get(f"/output/{final}")).status == 404
        assert (await client.get(f"/output/{tmp.name}")).status == 404  # never served under its hidden name
        release.set()
        name = await asyncio.wait_for(saving, 5)
        assert name == final
        resp = await client.get(f"/output/{name}")  # positive control: complete, and now served
        assert resp.status == 200 and await resp.read() == b"complete audio"


def test_temporary_file_removed_under_a_writer_fails_that_save_only(stores, monkeypatch) -> None:
    """Should another instance's cleanup remove a temporary file being written, the rename fails: the save is
    reported as failed and no file appears under a final name."""
    a, _ = stores
    real_fsync = os.fsync

    def fsync_then_lose_the_file(fd: int) -> None:
        real_fsync(fd)
        for path in a.directory.iterdir():
            path.unlink()

    monkeypatch.setattr(output_store.os, "fsync", fsync_then_lose_the_file)
    assert a.save(uuid.uuid4().hex, b"lost", "wav") is None
    assert a.save_errors == 1 and list(a.directory.iterdir()) == []
    monkeypatch.setattr(output_store.os, "fsync", real_fsync)
    assert a.save(uuid.uuid4().hex, b"kept", "wav") is not None  # positive control


async def test_file_deleted_under_a_download_ends_it_short(stores, monkeypatch, caplog) -> None:
    """On NFS a read of a file another instance deleted fails with ESTALE: the download ends short, logged as
    such, never a 500 nor a traceback."""
    a, b = stores
    audio = os.urandom(3 * CHUNK_BYTES)
    name = a.save(uuid.uuid4().hex, audio, "wav")
    assert name is not None
    inode = (a.directory / name).stat().st_ino
    real_read, reads = os.read, []

    def stale_after_first_chunk(fd: int, n: int) -> bytes:
        if os.fstat(fd).st_ino == inode:
            reads.append(n)
            if len(reads) > 1:
                raise OSError(errno.ESTALE, os.strerror(errno.ESTALE))
        return real_read(fd, n)

    caplog.set_level(logging.INFO, logger="tts_ops.output_store")
    monkeypatch.setattr(output_store.os, "read", stale_after_first_chunk)
    async with client_of(b) as client:
        resp = await client.get(f"/output/{name}")
        assert resp.status == 200
        body = b""
        # The connection closes before Content-Length bytes: the client knows the download was cut short.
        with pytest.raises(aiohttp.ClientPayloadError):
            async for piece in resp.content.iter_any():
                body += piece
    assert len(reads) == 2 and body == audio[:len(body)] and len(body) < len(audio)
    assert any("became unreadable while served" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)
