"""The stream assemblers cover the whole format table (tts_vocab.formats)."""

from __future__ import annotations

from tts_ops.service.assemblers import ASSEMBLERS
from tts_vocab import FORMATS


def test_every_format_can_be_streamed():
    # Keyed by format name: a format added to the table must get an assembler, or streaming it would be a KeyError
    # (a 500) instead of audio.
    assert set(ASSEMBLERS) == set(FORMATS)
