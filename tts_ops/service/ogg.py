"""Byte-level helpers for streamed audio (daemon process, pure Python, no numpy or libsndfile): joining the
per-chunk Ogg/Opus files the workers return into ONE logical Ogg stream, and the RIFF sizes of a finished WAV.

Why join instead of chaining: a chained Ogg file (one complete Ogg/Opus stream after another) is valid Ogg, but
libsndfile (hence soundfile, and every tool built on it) decodes only the first link, so a client would hear the
first sentence and nothing else. Rewriting the pages of chunks 2..n into the first chunk's logical stream
(serial number, page sequence, granule positions, CRC; their OpusHead/OpusTags dropped) gives a file every
decoder plays to the end, and costs one pass over a few kilobytes per chunk.

Granule positions are recomputed from the Opus packets themselves (the TOC byte gives each packet's length at
48 kHz), because every intermediate page must carry the running sample count. Only the very last page keeps an
end trim (from the last chunk's own final granule); the few milliseconds of encoder padding and pre-skip inside
the joined chunks stay audible as silence inside the inter-chunk pause.
"""

from __future__ import annotations

import struct

__all__ = ["OggOpusJoiner", "OggError", "ogg_crc", "opus_packet_samples", "wav_header"]

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, segments
_CONTINUED, _BOS, _EOS = 0x01, 0x02, 0x04
_NO_GRANULE = -1  # a page on which no packet ends


class OggError(ValueError):
    """Bytes that are not the Ogg/Opus a worker produces."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0 (unlike zlib's)."""
    crc, table = 0, _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


def opus_packet_samples(packet: bytes) -> int:
    """Samples at 48 kHz in one Opus packet (RFC 6716 section 3.1: TOC config and frame-count code)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # Hybrid: 10, 20 ms
        frame = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        frames = 1
    elif code in (1, 2):
        frames = 2
    else:
        frames = packet[1] & 0x3F if len(packet) > 1 else 0
    return frame * frames


class _Page:
    __slots__ = ("flags", "granule", "serial", "sequence", "lacing", "body")

    def __init__(self, flags: int, granule: int, serial: int, sequence: int, lacing: bytes, body: bytes) -> None:
        self.flags, self.granule, self.serial, self.sequence = flags, granule, serial, sequence
        self.lacing, self.body = lacing, body

    def encode(self) -> bytes:
        header = _PAGE_HEADER.pack(b"OggS", 0, self.flags, self.granule, self.serial, self.sequence, 0,
                                   len(self.lacing)) + self.lacing
        crc = ogg_crc(header + self.body)
        return header[:22] + struct.pack("<I", crc) + header[26:] + self.body


def _pages(data: bytes) -> list[_Page]:
    pages, pos = [], 0
    while pos < len(data):
        if len(data) - pos < _PAGE_HEADER.size:
            raise OggError(f"truncated Ogg page header at byte {pos}")
        capture, version, flags, granule, serial, sequence, _crc, count = _PAGE_HEADER.unpack_from(data, pos)
        if capture != b"OggS" or version != 0:
            raise OggError(f"no Ogg page at byte {pos}")
        lacing_start = pos + _PAGE_HEADER.size
        lacing = data[lacing_start:lacing_start + count]
        body_start = lacing_start + count
        body_end = body_start + sum(lacing)
        if len(lacing) != count or body_end > len(data):
            raise OggError(f"truncated Ogg page at byte {pos}")
        pages.append(_Page(flags, granule, serial, sequence, lacing, data[body_start:body_end]))
        pos = body_end
    if not pages:
        raise OggError("no Ogg pages")
    return pages


class OggOpusJoiner:
    """Feed each chunk's complete Ogg/Opus file in order; get back the bytes to send for it.

    The first chunk passes through with its headers; later chunks lose theirs and join its logical stream. The
    last page seen is held back until it is known whether more audio follows, so that exactly one page of the
    whole stream carries the end-of-stream flag and the end trim: ``add`` returns everything before it,
    ``finish`` returns it.
    """

    def __init__(self) -> None:
        self._serial: int | None = None
        self._sequence = 0
        self._samples = 0  # 48 kHz samples in every complete audio packet joined so far
        self._held: _Page | None = None
        self._held_trim = 0  # end trim the held page carries if it turns out to be the very last

    def add(self, data: bytes) -> bytes:
        pages = _pages(data)
        first = self._serial is None
        if self._serial is None:
            self._serial = pages[0].serial
        serial = self._serial  # the joined stream's one serial number, the first chunk's
        out: list[bytes] = []
        headers_seen = 0  # OpusHead, OpusTags; audio starts on a fresh page after them (RFC 7845 section 3)
        packet_head = b""  # first two bytes of the packet in progress (its TOC and, for code 3, frame count)
        in_packet = False
        chunk_samples = 0
        last_granule = _NO_GRANULE
        for page in pages:
            header_page = headers_seen < 2
            completed = ended = 0
            offset = 0
            for lace in page.lacing:
                if not in_packet:
                    packet_head, in_packet = b"", True
                if len(packet_head) < 2:
                    packet_head += page.body[offset:offset + min(lace, 2 - len(packet_head))]
                offset += lace
                if lace < 255:
                    in_packet = False
                    if headers_seen < 2:
                        headers_seen += 1
                    else:
                        completed += opus_packet_samples(packet_head)
                        ended += 1
            if header_page:
                if first:  # the first chunk's headers start the joined stream
                    out.append(self._emit(_Page(page.flags & ~_EOS, page.granule, serial, 0, page.lacing,
                                                page.body)))
                continue
            chunk_samples += completed
            if page.granule != _NO_GRANULE:
                last_granule = page.granule
            granule = self._samples + chunk_samples if ended else _NO_GRANULE
            page_out = _Page(page.flags & ~(_EOS | _BOS), granule, serial, 0, page.lacing, page.body)
            if self._held is not None:
                out.append(self._emit(self._held))
            self._held = page_out
        if headers_seen < 2:
            raise OggError("Ogg/Opus chunk without its OpusHead and OpusTags headers")
        self._samples += chunk_samples
        self._held_trim = max(0, chunk_samples - last_granule) if last_granule != _NO_GRANULE else 0
        return b"".join(out)

    def finish(self) -> bytes:
        """The held last page with the end-of-stream flag and the last chunk's end trim; b"" if none."""
        if self._held is None:
            return b""
        page, self._held = self._held, None
        page.flags |= _EOS
        if page.granule != _NO_GRANULE:
            page.granule = max(0, page.granule - self._held_trim)
        return self._emit(page)

    def _emit(self, page: _Page) -> bytes:
        page.sequence = self._sequence
        self._sequence += 1
        return page.encode()


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The 44-byte RIFF/WAVE PCM16 header with the real sizes, for a streamed WAV once its length is known."""
    block_align = channels * 2
    return (struct.pack("<4sI4s", b"RIFF", 36 + data_bytes, b"WAVE")
            + struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, channels, sample_rate, sample_rate * block_align,
                          block_align, 16)
            + struct.pack("<4sI", b"data", data_bytes))

