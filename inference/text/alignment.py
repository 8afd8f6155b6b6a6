"""Timestamps: the acoustic model's per-symbol durations mapped back to the characters of the request text.

Runs in the worker process and in-process for ``tts-ops synth`` (pure Python plus the frontend's chunks).

Three steps, each exact rather than estimated:

1. ``align_piece``: inside one model call. The normaliser rewrites spans ("2024年" -> "二零二四年", "3.5%" ->
   "百分之三点五") without telling where; a character diff of the raw slice against its normalised form
   (``difflib``, monotonic by construction) pairs equal characters one to one and each rewritten span as a
   whole. The G2P names the span of the normalised text every symbol was read from (``SentenceReading.owners``),
   so a symbol's duration (in mel frames) goes to the unit of source characters that produced it; units a
   multi-character reading spans (an English word read as a word, an erhua syllable) are merged first. A break
   symbol belongs to its punctuation mark; ``#0`` and the closing ``eos`` extend the unit before them, so every
   entry's end includes the silence that follows it. Characters that produced no symbol (whitespace, a second
   comma, an emoji the voice skips) get a zero-length entry where they stand.
2. ``Timeline``: the pieces of a request in audio order, with the silences the engine inserts between them (model
   pieces of a chunk, chunks of a text, a stream chunk's pause), located in the request text in order. Times are
   in samples until the end, so they add up to the audio's length exactly.
3. ``words``: the same timeline per word, after word segmentation (jieba, as the G2P segments for sandhi).

Speed: the model's duration output is already multiplied by its duration ratio; the time stretch after the
vocoder (inference/prosody.py) moves times by its time map, which ``Timeline.stretched`` applies (pauses shrink
more than speech at a fast speed).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from inference.text import words as segmenter
from tts_vocab.timings import Timing

Span = tuple[int, int]

# What the diff compares: an ASCII run with its inner separators as one atom ("2024", "3.5%", "OK", "1,000"), any
# other character alone. A number's "." then never pairs with the "." the normaliser writes for 。.
_ATOM = re.compile(r"[A-Za-z0-9]+(?:[.:,/%-][A-Za-z0-9]+)*%?|.", re.DOTALL)
# The normaliser's own character rewrites (full width to ASCII, 。 to "."), applied to both sides before comparing.
_FOLD = str.maketrans({"。": "."})


@dataclass(frozen=True)
class Segment:
    """Characters ``[start, end)`` of a piece's text, sounding from ``t0`` to ``t1`` (frames or samples)."""

    start: int
    end: int
    t0: int
    t1: int


def align_piece(text: str, normalized: str, owners: Sequence[Span | None], durations: Sequence[int]) -> list[Segment]:
    """Segments covering ``text`` in order, times in mel frames from the start of this model call; the last one ends
    at ``sum(durations)``. ``owners`` and ``durations`` have one entry per input symbol."""
    if len(owners) != len(durations):
        raise ValueError(f"{len(owners)} symbol owners for {len(durations)} durations")
    units = _merge_spanned(_diff_units(text, normalized), owners)
    unit_of = {j: index for index, (_, (j0, j1)) in enumerate(units) for j in range(j0, j1)}
    starts: list[int | None] = [None] * len(units)
    ends: list[int] = [0] * len(units)
    elapsed, last = 0, None
    for owner, frames in zip(owners, durations, strict=True):
        unit = unit_of.get(owner[0]) if owner is not None else None
        if unit is None:
            unit = last  # #0, the closing eos: the pause after the unit before; the opening sil: before speech
        elif starts[unit] is None:
            starts[unit] = elapsed
        elapsed += int(frames)
        if unit is not None:
            ends[unit], last = elapsed, unit
    spoken = [start for start in starts if start is not None]
    cursor = spoken[0] if spoken else elapsed
    segments = []
    for ((i0, i1), _), start, end in zip(units, starts, ends, strict=True):
        t0 = cursor if start is None else max(start, cursor)
        t1 = t0 if start is None else max(end, t0)
        segments.append(Segment(i0, i1, t0, t1))
        cursor = t1
    return segments


