"""``tts-ops serve`` and ``tts-ops check-config`` (operator's shell / systemd's ExecStart)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the daemon (front end, workers, admin API)")
    p.add_argument("--config", type=Path, default=None, help="YAML config file (default: embedded defaults)")
    p.add_argument("--host", default=None, help="public listen address (server.host)")
    p.add_argument("--port", type=int, default=None, help="public port (server.port)")
    p.add_argument("--workers", type=int, default=None, help="number of worker processes (workers.count)")
    p.add_argument("--admin-port", type=int, default=None, help="admin API port (admin.port)")
    p.add_argument("--engine", default=None, help="engine for all workers (workers.engine)")
    p.set_defaults(handler=run_serve)
    c = sub.add_parser("check-config", help="validate a config file and print the effective settings")
    c.add_argument("--config", type=Path, default=None, help="YAML config file")
    c.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")
    c.set_defaults(handler=run_check)


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, dict[str, Any]] = {}
    pairs = [("server", "host", args.host), ("server", "port", args.port), ("workers", "count", args.workers),
             ("admin", "port", args.admin_port), ("workers", "engine", args.engine)]
    for section, key, value in pairs:
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def run_check(args: argparse.Namespace) -> int:
    import yaml

    from tts_ops.cli import CliError
    from tts_ops.config import ConfigError, dump_effective, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise CliError(f"invalid configuration:\n{exc}") from None
    if not args.quiet:
        print(f"{args.config or '(embedded defaults)'}: OK")
        print(yaml.safe_dump(dump_effective(config), sort_keys=False, allow_unicode=True), end="")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from tts_ops.cli import CliError
    from tts_ops.config import ConfigError, load_config
    from tts_ops.daemon import Daemon
    from tts_ops.logs import setup_logging

    overrides = cli_overrides(args)

    def load():
        return load_config(args.config, overrides=overrides)

    try:
        config = load()
    except ConfigError as exc:
        raise CliError(f"invalid configuration:\n{exc}") from None
    log_manager = setup_logging(config, verbose=args.verbose)
    prepare_model(config)

    async def main() -> int:
        daemon = Daemon(config, reload_config=load, log_manager=log_manager)
        return await daemon.run()

    try:
        return asyncio.run(main())
    except OSError as exc:
        # Port in use, unwritable directories: an operator problem, one line.
        raise CliError(str(exc)) from None
    finally:
        log_manager.close()


def prepare_model(config: Any) -> None:
    """Pull the bundled model once, before workers start, so N workers do not race to download it."""
    from inference.models.store import ModelStore

    if config.workers.engine != "fastspeech2-baker":
        return
    store = ModelStore(config.engines.model_dir)
    if not store.is_pulled(config.workers.engine):
        log = logging.getLogger("tts_ops.models")
        log.warning("model %s not found in %s: pulling it now", config.workers.engine, store.root)
        store.ensure(config.workers.engine, progress=lambda line: log.info("pull: %s", line))
