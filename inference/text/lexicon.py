"""The operators' pronunciation dictionary applied to a run of Chinese characters (worker process, and in-process
for ``tts-ops synth``/``frontend``): where its words are, their readings, and the segmentation that keeps each
one a single word.

The G2P calls ``overlay`` before tone sandhi: an entry's readings replace pypinyin's and the polyphone rules' for
its characters, and the word segmenter (jieba) sees the entry as one word, so sandhi treats it as a word (its
3-3 tones within it, 一/不 by its neighbours). Entries are dictionary tones, like pypinyin's own: 展览馆 written
``zhan3 lan3 guan3`` is spoken zhan2 lan2 guan3, as the word would be. Matching is longest first, left to right,
as a dictionary-based segmenter would; jieba's global dictionary is left alone (no ``add_word``), so one process
can hold several frontends with different dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inference.errors import BootError
from tts_vocab.lexicon import Lexicon, LexiconError, load_lexicon

__all__ = ["Overlay", "load_checked", "overlay", "spans", "unreadable"]


@dataclass(frozen=True)
class Overlay:
    """What the dictionary says about one run: readings by position, the run's segmentation, and a word test that
    knows the dictionary's words."""

    readings: dict[int, str]
    words: list[str]
    is_word: Callable[[str], bool]


def spans(run: str, lexicon: Lexicon) -> list[tuple[int, str]]:
    """(start, word) of every dictionary word in ``run``: longest match first, left to right, not overlapping."""
    found: list[tuple[int, str]] = []
    longest = lexicon.longest
    i = 0
    while i < len(run):
        for size in range(min(longest, len(run) - i), 0, -1):
            word = run[i:i + size]
            if word in lexicon.entries:
                found.append((i, word))
                i += size
                break
        else:
            i += 1
    return found


def overlay(run: str, lexicon: Lexicon, segment: Callable[[str], list[str]],
            is_word: Callable[[str], bool]) -> Overlay | None:
    """The dictionary's readings and segmentation of ``run`` (``segment`` cuts the text between its words), or None
    when no dictionary word occurs in it."""
    found = spans(run, lexicon)
    if not found:
        return None
    readings: dict[int, str] = {}
    words: list[str] = []
    position = 0
    for start, word in found:
        if start > position:
            words.extend(segment(run[position:start]))
        words.append(word)
        readings.update((start + k, reading) for k, reading in enumerate(lexicon.entries[word]))
        position = start + len(word)
    if position < len(run):
        words.extend(segment(run[position:]))
    return Overlay(readings, words, lambda text: text in lexicon.entries or is_word(text))


def load_checked(path: str) -> Lexicon:
    """The dictionary at ``path``; BootError naming every bad line (the daemon validated the file already, so this
    fails only for a file changed or removed since)."""
    try:
        return load_lexicon(Path(path))
    except LexiconError as exc:
        raise BootError(str(exc)) from None


def unreadable(lexicon: Lexicon, readable: Callable[[str], bool]) -> list[str]:
    """The dictionary's syllables a voice has no symbols for (``readable(reading)`` is False), sorted."""
    return sorted({r for readings in lexicon.entries.values() for r in readings if not readable(r)})
