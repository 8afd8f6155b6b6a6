"""How the Baker voice reads Latin letters and stray ASCII digits: one or more Mandarin syllables per character.

Runs in the worker process and in-process for ``tts-ops synth`` (imported by the G2P; pure data).

The Baker corpus is Mandarin only, so the voice has no English phonemes. Letters are spelled one by one ("GPU" ->
G P U, "iPhone" -> I P H O N E) with the syllables a Mainland speaker uses when spelling aloud, written as tone-3
pinyin so they go through the same pinyin -> Baker-symbol table as Chinese text (the G2P checks at load time
that every syllable below exists in the model's inventory). Choices, where usage varies:

- One syllable where Mandarin has a close one: A ei1, B bi4, C xi1, D di4, E yi4, G ji4, I ai4, J jie4, K kai4,
  N en1, O ou1, P pi1, Q qiu1, T ti4, U you1, V wei1, Y wai4, Z zei4.
- Two where the letter ends in a consonant Mandarin cannot end a syllable with: F ai4 fu5, H ei1 qu1,
  L ai4 le5, M ai4 mu5, R a1 er3, S ai4 si5 (the second syllable neutral, as people say them).
- Three for the two long names: W da2 bu5 liu5 ("double-u"), X ai4 ke4 si5.

Case is ignored. Digits normally never get here (text normalisation spells numbers out in context, "15" ->
十五); these readings are the fallback for any it leaves behind, read digit by digit like a phone number.
"""

from __future__ import annotations

LETTER_READINGS: dict[str, tuple[str, ...]] = {
    "A": ("ei1",),
    "B": ("bi4",),
    "C": ("xi1",),
    "D": ("di4",),
    "E": ("yi4",),
    "F": ("ai4", "fu5"),
    "G": ("ji4",),
    "H": ("ei1", "qu1"),
    "I": ("ai4",),
    "J": ("jie4",),
    "K": ("kai4",),
    "L": ("ai4", "le5"),
    "M": ("ai4", "mu5"),
    "N": ("en1",),
    "O": ("ou1",),
    "P": ("pi1",),
    "Q": ("qiu1",),
    "R": ("a1", "er3"),
    "S": ("ai4", "si5"),
    "T": ("ti4",),
    "U": ("you1",),
    "V": ("wei1",),
    "W": ("da2", "bu5", "liu5"),
    "X": ("ai4", "ke4", "si5"),
    "Y": ("wai4",),
    "Z": ("zei4",),
}

DIGIT_READINGS: dict[str, tuple[str, ...]] = {
    "0": ("ling2",),
    "1": ("yi1",),
    "2": ("er4",),
    "3": ("san1",),
    "4": ("si4",),
    "5": ("wu3",),
    "6": ("liu4",),
    "7": ("qi1",),
    "8": ("ba1",),
    "9": ("jiu3",),
}


def readings_for(char: str) -> tuple[str, ...]:
    """Tone-3 pinyin syllables for one ASCII letter or digit; empty for anything else."""
    return LETTER_READINGS.get(char.upper()) or DIGIT_READINGS.get(char, ())
