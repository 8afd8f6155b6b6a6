"""The configuration rendered for people: the effective settings with secrets redacted (logs, ``/admin/status``,
``tts-ops config``), and the commented reference YAML generated from the schema (``config/tts-ops.yaml``).
Runs in the daemon and the CLI.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import PurePath
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter

from tts_ops.config.keys import unwrap
from tts_ops.config.loader import ENV_OVERRIDES, SYSTEMD_DIRS
from tts_ops.config.schema import Config

REDACTED = "***"

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^@/,]*)@")
_PASSWORD_PARAM = re.compile(r"(?i)(password=)[^&,]*")


def redact_url(url: str) -> str:
    """Mask passwords in a (comma-separated) Redis URL; a colon-less userinfo is masked whole, it may be one."""
    def mask(m: re.Match[str]) -> str:
        user, sep, _ = m["userinfo"].partition(":")
        return f"{m['scheme']}{user}:{REDACTED}@" if sep else f"{m['scheme']}{REDACTED}@"
    return _PASSWORD_PARAM.sub(rf"\g<1>{REDACTED}", _USERINFO.sub(mask, url))


def dump_effective(config: Config) -> dict[str, Any]:
    """The configuration as plain JSON-able data with secrets redacted, for logs and the status endpoint."""
    data = config.model_dump(mode="json")
    if data["admin"]["token"] is not None:
        data["admin"]["token"] = REDACTED
    data["server"]["api_keys"] = [REDACTED for _ in data["server"]["api_keys"]]
    if data["cache"]["redis_url"]:
        data["cache"]["redis_url"] = redact_url(data["cache"]["redis_url"])
    return data


_HEADER = """\
# tts-ops configuration reference.
#
# GENERATED from the schema (tts_ops/config/schema.py, engines.py) by `python -m tts_ops.config > config/tts-ops.yaml`:
# do not edit by hand, tests/tts_ops/config/test_config.py fails when this file and the code disagree.
#
# The daemon runs without any config file. Every key below is commented out at its default ("#key: value"),
# so this file as-is changes nothing: uncomment a key to change it. Mappings (emotions, voice_map) replace
# their default as a whole.
#
# Precedence, lowest to highest: built-in defaults < systemd directories ($STATE_DIRECTORY, $LOGS_DIRECTORY,
# $CACHE_DIRECTORY/models, $RUNTIME_DIRECTORY) < this file < TTS_OPS_* environment variables < CLI flags.
# Relative paths are relative to the daemon's working directory.
"""
_WIDTH = 110


def render_yaml_reference() -> str:
    """Commented YAML listing every key with its default and description (the content of config/tts-ops.yaml)."""
    lines = _HEADER.splitlines()
    _render_model(Config, (), lines)
    return "\n".join(lines) + "\n"


def _render_model(model: type[BaseModel], prefix: tuple[str, ...], out: list[str]) -> None:
    pad = "  " * len(prefix)
    for name, field in model.model_fields.items():
        key = prefix + (name,)
        description = field.description or ""
        sub = unwrap(field.annotation)
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out.append("")
            description = (sub.__doc__ or description).strip()  # the class docstring says more than "Logging."
            out.extend(f"{pad}# {line}" for line in textwrap.wrap(description, _WIDTH - len(pad)))
            out.append(f"{pad}{name}:")
            _render_model(sub, key, out)
            continue
        out.extend(f"{pad}# {line}" for line in textwrap.wrap(description, _WIDTH - len(pad)))
        notes = [f"env: {var}" for var, k in ENV_OVERRIDES.items() if k == key]
        notes += [f"systemd: ${var}" + (f"/{s}" if s else "") for var, k, s in SYSTEMD_DIRS if k == key]
        if notes:
            out.append(f"{pad}# ({'; '.join(notes)})")
        value = "auto" if key == ("workers", "count") else _default_as_data(field)
        if isinstance(value, dict) and value:  # one entry per line, each entry's own value inline
            out.append(f"{pad}#{name}:")
            out.extend(f"{pad}#  {_flow(k)}: {_flow(v)}" for k, v in value.items())
        else:
            out.append(f"{pad}#{name}: {_flow(value)}")


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=1000)
    return text.removesuffix("\n...\n").strip()  # PyYAML ends a bare scalar document with "..."


def _default_as_data(field: Any) -> Any:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, PurePath) and not value.is_absolute():
        return f"./{value}"  # "./logs" reads as relative; "logs" looks like a name
    return TypeAdapter(field.annotation).dump_python(value, mode="json")
