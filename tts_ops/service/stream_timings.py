"""Timestamps of a stream (daemon process, event loop, pure): each chunk's timings from its worker, placed after
the chunks before it and located in the request text, so that the events of a stream together cover every
character of the text once, in order, and end at the audio's duration.

A stream's chunks are stripped slices of the request text; what lies between them (whitespace, a chunk the worker
found unspeakable) gets zero-length entries at the time it falls, as the worker does inside a chunk.
"""

from __future__ import annotations

from tts_vocab.timings import Timing, Timings

__all__ = ["StreamTimings"]


class StreamTimings:
    """Collects the per-chunk timings of one stream over ``text``; ``add`` and ``finish`` return the part to send."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._cursor = 0
        self._chars: list[Timing] = []
        self._words: list[Timing] = []

    def add(self, chunk_text: str, timings: Timings, offset_s: float) -> Timings:
        """A chunk's timings (counted from its own start), placed ``offset_s`` into the stream."""
        position = self.text.find(chunk_text, self._cursor)
        if position < 0:  # a chunk that is not the next part of the text: the caller treats it as an upstream fault
            raise ValueError(f"chunk {chunk_text[:20]!r} is not in the text after character {self._cursor}")
        shifted = timings.shifted(offset_s)
        part = Timings(self._gap(position, offset_s) + shifted.chars, shifted.words)
        self._cursor = position + len(chunk_text)
        self._chars += part.chars
        self._words += part.words
        return part

    def finish(self, end_s: float) -> Timings:
        """The characters after the last chunk (zero-length, at ``end_s``)."""
        part = Timings(self._gap(len(self.text), end_s))
        self._chars += part.chars
        return part

    def whole(self) -> Timings:
        """Everything added so far, as the cache stores it with the stream's audio."""
        return Timings(tuple(self._chars), tuple(self._words))

    def _gap(self, upto: int, at_s: float) -> tuple[Timing, ...]:
        if upto <= self._cursor:
            return ()
        gap = Timing(self.text[self._cursor:upto], round(at_s, 4), round(at_s, 4))
        self._cursor = upto
        return (gap,)
