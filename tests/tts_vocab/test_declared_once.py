"""The vocabulary is declared once: no module outside ``tts_vocab`` spells out a content type, a list of emotions
or voices, an exit code or a worker-reply header name again (a copy is how two tables start to disagree)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tts_vocab import EMOTIONS, FORMATS, SAMBERT_VOICES, headers

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for package in ("tts_ops", "inference") for p in (ROOT / package).rglob("*.py"))
CONTENT_TYPES = {fmt.content_type for fmt in FORMATS.values()}
HEADER_NAMES = {value for name, value in vars(headers).items() if name.isupper() and isinstance(value, str)}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in CONTENT_TYPES:
                found.append(f"{where}: content type {node.value!r}")
            if node.value in HEADER_NAMES:
                found.append(f"{where}: header name {node.value!r}")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            words = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
            if len(words & set(EMOTIONS)) >= 3:
                found.append(f"{where}: a list of emotions")
            if len(words & set(SAMBERT_VOICES)) >= 2:
                found.append(f"{where}: a list of Sambert voices")
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.startswith("EXIT_") and isinstance(node.value,
                                                                                                 ast.Constant):
                    found.append(f"{where}: exit code {target.id}")
    return found


# Declared on purpose outside tts_vocab: pydantic needs literal types (tests/tts_ops/config checks they match).
ALLOWED = {"tts_ops/config/engines.py": {"a list of Sambert voices"}}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_vocabulary_is_not_redeclared(path):
    allowed = ALLOWED.get(str(path.relative_to(ROOT)), set())
    findings = [f for f in _findings(path) if f.split(": ", 1)[1] not in allowed]
    assert not findings, "declare these in tts_vocab and import them:\n" + "\n".join(findings)
