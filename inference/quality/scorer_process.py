"""The MOS scorer process (``python -m inference.quality.scorer_process``), started and supervised by the daemon's
``tts_ops.quality.ScorerHandle``; never a synthesis worker, never the daemon's event loop.

It lowers its own priority (``--nice``), loads Distill-MOS with ``--threads`` torch threads (the daemon also bounds
OpenMP's pool through the environment), says ``ScorerReady`` on stdout, then answers each ``ScoreRequest`` line
on stdin with one ``ScoreReply`` line (``tts_vocab.scoring``), one at a time, until stdin closes. Audio it cannot
score (too short, silence, undecodable) is an error reply, not a crash. Logs go to stderr as ``LEVEL name:
message`` lines, which the daemon relays; stdout carries the protocol only (the original stdout is kept for it and
file descriptor 1 is pointed at stderr, so a stray print from a library cannot corrupt a reply).

Exit codes: 0 at end of input, ``EXIT_BOOT_FAILURE`` (3) when torch, distillmos or the verified weights are
missing (the daemon marks the scorer FAILED with the logged reason), anything else is a crash.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from typing import BinaryIO

import numpy as np

from inference.errors import BootError, InferenceError
from inference.quality.mos import MODEL_NAME, MODEL_VERSION, AudioFileError, MosScorer
from inference.worker import die_with_parent, save_coverage
from tts_vocab.exit_codes import EXIT_BOOT_FAILURE, EXIT_OK, EXIT_RUNTIME_CRASH
from tts_vocab.formats import FORMATS
from tts_vocab.scoring import ScoreReply, ScoreRequest, ScorerReady, line

log = logging.getLogger("tts_ops.scorer")


def decode_audio(request: ScoreRequest) -> tuple[np.ndarray, int]:
    """Mono float32 samples and rate of the encoded audio in ``request`` (raw pcm is s16le at its sample rate)."""
    import soundfile as sf

    if FORMATS[request.format].sf_format is None:
        pcm = np.frombuffer(request.audio[: len(request.audio) // 2 * 2], dtype="<i2")
        return pcm.astype(np.float32) / 32768.0, request.sample_rate
    try:
        samples, rate = sf.read(io.BytesIO(request.audio), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFileError(f"request {request.request_id}: cannot decode {request.format} ({exc})") from None
    return samples.mean(axis=1), int(rate)


def score_line(scorer: MosScorer, raw: bytes) -> ScoreReply:
    """The reply to one input line: a score, or the reason there is none."""
    start = time.monotonic()
    try:
        request = ScoreRequest.from_wire(json.loads(raw))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return ScoreReply("", None, f"bad request: {exc}", time.monotonic() - start)
    try:
        samples, rate = decode_audio(request)
        mos = scorer.score(samples, rate, name=f"request {request.request_id}")
    except InferenceError as exc:
        return ScoreReply(request.request_id, None, str(exc), time.monotonic() - start)
    return ScoreReply(request.request_id, mos, None, time.monotonic() - start)


def serve(scorer: MosScorer, source: BinaryIO, out: BinaryIO) -> int:
    for raw in source:
        if raw.strip():
            out.write(line(score_line(scorer, raw)))
            out.flush()
    return EXIT_OK


def protocol_stdout() -> BinaryIO:
    """A private copy of stdout for the protocol; fd 1 from now on writes to stderr."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.quality.scorer_process",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--nice", type=int, default=0, help="niceness added to this process")
    parser.add_argument("--parent-pid", type=int, default=None, help="supervisor pid; exit if it is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    die_with_parent(args.parent_pid)
    out = protocol_stdout()
    if args.nice:
        os.nice(args.nice)
    start = time.monotonic()
    try:
        scorer = MosScorer(threads=args.threads).load()
    except BootError as exc:
        log.error("boot failed: %s", exc)
        return EXIT_BOOT_FAILURE
    out.write(line(ScorerReady(f"{MODEL_NAME} {MODEL_VERSION}", os.getpid(), time.monotonic() - start)))
    out.flush()
    return serve(scorer, sys.stdin.buffer, out)


if __name__ == "__main__":
    try:
        code = main()
    except Exception:
        log.exception("scorer crashed")
        code = EXIT_RUNTIME_CRASH
    logging.shutdown()
    save_coverage()
    sys.stderr.flush()
    os._exit(code)