def _diff_units(text: str, normalized: str) -> list[tuple[Span, Span]]:
    """(source span, normalised span) pairs covering both strings in order: one per unchanged character, one per
    rewritten span. Normalised text inserted from nothing joins the unit before it (the first unit if none)."""
    units: list[tuple[Span, Span]] = []
    orphan_start: int | None = None
    source, target = _atoms(text), _atoms(normalized)
    matcher = difflib.SequenceMatcher(None, [key for key, _ in source], [key for key, _ in target], autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        i0, i1 = _chars(source, a0, a1, len(text))
        j0, j1 = _chars(target, b0, b1, len(normalized))
        if tag == "equal":
            units.extend((source[a][1], target[b][1]) for a, b in zip(range(a0, a1), range(b0, b1), strict=True))
        elif i1 > i0:
            units.append(((i0, i1), (j0, j1)))
        elif units:
            (s0, s1), (n0, _) = units[-1]
            units[-1] = ((s0, s1), (n0, j1))
        else:
            orphan_start = j0
    if orphan_start is not None and units:
        (s0, s1), (_, n1) = units[0]
        units[0] = ((s0, s1), (orphan_start, n1))
    return units


def _atoms(text: str) -> list[tuple[str, Span]]:
    return [(unicodedata.normalize("NFKC", m.group()).translate(_FOLD), m.span()) for m in _ATOM.finditer(text)]


def _chars(atoms: list[tuple[str, Span]], first: int, end: int, length: int) -> Span:
    """The character span of atoms ``[first, end)``; an empty range sits where the next atom starts."""
    if first < end:
        return atoms[first][1][0], atoms[end - 1][1][1]
    position = atoms[first][1][0] if first < len(atoms) else length
    return position, position


def _merge_spanned(units: list[tuple[Span, Span]], owners: Sequence[Span | None]) -> list[tuple[Span, Span]]:
    """Units joined where one symbol was read from characters of several (a word read whole, an erhua syllable),
    so that a symbol's time has exactly one owner."""
    joined = [False] * len(units)  # joined[k]: unit k is merged into unit k - 1
    first_unit = {}
    for index, (_, (j0, j1)) in enumerate(units):
        for j in range(j0, j1):
            first_unit[j] = index
    for owner in dict.fromkeys(owner for owner in owners if owner is not None and owner[1] - owner[0] > 1):
        covered = [first_unit[j] for j in range(*owner) if j in first_unit]
        for k in range(min(covered, default=0) + 1, max(covered, default=0) + 1):
            joined[k] = True
    merged: list[tuple[Span, Span]] = []
    for index, ((i0, i1), (j0, j1)) in enumerate(units):
        if joined[index] and merged:
            (m0, _), (n0, _) = merged[-1]
            merged[-1] = ((m0, i1), (n0, max(j1, merged[-1][1][1])))
        else:
            merged.append(((i0, i1), (j0, j1)))
    return merged


class Timeline:
    """The timestamps of one synthesis, built in audio order: ``piece`` for each model call's segments (times in
    frames of ``hop`` samples), ``silence`` for inserted pauses. Pieces are located in ``text`` in order;
    characters between them (whitespace, a chunk with nothing speakable) get zero-length entries."""

    def __init__(self, text: str, sample_rate: int) -> None:
        self.text = text
        self.sample_rate = sample_rate
        self._entries: list[Segment] = []  # times in samples
        self._cursor = 0  # next character of ``text`` not yet placed
        self._now = 0  # samples so far

    def piece(self, piece_text: str, segments: Sequence[Segment], hop: int, samples: int) -> None:
        """One model call's audio (``samples`` long) and its segments over ``piece_text``."""
        offset = self.text.find(piece_text, self._cursor) if piece_text else -1
        if offset < 0:
            raise ValueError(f"piece {piece_text[:20]!r} not found in the text after character {self._cursor}")
        self._gap(offset)
        for segment in segments:
            self._entries.append(Segment(offset + segment.start, offset + segment.end,
                                         self._now + segment.t0 * hop, self._now + segment.t1 * hop))
        self._cursor = offset + len(piece_text)
        self.silence(samples)

    def silence(self, samples: int) -> None:
        """Audio with no new text (a pause, or the rest of a piece): the last entry's end moves with it."""
        self._now += samples
        if self._entries:
            last = self._entries[-1]
            self._entries[-1] = Segment(last.start, last.end, last.t0, self._now)

    def stretched(self, other: Timeline, samples: int, warp: Callable[[float], float] | None = None) -> None:
        """``other`` (a timeline over a piece of this text, built on the model's output) placed here as ``samples``
        of delivered audio: ``warp`` maps a position in ``other`` to one in the delivered audio (a time stretch
        that shortens pauses more than speech); without it every time moves by the same factor."""
        other._gap(len(other.text))
        offset = self.text.find(other.text, self._cursor) if other.text else -1
        if offset < 0:
            raise ValueError(f"piece {other.text[:20]!r} not found in the text after character {self._cursor}")
        self._gap(offset)
        scale = samples / other.samples if other.samples else 0.0
        place = warp or (lambda position: position * scale)
        for entry in other._entries:
            t0, t1 = (min(samples, round(place(t))) for t in (entry.t0, entry.t1))
            self._entries.append(Segment(offset + entry.start, offset + entry.end, self._now + t0, self._now + t1))
        self._cursor = offset + len(other.text)
        self.silence(samples)

    @property
    def samples(self) -> int:
        """Audio placed so far, in samples."""
        return self._now

    def timings(self) -> tuple[Timing, ...]:
        """Every character of the text in exactly one entry, in order; times in seconds, the last end at the
        audio's length."""
        self._gap(len(self.text))
        rate = self.sample_rate
        return tuple(Timing(self.text[e.start:e.end], round(e.t0 / rate, 4), round(e.t1 / rate, 4))
                     for e in self._entries)

    def _gap(self, upto: int) -> None:
        if upto > self._cursor:
            self._entries.append(Segment(self._cursor, upto, self._now, self._now))
            self._cursor = upto


def words(timings: Sequence[Timing]) -> tuple[Timing, ...]:
    """Per-word times: the text of ``timings`` segmented into words (whitespace and punctuation are not words);
    a word that shares a unit with its neighbour (a rewritten span the segmenter cut) is merged with it."""
    text = "".join(timing.text for timing in timings)
    owner = [index for index, timing in enumerate(timings) for _ in timing.text]  # character -> its entry
    spans: list[list[int]] = []  # [start char, end char, first entry, last entry]
    position = 0
    for word in segmenter.segment(text):
        start, position = position, position + len(word)
        first, last = owner[start], owner[position - 1]
        if spans and first <= spans[-1][3]:
            spans[-1][1], spans[-1][3] = position, last
        elif any(char.isalnum() for char in word):
            spans.append([start, position, first, last])
    return tuple(Timing(text[s:e], timings[first].start_s, timings[last].end_s) for s, e, first, last in spans)


__all__ = ["Segment", "Timeline", "align_piece", "words"]
