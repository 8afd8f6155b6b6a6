"""The emotions every engine offers, and every name a client may use for them (all processes).

Canonical names are English (the cache key and the logs use them). Clients may also use Sambert's own label
(``hate``) and the Chinese names the Web UI shows (``开心``); ``normalize_emotion`` maps every spelling once.
"""

from __future__ import annotations

from types import MappingProxyType

from tts_vocab.errors import InvalidRequest

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fear", "surprise", "disgust")

#: The Chinese label of each emotion, as the Web UI shows it.
EMOTION_LABELS_ZH = MappingProxyType({
    "neutral": "中性", "happy": "开心", "sad": "悲伤", "angry": "生气", "fear": "恐惧", "surprise": "惊讶",
    "disgust": "厌恶",
})

#: Other names -> canonical. Sambert labels disgust "hate" in some voices; the Chinese names are the Web UI's labels
#: and their common synonyms.
EMOTION_ALIASES = MappingProxyType({
    "hate": "disgust",
    **{label: name for name, label in EMOTION_LABELS_ZH.items()},
    "平静": "neutral", "高兴": "happy", "快乐": "happy", "愉快": "happy", "伤心": "sad", "难过": "sad",
    "愤怒": "angry", "害怕": "fear", "吃惊": "surprise", "恶心": "disgust", "讨厌": "disgust",
})


def normalize_emotion(value: object) -> str:
    """Canonical emotion for any accepted spelling (None means neutral); InvalidRequest (field ``emotion``)."""
    if value is None:
        return "neutral"
    if not isinstance(value, str):
        raise InvalidRequest(f"'emotion' must be a string, got {type(value).__name__}", "emotion")
    key = value.strip().lower()
    name = EMOTION_ALIASES.get(key, key)
    if name not in EMOTIONS:
        raise InvalidRequest(f"unknown emotion {value!r}; expected one of: {', '.join(EMOTIONS)} "
                             f"(or {', '.join(EMOTION_ALIASES)})", "emotion")
    return name
