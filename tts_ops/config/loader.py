"""Loading the tts-ops configuration: YAML file, environment and CLI overrides, merged and validated once.

Runs in the supervisor daemon (at start and on SIGHUP) and in the CLI. The schema is in ``tts_ops.config.schema``,
error lines are written by ``tts_ops.config.messages``; import the public functions from ``tts_ops.config``.
Layers are merged as raw dicts, lowest precedence first:

    systemd dirs ($STATE_DIRECTORY...) < YAML file < TTS_OPS_* environment < CLI overrides

then validated once, strictly, so every problem of every layer is reported together, one line each, prefixed by
the layer that supplied the value: ``config/tts-ops.yaml: server.prot: unknown key (did you mean 'port'?)``,
``config/tts-ops.yaml: workers.count: expected an integer, got true``. Environment values, text by nature, are
converted to their field's type first (``from_env``); file and CLI values are never coerced.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import platformdirs
import yaml
from pydantic import BaseModel, ValidationError

from tts_ops.config.keys import Loc, model_at, unwrap
from tts_ops.config.messages import format_error
from tts_ops.config.schema import Config
from tts_ops.errors import ConfigError
from tts_vocab.lexicon import Lexicon, LexiconError, load_lexicon

APP_NAME = "tts-ops"
CLI_SOURCE = "command line"

# Variable -> dotted key. Applied after the file and before CLI flags; empty values count as unset
# (EnvironmentFile= and compose files often carry "VAR=" placeholders).
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "TTS_OPS_ADMIN_TOKEN": ("admin", "token"),
    "TTS_OPS_REDIS_URL": ("cache", "redis_url"),
    "TTS_OPS_WORKERS": ("workers", "count"),
    "TTS_OPS_PORT": ("server", "port"),
    "TTS_OPS_HOST": ("server", "host"),
    "TTS_OPS_LOG_DIR": ("logging", "dir"),
    "TTS_OPS_OUTPUT_DIR": ("output", "dir"),
    "TTS_OPS_MODEL_DIR": ("engines", "model_dir"),
    "TTS_OPS_STATE_DIR": ("paths", "state_dir"),
    "TTS_OPS_RUNTIME_DIR": ("paths", "runtime_dir"),
}
# Set by systemd from StateDirectory= etc.; lowest precedence, so any explicit setting wins.
# Saved audio goes under the state directory: the unit's ProtectSystem=strict leaves nothing else writable.
SYSTEMD_DIRS: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("STATE_DIRECTORY", ("paths", "state_dir"), None),
    ("STATE_DIRECTORY", ("output", "dir"), "output"),
    ("LOGS_DIRECTORY", ("logging", "dir"), None),
    ("CACHE_DIRECTORY", ("engines", "model_dir"), "models"),
    ("RUNTIME_DIRECTORY", ("paths", "runtime_dir"), None),
)



def load_config(path: Path | str | None = None, *, overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Build the effective Config; raise ConfigError listing every problem. See tts_ops.config.schema."""
    env = os.environ if env is None else env
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping, not {type(overrides).__name__}")
    layers: list[tuple[str, Mapping[str, Any]]] = []
    for var, key, sub in SYSTEMD_DIRS:
        # systemd joins several directories with ":"; ours is the first one.
        value = env.get(var, "").split(":")[0].strip()
        if value:
            layers.append((f"env {var}", _nest(key, str(Path(value) / sub) if sub else value)))
    if path is not None:
        layers.append((str(path), read_yaml(Path(path))))
    for var, key in ENV_OVERRIDES.items():
        value = env.get(var, "").strip()
        if value:
            layers.append((f"env {var}", _nest(key, from_env(key, value))))
    if overrides:
        # None means "flag not given" (argparse defaults), never "reset to the default".
        layers.append((CLI_SOURCE, _drop_none(overrides)))
    merged: dict[str, Any] = {}
    sources: dict[Loc, str] = {}
    for label, data in layers:
        _merge_into(merged, data, (), label, sources)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError([format_error(err, sources) for err in exc.errors()]) from None
    return _absolutize(_resolve_defaults(config, env))


