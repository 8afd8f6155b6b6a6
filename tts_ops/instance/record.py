"""The files through which the CLI finds a running instance (daemon writes them, CLI reads them).

``<paths.state_dir>/<instance.name>.json`` (the instance record: pid, public and admin URLs, where the admin token
is) and, when the daemon generated its token, the token file. Both are written once the daemon holds its runtime
lock and both ports, so a second daemon started by mistake never replaces them; both are removed at exit only if
they are still the ones this daemon wrote: a daemon never deletes a file another instance created.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("tts_ops.daemon")

RECORD_SUFFIX = ".json"


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` atomically (temporary file + rename), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def record_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}{RECORD_SUFFIX}"


def client_host(host: str) -> str:
    """Where a client on this host connects for a listener bound to ``host`` (a wildcard means loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class InstanceRecord:
    """What the CLI needs to reach one instance; ``token_file`` is None when the token is configured (never on
    disk: the CLI takes it from the same config or environment)."""

    name: str
    pid: int
    public_url: str
    admin_url: str
    token_file: str | None
    started_at: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> InstanceRecord:
        """The record in ``text``; ValueError naming what is wrong (a truncated or foreign file)."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        types: dict[str, type | tuple[type, ...]] = {"name": str, "pid": int, "public_url": str, "admin_url": str,
                                                     "started_at": (int, float)}
        for key, kind in types.items():
            if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
                raise ValueError(f"{key}: missing or of the wrong type")
        token_file = data.get("token_file")
        if token_file is not None and not isinstance(token_file, str):
            raise ValueError("token_file: expected a path or null")
        return cls(data["name"], data["pid"], data["public_url"], data["admin_url"], token_file,
                   float(data["started_at"]))

    def alive(self) -> bool:
        """Whether the recorded pid still runs (a daemon killed with -9 leaves its record behind)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's process: alive, though not necessarily ours
        return True


def read_record(path: Path) -> InstanceRecord | None:
    """The record at ``path``, None if there is none; ValueError naming the file if it cannot be read."""
    try:
        return InstanceRecord.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable instance record ({exc})") from None


def list_records(state_dir: Path) -> list[tuple[Path, InstanceRecord | None]]:
    """Every instance record in ``state_dir`` (None for an unreadable one), by name."""
    found: list[tuple[Path, InstanceRecord | None]] = []
    for path in sorted(state_dir.glob(f"*{RECORD_SUFFIX}")):
        try:
            found.append((path, read_record(path)))
        except ValueError:
            found.append((path, None))
    return found


class InstanceFiles:
    """The daemon's side: publish the record (and a generated token) once the ports are ours; withdraw at exit."""

    def __init__(self, record_file: Path, token_file: Path, token: str, *, generated: bool) -> None:
        self.record_file = record_file
        self.token_file = token_file
        self._token = token
        self._generated = generated
        self._published = False

    def publish(self, name: str, public_url: str, admin_url: str) -> None:
        if self._generated:
            write_private_file(self.token_file, self._token + "\n")
        record = InstanceRecord(name, os.getpid(), public_url, admin_url,
                                str(self.token_file) if self._generated else None, time.time())
        write_private_file(self.record_file, record.to_json())
        self._published = True

    def withdraw(self) -> None:
        """Remove what this daemon wrote, if it is still there unchanged. Best effort: logged, never raised."""
        if not self._published:
            return
        self._published = False
        try:
            record = read_record(self.record_file)
            if record is not None and record.pid == os.getpid():
                self.record_file.unlink()
        except (OSError, ValueError) as exc:
            log.warning("instance record %s not removed: %s", self.record_file, exc)
        if not self._generated:
            return
        try:
            if self.token_file.read_text().strip() == self._token:
                self.token_file.unlink()
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("token file %s not removed: %s", self.token_file, exc)
