"""The zygote's control messages (daemon and zygote processes): what crosses the control socket between the
supervisor and ``python -m inference.zygote``.

The socket is one end of a ``SOCK_SEQPACKET`` socketpair the daemon creates and hands to the zygote: each message
is one packet of UTF-8 JSON, so no framing is needed, and a fork request carries one file descriptor (the write
end of the pipe that becomes the worker's stdout and stderr) as ``SCM_RIGHTS`` ancillary data.

    zygote -> daemon   ZygoteReady    once, after the preload; a zygote that cannot preload exits 3 instead
    daemon -> zygote   ForkRequest    the worker's command-line arguments (``python -m inference.worker ARGS``)
    zygote -> daemon   ForkReply      the new worker's pid, or why no worker was forked
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["MAX_PACKET_BYTES", "ForkReply", "ForkRequest", "ZygoteReady"]

#: Largest control packet either side reads; a worker's arguments (engine options included) stay far below it.
MAX_PACKET_BYTES = 1 << 16


def _decode(packet: bytes, *keys: str) -> dict[str, object]:
    body = json.loads(packet.decode("utf-8"))
    if not isinstance(body, dict) or not set(keys) <= set(body):
        raise ValueError(f"control packet lacks {', '.join(keys)}: {packet[:200]!r}")
    return body


@dataclass(frozen=True)
class ZygoteReady:
    pid: int
    preload_s: float

    def to_wire(self) -> bytes:
        return json.dumps({"ready": True, "pid": self.pid, "preload_s": self.preload_s}).encode()

    @classmethod
    def from_wire(cls, packet: bytes) -> ZygoteReady:
        body = _decode(packet, "ready", "pid", "preload_s")
        return cls(int(str(body["pid"])), float(str(body["preload_s"])))


@dataclass(frozen=True)
class ForkRequest:
    argv: tuple[str, ...]

    def to_wire(self) -> bytes:
        return json.dumps({"argv": list(self.argv)}).encode()

    @classmethod
    def from_wire(cls, packet: bytes) -> ForkRequest:
        argv = _decode(packet, "argv")["argv"]
        if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
            raise ValueError("fork request argv must be a list of strings")
        return cls(tuple(argv))


@dataclass(frozen=True)
class ForkReply:
    pid: int | None
    error: str | None = None

    def to_wire(self) -> bytes:
        return json.dumps({"pid": self.pid, "error": self.error}).encode()

    @classmethod
    def from_wire(cls, packet: bytes) -> ForkReply:
        body = _decode(packet, "pid")
        pid, error = body["pid"], body.get("error")
        return cls(int(pid) if isinstance(pid, int) else None, str(error) if error is not None else None)
