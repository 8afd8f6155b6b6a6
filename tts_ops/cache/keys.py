"""Cache keys of synthesized audio: one deterministic Redis/LRU key per (engine, model, voice, text, options).

Runs in the daemon process on its event loop (pure, microseconds per call). The key is
``<prefix>audio:<sha256 hex>`` of a canonical JSON document of every field that changes the audio, so the key
length is fixed whatever the text length and no text (possibly personal data) is readable in Redis.

Text is normalised *for the key only* - NFKC, strip, runs of whitespace collapsed to one space - so trivially
different spellings (full-width digits, ideographic spaces, stray newlines) share one entry. The real text
normalisation (numbers, dates, units -> words) is the engine's own TN and runs in the worker; repeating it here
would cost milliseconds on the loop and tie the key to one engine's rules, so the key uses this cheap canonical
form and accepts that e.g. "3" and "三" are two entries.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import unicodedata

__all__ = ["KEY_VERSION", "cache_key", "normalize_text"]

# Bumped when the key document or the stored value format changes incompatibly, or when the same request is
# rendered differently by the same model (3: the bundled voice's pause-first fast speeds, emotion contours and
# brightness, timestamps that follow them): old entries then simply miss and age out by TTL instead of being
# served or misread.
KEY_VERSION = 3


def normalize_text(text: str) -> str:
    """The canonical form of ``text`` used in keys: NFKC, stripped, whitespace runs collapsed to one space."""
    # str.split() without arguments splits on every Unicode whitespace (U+3000 included) and drops empties.
    return " ".join(unicodedata.normalize("NFKC", text).split())


# Memoized: a repeated text is what a cache serves, and its key (NFKC, canonical JSON, SHA-256) was a visible share
# of a cache hit's CPU (bench/frontend_wrk.py). A pure function of hashable inputs; 4,096 recent keys.
@functools.lru_cache(maxsize=4096)
def cache_key(prefix: str, *, engine: str, model_version: str, voice: str, emotion: str, speed: float,
              fmt: str, sample_rate: int | None, text: str, timestamps: bool = False, render: str = "") -> str:
    """Key of the audio synthesized from these inputs; equal inputs (after normalisation) give equal keys.
    ``timestamps``: the entry also holds the timings, which name the request's characters one by one, so the
    text is keyed exactly as sent (two spellings that share audio do not share timestamps)."""
    speed = float(speed)
    if not math.isfinite(speed):
        raise ValueError(f"speed must be finite, got {speed!r}")
    document = {
        "v": KEY_VERSION,
        "engine": engine,
        "model_version": model_version,
        "voice": voice,
        "emotion": emotion,
        # Rounded so 1.0 and 1.0000000001 (float noise from clients) share an entry; "+ 0.0" folds -0.0 into 0.0.
        "speed": round(speed, 3) + 0.0,
        "fmt": fmt.lower(),
        "sample_rate": None if sample_rate is None else int(sample_rate),
        "text": normalize_text(text),
        # The worker settings that change the audio beyond the model (tts_ops.config.engine_options.render_digest).
        "render": render,
    }
    if timestamps:
        # Only present when asked for, so every key made before timestamps existed is unchanged.
        document.update(timestamps=True, text=text)
    # sort_keys + fixed separators make the bytes canonical; ensure_ascii=False keeps CJK as UTF-8 (shorter);
    # surrogatepass: a lone surrogate in client text (valid JSON escape) must not turn a key into a 500.
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}audio:{digest}"
