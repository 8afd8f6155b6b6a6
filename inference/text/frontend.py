"""The Mandarin text frontend of the FastSpeech2 Baker voice: request text -> chunks of phoneme ids.

Runs in the worker process and in-process for ``tts-ops synth`` (it loads pypinyin and WeTextProcessing's FSTs;
the HTTP front end only needs ``inference.text.chunking``).

Pipeline per chunk: ``split_chunks`` (sentence-sized pieces of the raw text) -> ``normalize`` (WeTextProcessing:
numbers, dates, money... spelled out) -> ``phonemes`` (pypinyin + Baker encoding) -> ``ids``. Chunks with nothing
speakable (an emoji-only sentence) are dropped; a text where every chunk is dropped is the client's mistake
(``TextError``, HTTP 400).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from inference.errors import BootError, TextError
from inference.text import words
from inference.text.chunking import split_chunks
from inference.text.g2p import BakerG2P, SentenceReading
from inference.text.normalize import get_normalizer, normalize_text
from tts_vocab.lexicon import Lexicon

log = logging.getLogger("tts_ops.text")

NOTHING_SPEAKABLE = "text contains nothing speakable after normalisation"


# eq=False: dataclass equality would compare the numpy arrays element-wise and raise; identity is what callers want.
@dataclass(frozen=True, eq=False)
class Chunk:
    """One synthesis unit: the raw text slice, its normalised form, its Baker symbols and their ids."""

    text: str
    normalized: str
    phonemes: tuple[str, ...]
    ids: np.ndarray  # int32, shape [len(phonemes)], read-only
    #: Characters of the slice the voice cannot read (emoji, unknown scripts); punctuation is not listed.
    skipped: tuple[str, ...] = ()
    #: Per symbol, the span of ``normalized`` it was read from (``SentenceReading.owners``), for timestamps.
    owners: tuple[tuple[int, int] | None, ...] = ()


class MandarinFrontend:
    """Text -> Baker phoneme ids, for one model's symbol inventory (its parsed ``baker_mapper.json``)."""

    def __init__(self, mapper: Mapping, lexicon: Lexicon | None = None) -> None:
        # ``lexicon``: the operators' pronunciation dictionary (engines.fastspeech2_baker.lexicon), applied by the G2P.
        self._g2p = BakerG2P(mapper, lexicon)
        self._symbol_to_id = {symbol: int(index) for symbol, index in mapper["symbol_to_id"].items()}
        if any(not 0 <= index < 2**31 for index in self._symbol_to_id.values()):
            raise BootError("Baker mapper has symbol ids outside int32; wrong or corrupt mapper file?")
        # Load the normaliser and the word segmenter now so a broken install fails the worker at boot, and the
        # first request does not pay for them.
        get_normalizer()
        words.load()

    @contextmanager
    def extra_entries(self, entries: Mapping[str, tuple[str, ...]]) -> Iterator[None]:
        """The pronunciation dictionary with ``entries`` added (they win), for one synthesis: an SSML ``<phoneme>``.
        Not thread-safe, like the engine that owns this frontend."""
        base = self._g2p.lexicon
        self._g2p.lexicon = Lexicon({**base.entries, **entries})
        try:
            yield
        finally:
            self._g2p.lexicon = base

    def readable(self, reading: str) -> bool:
        """Whether this voice has symbols for a tone-numbered pinyin syllable."""
        return self._g2p.syllable(reading) is not None

    def normalize(self, text: str) -> str:
        """Numbers, dates, times, money, percentages and phone numbers spelled out in Chinese characters."""
        return normalize_text(text)

    def phonemes(self, sentence: str) -> list[str]:
        """Baker symbols (sil ... sil eos) for already-normalised text; digits left in it are read one by one."""
        symbols = self._g2p.symbols(sentence)
        if not symbols:
            raise TextError(NOTHING_SPEAKABLE)
        return symbols

    def ids(self, phonemes: list[str]) -> np.ndarray:
        """Symbol ids as the acoustic model's ``input_ids``: int32, shape [len(phonemes)]."""
        unknown = [symbol for symbol in phonemes if symbol not in self._symbol_to_id]
        if unknown:
            raise TextError(f"phoneme symbols not in this voice's inventory: {sorted(set(unknown))}")
        return np.array([self._symbol_to_id[symbol] for symbol in phonemes], dtype=np.int32)

    def encode(self, text: str, max_chars: int = 60) -> list[Chunk]:
        """Split, normalise and encode ``text``; chunks with nothing speakable are dropped, and the characters they
        could not read are reported with the next chunk that is kept (or the last one), so none goes unnamed."""
        chunks: list[Chunk] = []
        unreported: list[str] = []
        for piece, normalized, reading in self._read(text, max_chars):
            unreported += reading.skipped
            if not reading.symbols:
                log.debug("dropped chunk with nothing speakable: %r", piece)
                continue
            ids = self.ids(list(reading.symbols))
            ids.flags.writeable = False  # Chunk is frozen; keep its array from being edited in place too
            chunks.append(Chunk(piece, normalized, reading.symbols, ids, tuple(unreported), reading.owners))
            unreported = []
        if chunks and unreported:
            last = chunks[-1]
            chunks[-1] = Chunk(last.text, last.normalized, last.phonemes, last.ids, last.skipped + tuple(unreported),
                               last.owners)
        if not chunks:
            raise TextError(NOTHING_SPEAKABLE)
        return chunks

    def phonemize(self, text: str, max_chars: int = 60) -> dict[str, Any]:
        """What the model would be given for ``text``, for inspection (the phonemizer view). JSON-ready::

            {"normalized": str,              # the normalised text of every chunk, concatenated
             "chunks": [{"text": str,        # the chunk as split from the request text (not normalised)
                         "pinyin": [str],    # one per spoken syllable, tone-3 as sent: sandhi applied,
                                             # neutral tone 5, erhua as its own "er5", letters/digits spelled
                         "symbols": [str]}], # the Baker symbols the model receives, sil ... sil eos
             "skipped": [{"char": str, "code_point": "U+1F600"}]}  # characters the voice cannot read

        Chunks are those ``encode`` would synthesise, in order; a chunk with nothing speakable is left out (its
        characters appear under "skipped"), and text with nothing speakable gives ``"chunks": []`` instead of
        the ``TextError`` that ``encode`` raises. For Chinese-only text each chunk has one pinyin entry per
        character. "normalized" and "chunks" with text/pinyin/symbols are the shape of ``tts-ops frontend
        --json`` (issue 13); "skipped" is extra."""
        normalized_parts: list[str] = []
        chunks: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        for piece, normalized, reading in self._read(text, max_chars):
            normalized_parts.append(normalized)
            skipped.extend({"char": char, "code_point": f"U+{ord(char):04X}"} for char in reading.skipped)
            if reading.symbols:
                chunks.append({"text": piece, "pinyin": list(reading.pinyin), "symbols": list(reading.symbols)})
        return {"normalized": "".join(normalized_parts), "chunks": chunks, "skipped": skipped}

    def _read(self, text: str, max_chars: int) -> Iterator[tuple[str, str, SentenceReading]]:
        for piece in split_chunks(text, max_chars):
            normalized = self.normalize(piece)
            yield piece, normalized, self._g2p.read(normalized)
