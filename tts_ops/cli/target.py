"""Which running instance an admin command talks to, and with which token (operator's shell).

An instance is found by ``--instance NAME``, by ``--port P`` (the instance serving public port P, named
``tts-ops-P`` unless its config names it), or by the config (``--config``; its ``instance.name``). Its record
(``<paths.state_dir>/<name>.json``, written by the daemon once its ports are bound) gives the admin URL and the token
file; without a record the config's admin address is used. The token comes from ``--token``,
``$TTS_OPS_ADMIN_TOKEN``, the config's ``admin.token``, else the token file the daemon wrote.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from tts_ops.cli.errors import CliError
from tts_ops.config import Config, load_config
from tts_ops.config.loader import APP_NAME
from tts_ops.instance import InstanceRecord, read_record, record_path
from tts_ops.instance.record import client_host
from tts_vocab.exit_codes import EXIT_USAGE

# The systemd unit's StateDirectory, for an operator's shell that lacks the service's $STATE_DIRECTORY.
SYSTEMD_STATE_DIR = Path("/var/lib/tts-ops")
SYSTEMD_TOKEN_FILE = SYSTEMD_STATE_DIR / "admin.token"


@dataclass(frozen=True)
class Target:
    url: str
    token: str


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="YAML config (admin host/port/token, instance name)")
    p.add_argument("--instance", default=None, help="instance name (see 'tts-ops instances')")
    p.add_argument("--port", type=int, default=None,
                   help="the instance serving this public port (default name tts-ops-PORT)")
    p.add_argument("--url", default=None, help="admin base URL (default: from the instance record or the config)")
    p.add_argument("--token", default=None, help="admin token (default: $TTS_OPS_ADMIN_TOKEN or token file)")


def state_dirs(config: Config) -> list[Path]:
    """Where instance records may be: the config's state directory, then systemd's."""
    return list(dict.fromkeys([d for d in (config.paths.state_dir, SYSTEMD_STATE_DIR) if d is not None]))


def resolve_target(args: argparse.Namespace) -> Target:
    if args.instance is not None and args.port is not None:
        raise CliError("give --instance or --port, not both", code=EXIT_USAGE)
    config = load_config(args.config)
    named = args.instance or (f"{APP_NAME}-{args.port}" if args.port is not None else None)
    record = _find_record(config, named or config.instance.name or "", required=named is not None)
    if record is not None:
        url = args.url or record.admin_url
    else:
        url = args.url or f"http://{client_host(config.admin.host)}:{config.admin.port}"
    token = args.token or os.environ.get("TTS_OPS_ADMIN_TOKEN") or config.admin.token
    if not token:
        token = _token_from(record, config)
    return Target(url.rstrip("/"), token)


def _find_record(config: Config, name: str, *, required: bool) -> InstanceRecord | None:
    looked = []
    for directory in state_dirs(config):
        path = record_path(directory, name)
        looked.append(str(path))
        try:
            record = read_record(path)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if record is None:
            continue
        if record.alive():
            return record
        if required:
            raise CliError(f"instance {name} is not running (pid {record.pid} is gone; stale record {path})")
    if required:
        raise CliError(f"no running instance named {name}: no record at {' or '.join(looked)}; "
                       "'tts-ops instances' lists the running ones")
    return None


def _token_from(record: InstanceRecord | None, config: Config) -> str:
    if record is not None and record.token_file is None:
        raise CliError(f"instance {record.name} uses a configured admin token: pass --config with it, --token, "
                       "or set TTS_OPS_ADMIN_TOKEN (as in the daemon's environment file)")
    candidates = [Path(record.token_file)] if record is not None and record.token_file else []
    candidates += [path for path in (config.admin.token_file, SYSTEMD_TOKEN_FILE) if path is not None]
    errors = []
    for path in dict.fromkeys(candidates):
        try:
            return path.read_text().strip()
        except OSError as exc:
            errors.append(f"{path} ({exc.strerror})")
    raise CliError(f"no admin token: cannot read {' or '.join(errors)}; pass --token or set TTS_OPS_ADMIN_TOKEN "
                   "(as in the daemon's environment file)")
