"""``tts-ops frontend``: the phonemizer view of a text, in the operator's shell — what the model would be given
(normalised text, per chunk the pinyin actually sent with sandhi applied, and the model's symbols).

``--json`` prints exactly ``{"normalized", "chunks": [{"text", "pinyin", "symbols"}]}``, the body ``POST /frontend``
answers; without it, a readable table that also lists the characters the voice cannot read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tts_ops.cli.local_engine import load_engine
from tts_ops.config import load_config
from tts_vocab.fields import parse_text
from tts_vocab.messages import FrontendView


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("frontend", help="show what the model is given for a text: normalised text, pinyin, symbols")
    p.add_argument("text", help="text to look at; '-' reads standard input")
    p.add_argument("--json", action="store_true",
                   help='print {"normalized", "chunks": [{"text", "pinyin", "symbols"}]}')
    p.add_argument("--engine", default=None, help="engine id (default: from config, fastspeech2-baker)")
    p.add_argument("--config", type=Path, default=None, help="YAML config (for engine options and model dir)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = parse_text(sys.stdin.read() if args.text == "-" else args.text)  # "" is an error, as on POST /frontend
    config = load_config(args.config)
    view = load_engine(config, args.engine or config.workers.engine).phonemize(text)
    print(json.dumps(view.public(), ensure_ascii=False) if args.json else table(view))
    return 0


def table(view: FrontendView) -> str:
    lines = [f"normalized: {view.normalized}"]
    for number, chunk in enumerate(view.chunks, 1):
        lines += [f"chunk {number}: {chunk.text}", f"  pinyin:  {' '.join(chunk.pinyin)}",
                  f"  symbols: {' '.join(chunk.symbols)}"]
    if not view.chunks:
        lines.append("(nothing speakable)")
    if view.skipped:
        lines.append("skipped: " + ", ".join(f"{char} ({code})" for char, code in view.skipped))
    return "\n".join(lines)
