"""Per-format assembly of streamed chunks (daemon process): what the workers are asked for, and how the chunks
become the bytes sent to the client and the whole file stored in the cache.

How each format is streamed (what the workers are asked for -> what the client gets):

- ``wav``: PCM16 -> a WAV header with unknown sizes (0xFFFFFFFF, as ffmpeg and OpenAI do) then the samples. The
  cached copy has the real RIFF/data sizes.
- ``pcm``: PCM16 -> the raw samples (s16le, mono, rate in ``X-Sample-Rate``).
- ``mp3``: PCM16 -> ONE constant-bitrate MP3 encoder in the front end (a thread, ~1 % of real time). Per-chunk
  MP3 files from the workers do not concatenate usefully: libsndfile's VBR output starts with a Xing header whose
  frame count makes decoders (libsndfile, mpg123) stop after the first chunk, and without it libsndfile guesses
  the length of VBR audio from the first frame's bitrate. CBR needs no header, has no gaps between chunks, and
  every decoder reads it to the end.
- ``opus``: Ogg/Opus per chunk from the workers -> joined into one logical Ogg stream (``openai_ogg``), because
  libsndfile decodes only the first link of a chained Ogg file.
- ``flac``: PCM16 -> buffered, encoded once when the last chunk is in. FLAC's STREAMINFO (total samples, MD5) and
  its frame numbering cannot be continued across separately encoded files, so flac gains the parallel synthesis
  but not an early first byte; it is sent as one body.
"""

from __future__ import annotations

import abc
import asyncio
import io
import threading
from dataclasses import dataclass
from typing import Any

from inference.audio import wav_stream_header
from tts_ops.service.ogg import OggOpusJoiner, wav_header
from tts_vocab import FORMATS, SynthesisReply

#: Constant-bitrate MP3 for streams: libsndfile's compression level 0.75 = 48 kbit/s at 16 and 24 kHz.
MP3_COMPRESSION_LEVEL = 0.75


@dataclass
class ChunkAudio:
    index: int
    data: bytes
    worker_id: str
    #: The worker's reply metadata (rate, duration, synthesis time, model, unreadable characters).
    reply: SynthesisReply

    @property
    def sample_rate(self) -> int:
        return self.reply.sample_rate

    @property
    def duration_s(self) -> float:
        return self.reply.duration_s


# --- per-format assembly ----------------------------------------------------------------------------------------


class Assembler(abc.ABC):
    """Turns chunk audio (in the wire format) into the bytes to send, and remembers the whole file for the
    cache. ``streams`` is False for formats sent as one body once complete (flac)."""

    streams = True

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        self.content_type = FORMATS[fmt].content_type
        self.sent: list[bytes] = []
        self.sample_rate = 0

    wire_format = "pcm"

    @abc.abstractmethod
    async def add(self, chunk: ChunkAudio) -> bytes:
        """Bytes to send now for this chunk (possibly empty: encoders and flac hold audio back)."""

    async def finish(self) -> bytes:
        return b""

    def complete(self) -> bytes:
        """The whole file as sent (or as it should be cached)."""
        return b"".join(self.sent)

    def close(self) -> None:  # noqa: B027 - a hook with nothing to release by default, not an abstract method
        """Release encoder resources (after an abort too)."""

    def _out(self, data: bytes) -> bytes:
        if data:
            self.sent.append(data)
        return data


class PcmAssembler(Assembler):
    async def add(self, chunk: ChunkAudio) -> bytes:
        self.sample_rate = self.sample_rate or chunk.sample_rate
        return self._out(chunk.data)


class WavAssembler(Assembler):
    async def add(self, chunk: ChunkAudio) -> bytes:
        if not self.sample_rate:
            self.sample_rate = chunk.sample_rate
            return self._out(wav_stream_header(chunk.sample_rate) + chunk.data)
        return self._out(chunk.data)

    def complete(self) -> bytes:
        data = b"".join(self.sent)[44:]
        return wav_header(self.sample_rate, len(data)) + data


class OpusAssembler(Assembler):
    wire_format = "opus"

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.joiner = OggOpusJoiner()

    async def add(self, chunk: ChunkAudio) -> bytes:
        self.sample_rate = self.sample_rate or chunk.sample_rate
        return self._out(self.joiner.add(chunk.data))

    async def finish(self) -> bytes:
        return self._out(self.joiner.finish())


