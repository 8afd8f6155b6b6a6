"""The zygote's control messages: each survives the wire, and a malformed packet is a ValueError (the side that
reads it answers or drops it; it never crashes on one)."""

from __future__ import annotations

import pytest

from tts_vocab.zygote import ForkReply, ForkRequest, ZygoteReady


@pytest.mark.parametrize("message", [
    ZygoteReady(pid=1234, preload_s=2.5), ForkRequest(("--engine", "fastspeech2-baker", "--socket", "/run/w1.sock")),
    ForkReply(4321), ForkReply(None, "fork failed: [Errno 11] Resource temporarily unavailable"),
])
def test_messages_survive_the_wire(message):
    assert type(message).from_wire(message.to_wire()) == message


@pytest.mark.parametrize("cls, packet", [
    (ForkRequest, b'{"argv": "not a list"}'), (ForkRequest, b'{"argv": [1, 2]}'), (ForkRequest, b"[]"),
    (ZygoteReady, b'{"pid": 1}'), (ForkReply, b'{"error": "no pid key"}'), (ForkReply, b"\xff"),
])
def test_malformed_packets_are_value_errors(cls, packet):
    with pytest.raises(ValueError):
        cls.from_wire(packet)
