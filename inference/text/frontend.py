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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from inference.errors import BootError, TextError
from inference.text.chunking import split_chunks
from inference.text.g2p import BakerG2P
from inference.text.normalize import get_normalizer, normalize_text

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


class MandarinFrontend:
    """Text -> Baker phoneme ids, for one model's symbol inventory (its parsed ``baker_mapper.json``)."""

    def __init__(self, mapper: Mapping) -> None:
        self._g2p = BakerG2P(mapper)
        self._symbol_to_id = {symbol: int(index) for symbol, index in mapper["symbol_to_id"].items()}
        if any(not 0 <= index < 2**31 for index in self._symbol_to_id.values()):
            raise BootError("Baker mapper has symbol ids outside int32; wrong or corrupt mapper file?")
        # Load the normaliser now so a broken install fails the worker at boot, not the first request.
        get_normalizer()

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
        """Split, normalise and encode ``text``; chunks with nothing speakable are dropped."""
        chunks = []
        for piece in split_chunks(text, max_chars):
            normalized = self.normalize(piece)
            symbols = self._g2p.symbols(normalized)
            if not symbols:
                log.debug("dropped chunk with nothing speakable: %r", piece)
                continue
            ids = self.ids(symbols)
            ids.flags.writeable = False  # Chunk is frozen; keep its array from being edited in place too
            chunks.append(Chunk(piece, normalized, tuple(symbols), ids))
        if not chunks:
            raise TextError(NOTHING_SPEAKABLE)
        return chunks
