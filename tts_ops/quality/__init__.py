"""Online speech quality sampling (daemon process): the supervised scorer process (``ScorerHandle``, states
``ScorerState``) and the sampler in front of it (``QualityMonitor``: which syntheses are scored, the bounded queue,
what a score does: synthesis.log line, metrics, low-quality warning, recent means for /admin/status)."""

from tts_ops.quality.handle import ScorerHandle
from tts_ops.quality.monitor import MosSink, QualityMonitor, Sample
from tts_ops.quality.spec import ScorerSpec
from tts_ops.quality.states import ScorerState

__all__ = ["MosSink", "QualityMonitor", "Sample", "ScorerHandle", "ScorerSpec", "ScorerState"]
