"""CPU speed-ups of a torch vocoder (worker process): no autograd bookkeeping (``torch.inference_mode``), and
behind ``engines.sambert_hifigan.vocoder`` the HiFi-GAN module compiled with ``torch.jit`` or exported to ONNX and
run by ONNX Runtime (section 5 of the reference deployment article). Each accelerated module keeps the eager
module's interface, ``forward(mel[B, n_mels, frames]) -> audio tensor``, so it replaces the module in place.

Only the mechanism is tested here (on a small real torch vocoder, tests/fakes/tiny_vocoder.py): the real Sambert
weights cannot be installed on the test machine, so speed-ups on them are unmeasured. When the installed
ModelScope model exposes no vocoder module where ``find_vocoders`` looks, acceleration is skipped with a warning
and the model runs as shipped.

torch and onnxruntime are heavy optional dependencies ([sambert] and [onnx] extras): imported inside the
functions that need them, never at module import, so the bundled engine's workers never load them.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from inference.errors import BootError

__all__ = ["VOCODER_MODES", "VocoderMode", "accelerate", "find_vocoders", "inference_mode", "replace_vocoders"]

log = logging.getLogger("inference.engines.vocoder")

VocoderMode = Literal["eager", "jit", "onnx"]
VOCODER_MODES: tuple[VocoderMode, ...] = ("eager", "jit", "onnx")
#: Where ModelScope's Sambert-HifiGan voices have kept their HiFi-GAN generator across versions (``Voice`` objects
#: in ``pipeline.model.voices``; the double-underscore ones are name-mangled private attributes).
VOCODER_ATTRIBUTES = ("voc_model", "_Voice__voc_model", "generator", "_Voice__generator", "vocoder")
N_MELS = 80


@contextlib.contextmanager
def inference_mode() -> Iterator[None]:
    """``torch.inference_mode()`` when torch is installed (no gradients, no version counters), else nothing."""
    try:
        import torch  # heavy optional dependency ([sambert] extra)
    except ImportError:  # the stand-in pipeline runs without torch
        yield
        return
    with torch.inference_mode():
        yield


def accelerate(module: Any, mode: VocoderMode, frames: int = 64) -> Any:
    """``module`` (a torch vocoder, eval mode) as ``mode`` runs it: itself (eager), TorchScript (jit: scripted, or
    traced when scripting fails), or an ONNX Runtime session wrapped in a module (onnx). ``frames``: length of the
    example mel used to trace/export; the time axis stays dynamic. BootError when the mode cannot be built."""
    import torch  # heavy optional dependency ([sambert] extra)

    module.eval()
    if mode == "eager":
        return module
    example = torch.randn(1, N_MELS, frames)
    if mode == "jit":
        return _jit(module, example)
    if mode == "onnx":
        return _onnx(module, example)
    raise BootError(f"unknown vocoder mode {mode!r}; expected one of {', '.join(VOCODER_MODES)}")


def _jit(module: Any, example: Any) -> Any:
    import torch  # heavy optional dependency ([sambert] extra)

    try:
        return torch.jit.script(module)
    except Exception as exc:  # dynamic Python in forward(): tracing records the ops one input takes
        log.info("torch.jit.script failed (%s); tracing the vocoder instead", exc)
    with torch.no_grad():
        return torch.jit.trace(module, example, check_trace=False)


def _onnx(module: Any, example: Any) -> Any:
    import torch  # heavy optional dependency ([sambert] extra)

    try:
        import onnxruntime  # heavy optional dependency ([onnx] extra)
    except ImportError as exc:
        raise BootError(f"vocoder mode onnx needs onnxruntime ({exc}); pip install 'tts-ops[onnx]'") from exc
    with tempfile.TemporaryDirectory(prefix="vocoder-onnx-") as directory, torch.no_grad():
        path = Path(directory) / "vocoder.onnx"
        # The TorchScript-based exporter: dynamic axes for any number of frames, no onnxscript rewrite needed.
        torch.onnx.export(module, (example,), str(path), input_names=["mel"], output_names=["audio"],
                          dynamic_axes={"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 2: "samples"}},
                          dynamo=False)
        model = path.read_bytes()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return _ort_module(session)


def _ort_module(session: Any) -> Any:
    """An ``nn.Module`` whose forward runs ``session``: a drop-in for the eager vocoder."""
    import torch  # heavy optional dependency ([sambert] extra)

    class OrtVocoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.session = session

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            audio = self.session.run(None, {"mel": mel.detach().cpu().numpy()})[0]
            return torch.from_numpy(audio)

    return OrtVocoder()


def find_vocoders(pipeline: Any) -> list[tuple[Any, str]]:
    """(owner, attribute) of every torch vocoder module the pipeline's voices expose (see VOCODER_ATTRIBUTES)."""
    try:
        import torch  # heavy optional dependency ([sambert] extra)
    except ImportError:
        return []
    model = getattr(pipeline, "model", None)  # ModelScope's pipeline object: duck-typed, it is not ours
    voices = getattr(model, "voices", None)
    found = []
    for voice in (voices.values() if isinstance(voices, dict) else []):
        for name in VOCODER_ATTRIBUTES:
            if isinstance(getattr(voice, name, None), torch.nn.Module):
                found.append((voice, name))
                break
    return found


def replace_vocoders(pipeline: Any, mode: VocoderMode) -> int:
    """Accelerate every vocoder ``pipeline`` exposes, in place; returns how many (0: none exposed, a warning)."""
    if mode == "eager":
        return 0
    found = find_vocoders(pipeline)
    if not found:
        log.warning("vocoder mode %s requested but the model exposes no vocoder module; running it as shipped", mode)
        return 0
    for owner, name in found:
        setattr(owner, name, accelerate(getattr(owner, name), mode))
    log.info("vocoder of %d voice(s) running as %s", len(found), mode)
    return len(found)
