"""Saved synthesized audio (daemon process, event loop): writes each result to ``output.dir`` and serves it back
at ``GET /output/{name}``.

Every name on disk is generated here from a validated request id and a whitelisted extension, so the only
names this module ever resolves, serves or lets the maintenance jobs delete are ones matching ``NAME_RE``:
no slashes, no dots besides the extension, never a symlink. Writes are atomic (temporary file + ``os.replace``)
and run in a worker thread; serving opens the file once (O_NOFOLLOW) and streams from that descriptor, with
the open and the reads off the loop so a slow disk never stalls other requests. ``paused`` is owned by the disk
guard (``tts_ops.maintenance.scheduler``).

Several instances behind a load balancer share saved outputs through one directory: every instance is configured
with the same ``output.dir`` on a shared mount (NFS or similar), so a download URL handed out by one instance works
on any of them. What makes that safe without coordination between instances:
  * names are collision-free across instances: the service names each file after its own request id, a uuid4
    (122 random bits, never the client's X-Request-ID), so instances need no host part or shared counter;
  * a file appears under its final name only complete: it is written and fsynced under a hidden per-write
    temporary name (``TMP_RE``, never served) in the same directory, then renamed atomically. A reader on any
    instance sees the whole file or none (NFS's close-to-open consistency gives the same after the rename);
  * cleanup and the disk guard run on every instance and may delete concurrently; a file another instance removed
    first is skipped silently (``tts_ops.maintenance.jobs``), and a temporary file is only deleted once it is an
    hour old (``TMP_MAX_AGE_S``), far beyond any write in progress. Should one be removed under a writer anyway,
    the rename fails and that save is reported as failed: never a half-written file under a served name;
  * a file deleted while another instance streams it ends that download short, like a truncation.
Requirements: every instance runs as a user that can read and write the directory (files are 0640, the directory
0750: one user, or one group), and host clocks are synchronised (NTP), since retention compares file times (set by
the file server) with each host's clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
import time
import uuid
from pathlib import Path

from aiohttp import web

from tts_vocab.errors import InvalidRequest
from tts_vocab.formats import CONTENT_TYPE_BY_EXTENSION, extension_for

__all__ = ["OutputStore", "NAME_RE", "TMP_RE", "CONTENT_TYPES"]

log = logging.getLogger("tts_ops.output_store")

# Extension -> content type: the shared format table's, so a saved file is served as the audio was answered.
CONTENT_TYPES = CONTENT_TYPE_BY_EXTENSION
_EXTS = "|".join(CONTENT_TYPES)
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# YYYYMMDD-HHMMSS (UTC) - request id . extension. Used with fullmatch: "$" would accept a trailing newline.
NAME_RE = re.compile(rf"\d{{8}}-\d{{6}}-[A-Za-z0-9_-]{{1,64}}\.(?:{_EXTS})")
# In-progress writes: hidden (never served) but still ours, so the cleanup may remove ones left by a crash.
TMP_RE = re.compile(rf"\.(?:{NAME_RE.pattern})\.[0-9a-f]{{32}}\.tmp")
FILE_MODE = 0o640
DIR_MODE = 0o750
CHUNK_BYTES = 256 * 1024


def _normalize_ext(fmt_ext: str) -> str:
    # A format name in any spelling (opus, wave, s16le) or an extension (ogg): both map onto the whitelist.
    try:
        return extension_for(fmt_ext.strip().lower().lstrip("."))
    except InvalidRequest:
        raise ValueError(f"unsupported output extension {fmt_ext!r}; allowed: {', '.join(CONTENT_TYPES)}") from None


class OutputStore:
    """Saved outputs in one flat directory. ``enabled`` = config ``output.save`` (``apply`` takes a reloaded one);
    ``paused`` = disk guard."""

    def __init__(self, directory: Path, *, enabled: bool) -> None:
        self.directory = Path(directory)
        self._enabled = bool(enabled)
        self._paused = False
        self.saved = 0
        self.save_errors = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def paused(self) -> bool:
        """True while the disk guard holds saving off (low disk)."""
        return self._paused

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def apply(self, directory: Path, *, enabled: bool) -> None:
        """Take over a reloaded ``output.dir`` and ``output.save``. Called on the event loop; a save already running
        in a thread finishes where it started, the next one sees the new values. Files in a previous directory
        stay where they are, no longer served nor cleaned up."""
        directory = Path(directory)
        if directory != self.directory:
            log.warning("SIGHUP: outputs are now saved to %s; files in %s are no longer served nor cleaned up",
                        directory, self.directory)
            self.directory = directory
        enabled = bool(enabled)
        if enabled != self._enabled:
            log.info("saving outputs to %s %s", self.directory, "enabled" if enabled else "disabled")
        self._enabled = enabled

    # -- names -------------------------------------------------------------------------------------------

    @staticmethod
    def make_name(request_id: str, fmt_ext: str, *, now: float | None = None) -> str:
        """The file name for a request: only the (validated) id and a whitelisted extension reach the disk."""
        ext = _normalize_ext(fmt_ext)
        if not isinstance(request_id, str) or not REQUEST_ID_RE.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
        return f"{stamp}-{request_id}.{ext}"

    @staticmethod
    def is_output_name(name: str) -> bool:
        return isinstance(name, str) and NAME_RE.fullmatch(name) is not None

    # -- saving ------------------------------------------------------------------------------------------

    def save(self, request_id: str, data: bytes, fmt_ext: str) -> str | None:
        """Write ``data`` atomically; the file name, or None when disabled, paused or the write failed.

        Blocking: call it from a thread (``save_async``). A failed write is logged, not raised, because the
        caller has already got its audio and saving is a side effect. ValueError for an extension outside the
        whitelist (a caller bug, not a runtime condition). Names have one-second resolution: the same request
        id saved twice within a second replaces the first file, so callers pass a unique id (the service its
        uuid4 server id), which also keeps instances sharing the directory from ever replacing each other's files.
        """
        if not self.enabled or self.paused:
            return None
        name = self.make_name(request_id, fmt_ext)
        tmp = self.directory / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)  # the umask may have narrowed it; the group reads saved audio
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                # Without it a power loss after the rename can leave an empty file under the final name.
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.directory / name)
        except OSError as exc:
            self.save_errors += 1
            log.warning("could not save output %s: %s", name, exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return None
        self.saved += 1
        return name

    async def save_async(self, request_id: str, data: bytes, fmt_ext: str) -> str | None:
        if not self.enabled or self.paused:  # skip the thread hop in the common "saving off" case
            return None
        return await asyncio.to_thread(self.save, request_id, data, fmt_ext)

    # -- serving -----------------------------------------------------------------------------------------

    def open_output(self, name: str) -> tuple[int, os.stat_result] | None:
        """An open read-only descriptor of a saved output and its ``fstat``, or None unless ``name`` is one of
        ours and is a regular file directly inside the directory. The caller closes the descriptor.

        The descriptor is what gets served: checking a path and then serving the path again (re-stat, reopen)
        would follow a symlink swapped in between. O_NOFOLLOW refuses a symlink as the last component (the name
        has no separator, so that is the only component we do not control); O_NONBLOCK so a FIFO planted under
        the name cannot hang us. Blocking: called in a thread."""
        if not self.is_output_name(name):
            return None
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # missing, a symlink (ELOOP), unreadable
            return None
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return fd, st

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """``GET /output/{name}``: the file with its content type, or 404 JSON for anything else.

        Streamed from the descriptor ``open_output`` checked, in chunks read off the loop. Deliberately not
        ``web.FileResponse``: it re-stats and reopens the path (following a symlink swapped in after the check)
        and serves a sibling ``<name>.gz`` to clients accepting gzip. No Range support: whole files only."""
        name = request.match_info.get("name", "")
        opened = await asyncio.to_thread(self.open_output, name)
        if opened is None:
            return web.json_response({"error": "not found"}, status=404)
        fd, st = opened
        try:
            response = web.StreamResponse(headers={
                "Content-Type": CONTENT_TYPES[name.rsplit(".", 1)[1]],
                "X-Content-Type-Options": "nosniff",
                "Content-Disposition": f'inline; filename="{name}"',
            })
            # The size of the file we opened: a concurrent os.replace swaps the name, not this inode.
            response.content_length = st.st_size
            await response.prepare(request)
            if request.method != "HEAD":
                remaining = st.st_size
                while remaining > 0:
                    try:
                        chunk = await asyncio.to_thread(os.read, fd, min(CHUNK_BYTES, remaining))
                    except OSError as exc:
                        # On a shared NFS directory another instance's cleanup can delete the file under us
                        # (ESTALE): like a truncation, a short body for the client, not a traceback for us.
                        log.info("saved output %s became unreadable while served: %s", name, exc)
                        break
                    if not chunk:  # truncated under us; the client sees a short body, not our error
                        break
                    remaining -= len(chunk)
                    await response.write(chunk)
                if remaining > 0:
                    # Fewer bytes than the Content-Length sent: closing the connection is what tells the client
                    # (on a kept-alive one it would wait for the rest forever).
                    response.force_close()
            await response.write_eof()
            return response
        finally:
            os.close(fd)
