"""A small real torch vocoder with HiFi-GAN's interface and layer kinds (conv in, transposed-conv upsampling,
dilated residual convolutions with leaky ReLU, conv out, tanh): ``forward(mel[B, 80, frames]) -> audio[B, 1,
frames * 16]``. Random weights, fixed seed. And a stand-in Sambert pipeline that vocodes through it the way
ModelScope's does (``pipeline.model.voices[voice].voc_model``), for the vocoder speed-up tests."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 80
HOP = 16
RATE = 16000


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(channels, channels, 3, padding=d, dilation=d) for d in (1, 3, 5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, 0.1))
        return x


class TinyVocoder(nn.Module):
    def __init__(self, channels: int = 64, upsample: tuple[int, ...] = (4, 4)) -> None:
        super().__init__()
        self.pre = nn.Conv1d(N_MELS, channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for rate in upsample:
            self.ups.append(nn.ConvTranspose1d(channels, channels // 2, rate * 2, rate, padding=rate // 2))
            channels //= 2
            self.blocks.append(ResBlock(channels))
        self.post = nn.Conv1d(channels, 1, 7, padding=3)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.pre(mel)
        for up, block in zip(self.ups, self.blocks, strict=True):
            x = block(up(F.leaky_relu(x, 0.1)))
        return torch.tanh(self.post(F.leaky_relu(x, 0.1)))


def tiny_vocoder() -> TinyVocoder:
    torch.manual_seed(0)
    return TinyVocoder().eval()


def mel_for(text: str, frames_per_char: int = 12) -> torch.Tensor:
    """A deterministic mel-like input for a text (seeded by its length and code points)."""
    generator = torch.Generator().manual_seed(sum(map(ord, text)))
    return torch.randn(1, N_MELS, max(8, frames_per_char * len(text)), generator=generator)


class Voice:
    def __init__(self, vocoder: nn.Module) -> None:
        self.voc_model = vocoder


class Model:
    def __init__(self, voices: dict[str, Voice]) -> None:
        self.voices = voices


class VocodingPipeline:
    """``pipeline(input=..., voice=...) -> {"output_wav": WAV bytes}`` with the audio from the voice's vocoder;
    ``grad_seen``: whether any call ran with autograd recording (it must not)."""

    def __init__(self, model_dir: str) -> None:
        self.model = Model({"zhitian_emo": Voice(tiny_vocoder())})
        self.grad_seen = False

    def __call__(self, *, input: str, voice: str) -> dict:  # ModelScope's keyword
        self.grad_seen |= torch.is_grad_enabled()
        audio = self.model.voices["zhitian_emo"].voc_model(mel_for(input))
        samples = np.asarray(audio, dtype=np.float32).reshape(-1) * 0.5
        buffer = io.BytesIO()
        sf.write(buffer, samples, RATE, format="WAV", subtype="FLOAT")
        return {"output_wav": buffer.getvalue()}