class Mp3Assembler(Assembler):
    """One CBR encoder for the whole stream, fed PCM16 chunk by chunk in a thread; LAME holds back about a frame,
    which comes out with the next chunk or at ``finish``.

    The encoder is only ever touched by one thread at a time: a cancelled ``add`` (client gone) cannot stop the
    thread already inside LAME, and closing the encoder under it is a use-after-free that kills the daemon
    (SIGSEGV / LAME assertion). So every use holds ``_lock``, which only worker threads take (the loop never
    blocks on it), and ``close()`` closes the encoder in a thread too, after any encode in progress."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.buffer = io.BytesIO()
        self.encoder: Any = None
        self.taken = 0
        self._lock = threading.Lock()
        # Set on the loop, read under the lock: an encode that starts after close() (queued in the executor
        # when its caller was cancelled) must not open a new encoder nobody would close.
        self._closed = False

    def _encode(self, pcm: bytes, final: bool) -> bytes:
        # Heavy (libsndfile, ~50 ms): only a daemon that streams mp3/flac loads it, on first use.
        import numpy as np
        import soundfile as sf

        with self._lock:
            if self._closed:
                raise RuntimeError("mp3 encoder already closed")
            if self.encoder is None:
                self.encoder = sf.SoundFile(self.buffer, "w", self.sample_rate, 1, format="MP3",
                                            subtype="MPEG_LAYER_III", compression_level=MP3_COMPRESSION_LEVEL,
                                            bitrate_mode="CONSTANT")
            if pcm:
                self.encoder.write(np.frombuffer(pcm, dtype="<i2"))
            if final:
                self.encoder.close()
                self.encoder = None
            data = self.buffer.getvalue()
            new, self.taken = data[self.taken:], len(data)
            return new

    async def add(self, chunk: ChunkAudio) -> bytes:
        self.sample_rate = self.sample_rate or chunk.sample_rate
        return self._out(await asyncio.to_thread(self._encode, chunk.data, False))

    async def finish(self) -> bytes:
        if not self.sample_rate:
            return b""
        return self._out(await asyncio.to_thread(self._encode, b"", True))

    def _close_encoder(self) -> None:
        with self._lock:  # waits (in a worker thread) for an encode still running for a cancelled add()
            encoder, self.encoder = self.encoder, None
            if encoder is not None:
                try:
                    encoder.close()
                except Exception:  # an encoder abandoned mid-stream: nothing left to save
                    pass

    def close(self) -> None:
        self._closed = True
        if not self.sample_rate:
            return  # never fed: no encoder was or will be created
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to keep responsive: close here
            self._close_encoder()
            return
        # Not awaited (close() is called from cleanup code that must not wait): _close_encoder never raises, and
        # the executor holds the job until it has run.
        try:
            loop.run_in_executor(None, self._close_encoder)
        except RuntimeError:  # the loop's executor is already shut down (daemon exit): a thread of its own
            threading.Thread(target=self._close_encoder, name="mp3-close", daemon=True).start()


class FlacAssembler(Assembler):
    """Its thread encodes into a buffer of its own and nothing holds an encoder between calls, so a cancelled
    ``finish`` leaves nothing for ``close`` to race with (unlike mp3)."""

    streams = False

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.pcm: list[bytes] = []

    async def add(self, chunk: ChunkAudio) -> bytes:
        self.sample_rate = self.sample_rate or chunk.sample_rate
        self.pcm.append(chunk.data)
        return b""

    def _encode(self) -> bytes:
        # Heavy (libsndfile): loaded on first use, as above.
        import numpy as np
        import soundfile as sf

        buffer = io.BytesIO()
        sf.write(buffer, np.frombuffer(b"".join(self.pcm), dtype="<i2"), self.sample_rate, format="FLAC",
                 subtype="PCM_16")
        return buffer.getvalue()

    async def finish(self) -> bytes:
        return self._out(await asyncio.to_thread(self._encode))


ASSEMBLERS: dict[str, type[Assembler]] = {"wav": WavAssembler, "pcm": PcmAssembler, "mp3": Mp3Assembler,
                                          "opus": OpusAssembler, "flac": FlacAssembler}
