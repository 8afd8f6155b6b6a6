"""Saved synthesized audio (daemon process, event loop): writes each result to ``output.dir`` and serves it back
at ``GET /output/{name}``.

Every name on disk is generated here from a validated request id and a whitelisted extension, so the only
names this module ever resolves, serves or lets the maintenance jobs delete are ones matching ``NAME_RE``:
no slashes, no dots besides the extension, never a symlink. Writes are atomic (temporary file + ``os.replace``)
and run in a worker thread; ``resolve`` is cheap (one ``lstat``) but the handler still runs it off the loop so
a slow disk never stalls other requests. ``paused`` is owned by the disk guard (``tts_ops.maintenance``).
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

__all__ = ["OutputStore", "NAME_RE", "TMP_RE", "CONTENT_TYPES"]

log = logging.getLogger("tts_ops.output_store")

# Extension -> content type; the same types inference/audio.py sends when streaming the audio back.
CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg", "mp3": "audio/mpeg", "pcm": "audio/pcm"}
# Format names the rest of the code uses (inference/audio.py) mapped onto the whitelist: Opus lives in Ogg.
_EXT_ALIASES = {"opus": "ogg", "wave": "wav", "s16le": "pcm", "raw": "pcm"}
_EXTS = "|".join(CONTENT_TYPES)
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# YYYYMMDD-HHMMSS (UTC) - request id . extension. Used with fullmatch: "$" would accept a trailing newline.
NAME_RE = re.compile(rf"\d{{8}}-\d{{6}}-[A-Za-z0-9_-]{{1,64}}\.(?:{_EXTS})")
# In-progress writes: hidden (never served) but still ours, so the cleanup may remove ones left by a crash.
TMP_RE = re.compile(rf"\.(?:{NAME_RE.pattern})\.[0-9a-f]{{32}}\.tmp")
FILE_MODE = 0o640
DIR_MODE = 0o750


def _normalize_ext(fmt_ext: str) -> str:
    ext = fmt_ext.strip().lower().lstrip(".")
    ext = _EXT_ALIASES.get(ext, ext)
    if ext not in CONTENT_TYPES:
        raise ValueError(f"unsupported output extension {fmt_ext!r}; allowed: {', '.join(CONTENT_TYPES)}")
    return ext


class OutputStore:
    """Saved outputs in one flat directory. ``enabled`` = config ``output.save`` (the daemon sets it again on a
    reload); ``paused`` = disk guard."""

    def __init__(self, directory: Path, *, enabled: bool) -> None:
        self.directory = Path(directory)
        self._enabled = bool(enabled)
        self.paused = False
        self.saved = 0
        self.save_errors = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        # Set on the event loop; a save already running in a thread finishes, the next one sees the new value.
        value = bool(value)
        if value != self._enabled:
            log.info("saving outputs to %s %s", self.directory, "enabled" if value else "disabled")
        self._enabled = value

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
        id saved twice within a second replaces the first file.
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

    def resolve(self, name: str) -> Path | None:
        """Path of a saved output, or None unless ``name`` is one of ours and is a regular file (no symlink)
        directly inside the directory. Blocking (lstat/open): the handler calls it in a thread."""
        if not self.is_output_name(name):
            return None
        path = self.directory / name
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            # Re-check through an O_NOFOLLOW descriptor: narrows the lstat-then-open window and refuses a
            # symlink swapped in meanwhile. O_NONBLOCK so a FIFO planted under the name cannot hang us.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
            finally:
                os.close(fd)
        except OSError:
            return None
        # The name has no separator, so this holds by construction; kept as the last line of defence.
        if path.parent != self.directory:
            return None
        return path

    async def handler(self, request: web.Request) -> web.StreamResponse:
        """``GET /output/{name}``: the file with its content type, or 404 JSON for anything else."""
        name = request.match_info.get("name", "")
        path = await asyncio.to_thread(self.resolve, name)
        if path is None:
            return web.json_response({"error": "not found"}, status=404)
        ext = name.rsplit(".", 1)[1]
        return web.FileResponse(path, headers={
            "Content-Type": CONTENT_TYPES[ext],
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="{name}"',
        })
