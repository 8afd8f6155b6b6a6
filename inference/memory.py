"""Keeping a worker's memory bounded: when a LiteRT interpreter has grown too large, and giving freed memory back.

Runs in the worker process (and in-process for ``tts-ops synth``): the worker calls ``use_one_heap`` at start and
``release_free_memory`` after each job, the FastSpeech2 engine ``output_frames``. Standard library only, so the
worker can import it before its heavy imports.

LiteRT resizes an interpreter's tensors to each input and never shrinks them: the FastSpeech2 acoustic model's
buffers grow ~0.065 MiB per output mel frame (measured with ai-edge-litert 2.3 and XNNPACK, 2026-12-07: +57 MiB at
740 frames, +148 MiB at 1,950), and stay at the largest mel it ever produced. The engine re-creates the
interpreter after a call that produced more than its bound, and ``release_free_memory`` hands the freed pages
back to the kernel: glibc keeps freed heap memory for reuse (measured: an 81 MiB arena stayed resident after the
interpreter was deleted, and left with ``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any


def output_frames(interpreter: Any, output: int) -> int:
    """Frames (axis 1) of output ``output`` after the last invoke; dynamic outputs report their actual shape."""
    return int(interpreter.get_output_details()[output]["shape"][1])


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


# mallopt parameter (malloc.h): the most arenas glibc creates.
_M_ARENA_MAX = -8


def use_one_heap() -> bool:
    """Have every thread allocate from glibc's main arena; whether it could be asked to. Call it before the
    process starts threads. Why: ``malloc_trim`` returns the free top of the main heap, but a thread's own arena
    keeps its free top (up to 64 MiB once big blocks were freed), so the inference thread's scratch memory stayed
    resident (measured: USS crept 35 MiB over 20 requests). A worker runs one inference thread and the event loop,
    so sharing one arena costs no contention to speak of."""
    libc = _libc() if sys.platform.startswith("linux") else None
    if libc is None:
        return False
    try:
        return bool(libc.mallopt(_M_ARENA_MAX, 1))
    except AttributeError:  # a libc without it (musl)
        return False


def release_free_memory() -> bool:
    """Return the heap's free pages to the kernel (glibc ``malloc_trim``); whether it could be asked to."""
    if not sys.platform.startswith("linux"):
        return False
    libc = _libc()
    if libc is None:
        return False
    try:
        trim = libc.malloc_trim
    except AttributeError:  # a libc without it (musl)
        return False
    trim(0)
    return True


__all__ = ["output_frames", "release_free_memory", "use_one_heap"]
