"""Polyphone readings from g2pM's BiLSTM (a numpy checkpoint trained on the CPP polyphone corpus), combined with
pypinyin's phrase dictionary.

Status: evaluated, not on the synthesis path. Measured on the hand-checked tables in
tests/inference/text/polyphone_table.py (``python bench/frontend_text.py --polyphones``), the released checkpoint
is confidently wrong on common words (人参 can1, 目的 de5, 跑得很快 de2, 上当 dang1): g2pM alone 101/176 and 19/40
held out, pypinyin's phrase-dictionary words with g2pM elsewhere 140/176 and 27/40, against pypinyin alone 143/176
and 28/40 and the shipped pypinyin + context rules (``inference.text.g2p``) 167/176 and 37/40. No confidence
threshold on the model's softmax beat the rules either. The loader stays so the decision can be re-measured when a
better checkpoint exists: ``resolve`` is the combination that would be wired into ``g2p.lexical_readings``.

Loaded on first use only (``get_model``), once per process, under a lock; ``import inference.text`` never
loads it. The checkpoint ships in the g2pM wheel as four pickles. Unpickling runs code, so each file's bytes are
hashed first and compared with the sha256 pinned below (g2pM==0.1.2.5); a mismatch is a ``BootError`` and nothing
of that file is unpickled. The forward pass is ours (g2pM's own ``G2pM()`` unpickles without checking, and takes
the argmax over all 876 readings, so it can pick a reading the character does not have): a one-layer BiLSTM over
``BOS + run + EOS``, two dense layers, argmax restricted to the character's own readings in g2pM's CC-CEDICT
digest. Its predictions equal g2pM's own wherever g2pM's argmax is one of the character's readings.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any

import numpy as np

from inference.errors import BootError

log = logging.getLogger("tts_ops.text")

# sha256 of the pickles in the g2pM==0.1.2.5 wheel; verified before anything is unpickled.
WEIGHT_SHA256 = {
    "np_ckpt.pkl": "5b38c21cbaeb5f9b2f5d0bf872487de0fc22f91a3b26189b7d998136d2c8d3ae",
    "char2idx.pkl": "e41861f3af2debb342d3555d970db47b22e5d35c8e0190722dfb9b39c941988c",
    "class2idx.pkl": "b17a497ee9618e6d5c2f7814ab7f847d80a3cb757e92423774781e4d3dc56c49",
    "digest_cedict.pkl": "71e727a041a1d7023a1fbe32bbc23d5f4aa85a9d67fe4d6502fc398ef30b875c",
}
_UNK, _BOS, _EOS = "<UNK>", "시", "끝"  # g2pM's special tokens (its BOS/EOS are Hangul syllables)

_model: PolyphoneModel | None = None
_load_lock = threading.Lock()


def _tone3(reading: str) -> str:
    """g2pM writes ü as "u:" (nu:e4); pypinyin and the Baker table write v (nve4)."""
    return reading.replace("u:", "v")


class PolyphoneModel:
    """g2pM's BiLSTM polyphone classifier, loaded from verified pickles."""

    def __init__(self, tables: dict[str, Any]) -> None:
        state = tables["np_ckpt.pkl"]
        self._char_to_id: dict[str, int] = tables["char2idx.pkl"]
        class_to_id: dict[str, int] = tables["class2idx.pkl"]
        cedict: dict[str, list[str]] = tables["digest_cedict.pkl"]
        self._embedding = state["embedding.weight"]
        self._forward = tuple(state[f"lstm.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        self._backward = tuple(state[f"lstm.{k}_l0_reverse"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        self._dense = (state["logit_layer.0.weight"], state["logit_layer.0.bias"],
                       state["logit_layer.2.weight"], state["logit_layer.2.bias"])
        self._classes = {index: _tone3(reading) for reading, index in class_to_id.items()}
        # Polyphonic characters -> the class ids of their readings (the argmax is taken over these only).
        self._choices = {char: np.array([class_to_id[r] for r in readings if r in class_to_id])
                         for char, readings in cedict.items() if len(readings) > 1}

    def is_polyphone(self, char: str) -> bool:
        return char in self._choices

    def predict(self, run: str) -> dict[int, str]:
        """Tone-3 readings (5 = neutral) of the polyphonic characters of ``run``, by index in ``run``."""
        targets = [i for i, char in enumerate(run) if char in self._choices]
        if not targets:
            return {}
        ids = [self._char_to_id[_BOS]] + [self._char_to_id.get(c, self._char_to_id[_UNK]) for c in run]
        ids.append(self._char_to_id[_EOS])
        inputs = self._embedding[np.array(ids)]  # [T, 64]
        forward = _lstm(inputs, self._forward)
        backward = _lstm(inputs[::-1], self._backward)[::-1]
        hidden = np.concatenate([forward, backward], axis=1)[[i + 1 for i in targets]]  # +1: BOS
        w0, b0, w1, b1 = self._dense
        logits = np.maximum(hidden @ w0.T + b0, 0) @ w1.T + b1
        readings = {}
        for row, i in enumerate(targets):
            choices = self._choices[run[i]]
            readings[i] = self._classes[int(choices[np.argmax(logits[row, choices])])]
        return readings


def _lstm(inputs: np.ndarray, weights: tuple[np.ndarray, ...]) -> np.ndarray:
    """One PyTorch-layout LSTM direction (gates i, f, g, o) over [T, D] inputs -> [T, H] hidden states."""
    w_ih, w_hh, b_ih, b_hh = weights
    projected = inputs @ w_ih.T + (b_ih + b_hh)  # the input half of every step at once
    size = w_hh.shape[1]
    h = np.zeros(size, dtype=projected.dtype)
    c = np.zeros(size, dtype=projected.dtype)
    out = np.empty((len(inputs), size), dtype=projected.dtype)
    for t in range(len(inputs)):
        gates = projected[t] + w_hh @ h
        i, f = _sigmoid(gates[:size]), _sigmoid(gates[size:2 * size])
        g, o = np.tanh(gates[2 * size:3 * size]), _sigmoid(gates[3 * size:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out[t] = h
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def load_verified(read: Callable[[str], bytes]) -> PolyphoneModel:
    """Build the model from the four pickles returned by ``read(name)``, each checked against its sha256 first."""
    tables = {}
    for name, expected in WEIGHT_SHA256.items():
        data = read(name)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise BootError(f"g2pM weight file {name} has sha256 {actual}, expected {expected}; "
                            "reinstall the pinned wheel (pip install --force-reinstall g2pM==0.1.2.5)")
        tables[name] = pickle.loads(data)  # verified bytes of the pinned release only
    return PolyphoneModel(tables)


def get_model() -> PolyphoneModel:
    """The process-wide polyphone model, loaded from the installed g2pM wheel on first call."""
    global _model
    if _model is None:
        with _load_lock:
            if _model is None:
                _model = load_verified(_read_wheel_file)
                log.info("polyphone model (g2pM) loaded")
    return _model


def _read_wheel_file(name: str) -> bytes:
    try:
        return (files("g2pM") / name).read_bytes()
    except (ImportError, OSError) as exc:
        raise BootError(f"g2pM weight file {name} is not readable ({exc}); run: pip install g2pM==0.1.2.5") from exc


def resolve(run: str, readings: list[str], words: Sequence[str], is_word: Callable[[str], bool],
            model: PolyphoneModel | None = None) -> list[str]:
    """``readings`` (pypinyin's, one per character of ``run``) with polyphones outside dictionary words re-read by
    the model. ``words`` is the segmentation of ``run``; a segment of two or more characters for which
    ``is_word`` holds keeps pypinyin's readings."""
    model = model or get_model()
    if len(readings) != len(run) or not any(model.is_polyphone(c) for c in run):
        return readings
    in_word = _in_dictionary_word(run, words, is_word)
    predicted = model.predict(run)
    out = list(readings)
    for i, reading in predicted.items():
        if not in_word[i] and out[i]:
            out[i] = reading
    return out


def _in_dictionary_word(run: str, words: Sequence[str], is_word: Callable[[str], bool]) -> list[bool]:
    flags = [False] * len(run)
    position = 0
    for word in words:
        if len(word) > 1 and is_word(word):
            flags[position:position + len(word)] = [True] * len(word)
        position += len(word)
    return flags
