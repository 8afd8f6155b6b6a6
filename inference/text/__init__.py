"""Mandarin text frontend for the FastSpeech2 Baker voice: chunking, normalisation, G2P, phoneme ids.

``split_chunks`` is pure regex and is imported by the HTTP front-end process; ``MandarinFrontend`` and ``Chunk``
run in the worker process and in-process for ``tts-ops synth``. They pull in numpy, pypinyin and WeTextProcessing,
so they are loaded on first attribute access: importing ``inference.text.chunking`` (which runs this file first)
must stay cheap for the front end.

Modules: ``chunking`` (split_chunks), ``normalize`` (WeTextProcessing wrapper and its pre-fixes), ``g2p`` (pinyin
and polyphone rules -> Baker symbols, erhua, prosody breaks), ``sandhi`` (surface tones), ``words`` (jieba word
segmentation, loaded on first use), ``letters`` (Latin letters, English-word lexicon), ``polyphones`` (g2pM's
checkpoint, verified and evaluated; not on the synthesis path), ``frontend`` (MandarinFrontend, Chunk).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inference.text.chunking import split_chunks

if TYPE_CHECKING:
    from inference.text.frontend import Chunk, MandarinFrontend

__all__ = ["Chunk", "MandarinFrontend", "split_chunks"]

_LAZY = {"Chunk", "MandarinFrontend"}


def __getattr__(name: str):
    if name in _LAZY:
        from inference.text import frontend

        return getattr(frontend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
