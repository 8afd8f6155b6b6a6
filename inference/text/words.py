"""Word segmentation of Chinese text for tone sandhi: jieba's dictionary (349k words with corpus frequencies).

Runs in the worker process and in-process for ``tts-ops synth`` (the G2P calls it per run of Chinese characters).

jieba runs in dictionary mode (``HMM=False``): its maximum-probability path over the dictionary's word graph.
Its HMM guesses new words from unknown characters, which is good for search and bad here: a guessed "word" would
join syllables into one sandhi domain that no speaker groups. The tokenizer is built once per process on first
use (about 0.6 s: it reads jieba's dictionary, or the cache jieba keeps in the temp directory), under a lock;
``MandarinFrontend`` builds it at boot so the first request does not pay for it.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("tts_ops.text")

_tokenizer = None
_load_lock = threading.Lock()


def _get_tokenizer():
    global _tokenizer
    if _tokenizer is None:
        with _load_lock:
            if _tokenizer is None:
                import jieba  # type: ignore[import-untyped]  # no stubs; imported on first use: keeps import cheap

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _tokenizer = tokenizer
                log.info("word segmenter (jieba) loaded")
    return _tokenizer


def load() -> None:
    """Build the segmenter now (at boot) rather than on the first request."""
    _get_tokenizer()


def segment(run: str) -> list[str]:
    """Words of a run of Chinese characters, concatenating to it."""
    return _get_tokenizer().lcut(run, HMM=False)


def is_word(text: str) -> bool:
    """Whether ``text`` is a word of jieba's dictionary (its table also holds every word's prefixes, at 0)."""
    return bool(_get_tokenizer().FREQ.get(text))
