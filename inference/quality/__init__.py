"""Speech quality assessment: a predicted MOS (mean opinion score, 1 bad .. 5 excellent) for synthesised audio.

Runs wherever a score is wanted: ``tts-ops mos`` in the operator's shell, ``bench/quality.py``, and (later) the
daemon's scorer process. The model is Microsoft's Distill-MOS (``distillmos`` on PyPI, MIT, weights in its wheel),
which needs torch; both are an optional extra, imported only when a scorer is loaded.
"""

from inference.quality.mos import (
                                   MODEL_RATE,
                                   WEIGHTS_SHA256,
                                   AudioFileError,
                                   MosScorer,
                                   ScorerUnavailable,
                                   load_audio,
)

__all__ = ["MODEL_RATE", "WEIGHTS_SHA256", "AudioFileError", "MosScorer", "ScorerUnavailable", "load_audio"]
