"""``tts-ops mos``: predicted MOS (Distill-MOS, 1 bad .. 5 excellent) of audio files, in the operator's shell.

Needs the quality extra (CPU torch + distillmos). A file that cannot be scored prints one line naming it and the
others are still scored; the exit code is then 1. Without the extra it fails with the install line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tts_ops.cli.errors import CliError
from tts_vocab.exit_codes import EXIT_FAILED, EXIT_USAGE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mos", help="predict the MOS (1..5) of audio files (needs the quality extra)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio file (any format soundfile reads)")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object: {"files": [{"file", "mos"} or {"file", "error"}...]}')
    p.add_argument("--threads", type=int, default=1, help="CPU threads for the model (default 1)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Heavy and optional (torch, distillmos: the quality extra).
    from inference.quality import AudioFileError, MosScorer
    if args.threads < 1:
        raise CliError("--threads must be at least 1", code=EXIT_USAGE)
    scorer = MosScorer(threads=args.threads).load()  # ScorerUnavailable (a BootError): one line, exit 1
    results: list[dict[str, object]] = []
    for path in args.files:
        try:
            results.append({"file": str(path), "mos": round(scorer.score_file(path), 3)})
        except AudioFileError as exc:
            results.append({"file": str(path), "error": str(exc)})
            print(f"tts-ops mos: {exc}", file=sys.stderr)
            continue
        if not args.json:
            print(f"{results[-1]['mos']:.2f}  {path}")
    if args.json:
        print(json.dumps({"files": results}, ensure_ascii=False))
    return EXIT_FAILED if any("error" in r for r in results) else 0
