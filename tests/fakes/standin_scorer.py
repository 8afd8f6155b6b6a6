"""A stand-in scorer process for the quality monitor's tests: speaks the scorer's pipe protocol
(``tts_vocab.scoring``) without torch, so a scorer boots in a fraction of a second. Run with ``python -m
tests.fakes.standin_scorer`` (the real scorer's flags are accepted and ignored); ``STANDIN_SCORER`` picks the
behaviour:

- ``ok`` (default): ready at once, every request scored ``STANDIN_MOS`` (default 3.5);
- ``boot-fail``: logs an ERROR "boot failed: ..." like the real one without torch, exits 3;
- ``hang``: ready, then never answers;
- ``crash``: ready, then exits 1 on the first request.
"""

from __future__ import annotations

import json
import os
import sys

from tts_vocab.exit_codes import EXIT_BOOT_FAILURE, EXIT_OK, EXIT_RUNTIME_CRASH
from tts_vocab.scoring import ScoreReply, ScoreRequest, ScorerReady, line


def main() -> int:
    mode = os.environ.get("STANDIN_SCORER", "ok")
    if mode == "boot-fail":
        print("ERROR tts_ops.scorer: boot failed: torch is not installed (stand-in)", file=sys.stderr, flush=True)
        return EXIT_BOOT_FAILURE
    out = sys.stdout.buffer
    out.write(line(ScorerReady("stand-in", os.getpid(), 0.01)))
    out.flush()
    mos = float(os.environ.get("STANDIN_MOS", "3.5"))
    for raw in sys.stdin.buffer:
        request = ScoreRequest.from_wire(json.loads(raw))
        if mode == "crash":
            return EXIT_RUNTIME_CRASH
        if mode == "hang":
            continue
        out.write(line(ScoreReply(request.request_id, mos, None, 0.001)))
        out.flush()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
