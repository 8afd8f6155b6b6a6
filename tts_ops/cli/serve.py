"""``tts-ops serve`` and ``tts-ops check-config`` (operator's shell / systemd's ExecStart).

``serve`` runs in the daemon's main process: it loads the config, sets up logging, pulls the bundled model if
missing, then hands over to ``tts_ops.daemon.Daemon`` on its event loop (``tts_ops.cli.event_loop``).
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

import yaml

from inference.models.store import ModelStore
from tts_ops.cli import event_loop
from tts_ops.cli.errors import CliError
from tts_ops.config import ConfigError, check_lexicon, dump_effective, load_config
from tts_ops.logs.manager import setup_logging
from tts_ops.observability.sdnotify import SystemdNotifier
from tts_vocab import ENGINES

# Asked of systemd before a model pull and again at each progress line: TimeoutStartSec= (300 s) is sized for a
# start with the model present, not for a 40 MB download on a slow link.
PULL_EXTEND_USEC = 300 * 1_000_000


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

    try:
        config = load_config(args.config)
        check_lexicon(config)
    except ConfigError as exc:
        raise invalid(exc) from None
    if not args.quiet:
        print(f"{args.config or '(embedded defaults)'}: OK")
        print(yaml.safe_dump(dump_effective(config), sort_keys=False, allow_unicode=True), end="")
    return 0


def invalid(exc: Any) -> Exception:
    """The CliError for a ConfigError: one line for one problem, else a header and one line per problem."""
    problems = exc.problems
    if len(problems) == 1:
        return CliError(f"invalid configuration: {problems[0]}")
    return CliError("invalid configuration:\n" + "\n".join(problems))


class HupDuringStart:
    """Records SIGHUP until the daemon's event loop handles it. The default action of SIGHUP kills the process,
    and before the loop runs there are the config load, the logging setup and possibly a long model pull: an
    ``ExecReload=`` (or a logrotate script) in that window would kill a daemon that is about to start. A HUP
    seen here becomes a reload as soon as the daemon runs, so a config edited meanwhile is not missed."""

    def __init__(self) -> None:
        self.seen = False
        signal.signal(signal.SIGHUP, self._record)

    def _record(self, signum: int, frame: Any) -> None:
        self.seen = True


def run_serve(args: argparse.Namespace) -> int:
    held = HupDuringStart()  # first thing: before the imports below, the config load and the model pull
    # Heavy (aiohttp, the whole daemon): only `tts-ops serve` needs it, not `tts-ops serve --check`.
    from tts_ops.daemon import Daemon
    from tts_ops.daemon.lexicon import pin_lexicon

    overrides = cli_overrides(args)

    def load():
        # The workers get the daemon's validated copy of the pronunciation dictionary (tts_ops.daemon.lexicon).
        return pin_lexicon(load_config(args.config, overrides=overrides))

    try:
        config = load()
    except ConfigError as exc:
        raise invalid(exc) from None
    log_manager = setup_logging(config, verbose=args.verbose)
    prepare_model(config)

    async def main() -> int:
        logging.getLogger("tts_ops.daemon").info("event loop: %s", event_loop.loop_name(config.server.event_loop))
        daemon = Daemon(config, reload_config=load, log_manager=log_manager)
        daemon.install_signal_handlers()
        # Checked once the loop owns SIGHUP, so a HUP arriving in between is not lost either.
        if held.seen:
            logging.getLogger("tts_ops.daemon").warning("SIGHUP during start-up: reloading the config once running")
            daemon.request_reload()
        return await daemon.run()

    try:
        return event_loop.run(main, config.server.event_loop)
    except OSError as exc:
        # Port in use, unwritable directories: an operator problem, one line.
        raise CliError(str(exc)) from None
    finally:
        log_manager.close()


def prepare_model(config: Any) -> None:
    """Pull the bundled model once, before workers start, so N workers do not race to download it."""

    if not ENGINES[config.workers.engine].pullable:
        return
    store = ModelStore(config.engines.model_dir)
    if store.is_pulled(config.workers.engine):
        return
    log = logging.getLogger("tts_ops.models")
    notifier = SystemdNotifier()

    def progress(line: str) -> None:
        log.info("pull: %s", line)
        notifier.extend_timeout(PULL_EXTEND_USEC)

    log.warning("model %s not found in %s: pulling it now", config.workers.engine, store.root)
    notifier.extend_timeout(PULL_EXTEND_USEC)
    notifier.status(f"pulling model {config.workers.engine}")
    try:
        store.ensure(config.workers.engine, progress=progress)
    finally:
        notifier.close()
