"""The one audio-format table (all processes): format names and their aliases, content types, file extensions and
the codec soundfile writes them with.

The worker encodes with it, the front end answers and names downloads with it, the output store saves and serves
files with it, and the OpenAPI document lists it. Nothing else declares a format, a content type or an extension.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import MappingProxyType

from tts_vocab.errors import InvalidRequest

# libsndfile refuses any other rate for these codecs ("Opus only supports sample rates of 8000, 12000, ...").
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class AudioFormat:
    """One output format. ``sf_format``/``sf_subtype`` are soundfile's names; both are None for raw PCM."""

    name: str
    content_type: str
    #: File extension without the dot, used for downloads and saved outputs.
    extension: str
    #: Other spellings a client may use for it.
    aliases: tuple[str, ...]
    sf_format: str | None
    sf_subtype: str | None
    #: Rates the codec accepts; None means any.
    sample_rates: tuple[int, ...] | None = None

    @property
    def lossless(self) -> bool:
        return self.sf_subtype == "PCM_16" or self.sf_format is None


FORMATS: MappingProxyType[str, AudioFormat] = MappingProxyType({
    "wav": AudioFormat("wav", "audio/wav", "wav", ("wave",), "WAV", "PCM_16"),
    "flac": AudioFormat("flac", "audio/flac", "flac", (), "FLAC", "PCM_16"),
    # RFC 7845: Ogg Opus is served as audio/ogg. Saved and downloaded as .ogg, which every player opens.
    "opus": AudioFormat("opus", "audio/ogg", "ogg", ("ogg",), "OGG", "OPUS", _OPUS_RATES),
    "mp3": AudioFormat("mp3", "audio/mpeg", "mp3", (), "MP3", "MPEG_LAYER_III", _MPEG_RATES),
    # Headerless s16le: the client learns the rate out of band (the X-Sample-Rate header).
    "pcm": AudioFormat("pcm", "audio/pcm", "pcm", ("s16le", "raw"), None, None),
})

#: Every accepted spelling -> canonical name.
_NAMES = MappingProxyType({
    spelling: fmt.name for fmt in FORMATS.values() for spelling in (fmt.name, *fmt.aliases)
})
#: Every spelling a client may send, canonical names first (what the OpenAPI document enumerates).
FORMAT_SPELLINGS: tuple[str, ...] = (*FORMATS, *(alias for fmt in FORMATS.values() for alias in fmt.aliases))
#: File extensions (with the dot) -> format, for ``tts-ops synth -o out.mp3``; .opus is Ogg Opus too.
_SUFFIXES = MappingProxyType({**{f".{spelling}": name for spelling, name in _NAMES.items()}, ".opus": "opus"})
#: Saved-file extension -> content type (the output store's whitelist).
CONTENT_TYPE_BY_EXTENSION = MappingProxyType({fmt.extension: fmt.content_type for fmt in FORMATS.values()})


def supported_formats() -> str:
    """Human list for error messages: ``wav (alias wave), flac, ...``."""
    return ", ".join(f"{f.name} (alias {', '.join(f.aliases)})" if f.aliases else f.name for f in FORMATS.values())


def normalize_format(name: object) -> str:
    """Canonical format name for a client-supplied one; InvalidRequest (field ``format``) if we cannot produce it."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in _NAMES:
        raise InvalidRequest(f"unsupported audio format {name!r}; supported: {supported_formats()}", "format")
    return _NAMES[key]


def audio_format(name: str) -> AudioFormat:
    """The table entry for any accepted spelling (InvalidRequest for others)."""
    return FORMATS[normalize_format(name)]


def format_for_path(path: str | os.PathLike[str]) -> str:
    """Canonical format name implied by an output file's extension (``tts-ops synth -o out.mp3``)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in _SUFFIXES:
        raise InvalidRequest(f"cannot infer audio format from {os.fspath(path)!r}; "
                             f"use one of {', '.join(_SUFFIXES)}", "output")
    return _SUFFIXES[suffix]


def extension_for(fmt: str) -> str:
    """File extension (no dot) a download or saved file of ``fmt`` (any spelling) gets."""
    return audio_format(fmt).extension
