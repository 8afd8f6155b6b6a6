"""The ``tts-ops`` command line: one entry point, one module per family of sub-commands.

Runs in the operator's shell (and as the daemon's entry point for ``serve``). Expected failures print one line to
stderr and exit 2 (usage) or 1 (operation failed); tracebacks are only for bugs.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from importlib import metadata

from inference.errors import InferenceError
from tts_ops.cli import admin, frontend, instances, models, quality, serve, synth
from tts_ops.cli.errors import CliError
from tts_ops.errors import ConfigError, TtsOpsError
from tts_vocab.engines import ENGINE_IDS
from tts_vocab.errors import InvalidRequest
from tts_vocab.exit_codes import EXIT_FAILED, EXIT_USAGE

__all__ = ["CliError", "build_parser", "main", "version_text"]


def version_text() -> str:
    """``tts-ops 0.1.0 (engines: fastspeech2-baker, sambert-hifigan; Python 3.11.7)``: the installed package's
    version, so it is the one pip reports, not a copy in the source."""
    try:
        version = metadata.version("tts-ops")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    return f"tts-ops {version} (engines: {', '.join(ENGINE_IDS)}; Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tts-ops", description="Supervisor daemon for Chinese multi-emotion TTS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-V", "--version", action="version", version=version_text(),
                        help="print the version and the engine ids, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (serve, synth, frontend, models, admin, instances, quality):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # WeTextProcessing (tn/processor.py) installs its own INFO StreamHandler on the "wetext"
    # logger unless it already has a handler, printing FST paths on every `tts-ops synth`; keep it at our level.
    logging.getLogger("wetext").addHandler(logging.NullHandler())
    logging.getLogger("wetext").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except CliError as exc:
        print(f"tts-ops {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except InvalidRequest as exc:
        print(f"tts-ops {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InferenceError as exc:
        print(f"tts-ops {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as exc:
        print(f"tts-ops {args.command}: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except TtsOpsError as exc:
        print(f"tts-ops {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
