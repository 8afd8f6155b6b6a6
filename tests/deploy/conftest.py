"""The shipped monitoring files (``deploy/``) and the tools that check them: ``promtool`` (Debian's ``prometheus``
package; ``scripts/test`` installs it) and the PromQL metric-name extraction the name checks use."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "tts-ops.rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "tts-ops.json"

# Words of PromQL that are not metric names when they are not followed by "(": modifiers and binary operators.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.$])[A-Za-z_:][A-Za-z0-9_:]*")


def tool(name: str) -> str:
    """The path of a Prometheus binary; missing is a failure, not a skip (the checks would silently not run)."""
    path = shutil.which(name)
    assert path, f"{name} not found: install Debian's 'prometheus' package (scripts/test does, as root)"
    return path


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names a PromQL expression selects: identifiers that are not a function or
    aggregation (followed by "("), a keyword, a label name (inside {...} or a by/on list), a duration or a string."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _LABEL_LIST.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and the query variables (label_values(m, l) -> m)."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dash["panels"] for target in panel.get("targets", [])]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            exprs.append(match.group(1) if match else query)
    return exprs


@pytest.fixture
def promtool() -> str:
    return tool("promtool")