def check_lexicon(config: Config) -> Lexicon | None:
    """The pronunciation dictionary the config names, parsed; ConfigError naming each bad line of it. Called by
    ``check-config`` and by the daemon at start and on HUP (``tts_ops.daemon.lexicon``), not by ``load_config``:
    the admin commands (``tts-ops status``...) must keep working while an operator's edit has a bad line."""
    path = config.engines.fastspeech2_baker.lexicon
    if path is None:
        return None
    try:
        return load_lexicon(path)
    except LexiconError as exc:
        raise ConfigError([f"engines.fastspeech2_baker.lexicon: {path}: {p}" for p in exc.problems]) from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would silently resolve to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one config file into a dict ({} when empty); ConfigError on I/O, syntax or shape problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: {where}invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections (got {type(data).__name__})")
    return data


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def from_env(key: tuple[str, ...], raw: str) -> Any:
    """An environment (or systemd) value, a string by nature, converted to the type of the field at ``key``.

    Files are validated strictly (``port: "5000"`` is an error there), so this is the one place text becomes a
    number or a boolean. Text that does not parse is passed on unchanged: the strict validation then rejects it
    with the variable and the key path, unless the field takes that text itself (``TTS_OPS_WORKERS=auto``)."""
    model = model_at(key[:-1])
    field = model.model_fields.get(key[-1]) if model is not None else None
    kind = unwrap(field.annotation) if field is not None else str
    if kind is bool:
        return _BOOLS.get(raw.lower(), raw)
    if kind is int and _INT.fullmatch(raw):
        return int(raw)
    if kind is float and _FLOAT.fullmatch(raw):
        return float(raw)
    return raw


def _nest(key: tuple[str, ...], value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {key[-1]: value}
    for part in reversed(key[:-1]):
        nested = {part: nested}
    return nested


def _drop_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _drop_none(v) if isinstance(v, Mapping) else v for k, v in data.items() if v is not None}


def _merge_into(dst: dict[Any, Any], src: Mapping[Any, Any], prefix: Loc, label: str,
                sources: dict[Loc, str]) -> None:
    # Deep merge; ``sources`` remembers which layer set each leaf so errors can name the file or variable.
    for key, value in src.items():
        loc = prefix + (key,)
        if isinstance(value, Mapping):
            if not isinstance(dst.get(key), dict):
                dst[key] = {}
            if not value:
                sources[loc] = label
            _merge_into(dst[key], value, loc, label, sources)
        else:
            dst[key] = value
            sources[loc] = label


_Model = TypeVar("_Model", bound=BaseModel)


def instance_key(config: Config) -> str:
    """The instance's name on the host: ``instance.name``, else ``tts-ops-<server.port>``. Only one live daemon
    can bind the public port, so the default tells a user's instances apart; the runtime lock catches the rest."""
    return config.instance.name or f"{APP_NAME}-{config.server.port}"


def _resolve_defaults(config: Config, env: Mapping[str, str]) -> Config:
    # A defaulted directory is shared by every instance of the user, so what goes in it is keyed by instance;
    # an explicit one (config, TTS_OPS_*, systemd's $STATE_DIRECTORY / $RUNTIME_DIRECTORY) is used as given.
    name = instance_key(config)
    state_dir = config.paths.state_dir or Path(platformdirs.user_state_dir(APP_NAME))
    runtime_dir = config.paths.runtime_dir or _default_runtime_dir(env) / name
    model_dir = config.engines.model_dir or Path(platformdirs.user_cache_dir(APP_NAME)) / "models"
    # An explicit state directory without a name is one service's own (systemd's StateDirectory): admin.token,
    # where the documented CLI and Prometheus scrape configs read it.
    shared_state = config.paths.state_dir is None or config.instance.name is not None
    token_file = config.admin.token_file or state_dir / (f"{name}.token" if shared_state else "admin.token")
    return config.model_copy(update={
        "instance": config.instance.model_copy(update={"name": name}),
        "paths": config.paths.model_copy(update={"state_dir": state_dir, "runtime_dir": runtime_dir}),
        "engines": config.engines.model_copy(update={"model_dir": model_dir}),
        "admin": config.admin.model_copy(update={"token_file": token_file}),
    })


def _default_runtime_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_RUNTIME_DIR", "").strip()
    if xdg:
        return Path(xdg) / APP_NAME
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path("/tmp") / f"{APP_NAME}-{uid}"  # documented fallback; creator must mkdir 0700


def _absolutize(model: _Model) -> _Model:
    # Anchored to the working directory at load time: workers and later chdir()s then agree on every path.
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = Path(os.path.abspath(value))
        elif isinstance(value, BaseModel):
            new = _absolutize(value)
            if new is not value:
                updates[name] = new
    return model.model_copy(update=updates) if updates else model
