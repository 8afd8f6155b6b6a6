"""Rendering of an SSML script (``tts_vocab.ssml.Script``, parsed by the daemon) with any engine (worker process,
and in-process for ``tts-ops synth``).

The script is cut into runs: consecutive spoken segments with the same emotion, between breaks. Each run is one
``Engine.synthesize_run`` call, which splits long text into the engine's own chunks and joins them with its usual
pause; a ``<phoneme>`` inside a run is the engine's business (the bundled voice reads it through its pronunciation
dictionary, Sambert through its own SSML). A ``<break>`` is exact silence, in place of the pause a chunk boundary
would have had; speed does not scale it (it is an absolute time, as in W3C SSML).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from inference.audio import silence
from inference.engines.base import Engine, SynthesisParams
from inference.errors import TextError
from inference.text.alignment import Timeline
from tts_vocab.ssml import Pause, Say, Script

__all__ = ["render_script", "runs"]


def runs(script: Script) -> list[list[Say] | Pause]:
    """The script as runs of spoken segments sharing an emotion, and the pauses between them."""
    out: list[list[Say] | Pause] = []
    for segment in script.segments:
        if isinstance(segment, Pause):
            out.append(segment)
            continue
        last = out[-1] if out else None
        if isinstance(last, list) and last[-1].emotion == segment.emotion:
            last.append(segment)
        else:
            out.append([segment])
    return out


def render_script(engine: Engine, script: Script, params: SynthesisParams,
                  timeline: Timeline | None = None) -> np.ndarray:
    """Float32 samples of the whole script at the engine's rate; TextError when nothing in it is speakable.
    With a ``timeline`` (over ``script.spoken``) every run and break is placed on it as well."""
    rate = engine.info().sample_rate
    engine.resolve_voice(params.voice)  # an unknown voice is named once, before any run is tried
    pieces: list[np.ndarray] = []
    spoken = False
    for run in runs(script):
        if isinstance(run, Pause):
            pieces.append(silence(run.seconds, rate))
            if timeline is not None:
                timeline.silence(len(pieces[-1]))
            continue
        run_params = dataclasses.replace(params, emotion=run[0].emotion or params.emotion)
        try:
            pieces.append(engine.synthesize_run(run, run_params, timeline))
            spoken = True
        except TextError:
            # A run of punctuation between two breaks is silent, not a failure of the whole document.
            if any(segment.pinyin for segment in run):
                raise
    if not spoken:
        raise TextError("SSML has no text the voice can speak")
    return np.concatenate(pieces).astype(np.float32, copy=False)
