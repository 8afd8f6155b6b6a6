"""A client that leaves an mp3 stream mid-encode must not crash the daemon: the assembler's encoder is used by a
thread, and closing it from the loop while that thread writes is a use-after-free in libsndfile/LAME (SIGSEGV).

The race runs in a subprocess, so a crash shows as a negative exit code instead of killing pytest."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import asyncio, random, sys
    import numpy as np
    from tts_ops.service.assemblers import ChunkAudio, Mp3Assembler
    from tts_vocab import SynthesisReply

    RATE = 24000
    t = np.arange(RATE * 6) / RATE  # 6 s of audio: the encode takes long enough to be cut mid-way
    PCM = (np.sin(2 * np.pi * 220 * t) * 12000).astype("<i2").tobytes()

    async def one(rng):
        assembler = Mp3Assembler("mp3")
        if rng.random() < 0.5:  # sometimes an encoder that has already produced audio
            await assembler.add(ChunkAudio(0, PCM[:RATE], "w1", SynthesisReply(RATE, 0.5, 0.1)))
        task = asyncio.create_task(assembler.add(ChunkAudio(1, PCM, "w1", SynthesisReply(RATE, 6.0, 0.1))))
        await asyncio.sleep(rng.uniform(0, 0.03))
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assembler.close()  # what streaming.py's cleanup does when the client is gone
        return assembler

    async def main():
        rng = random.Random(int(sys.argv[1]))
        assemblers = [await one(rng) for _ in range(int(sys.argv[2]))]
        # Every encoder is released once its thread is done with it (no leak).
        for _ in range(200):
            if all(a.encoder is None for a in assemblers):
                break
            await asyncio.sleep(0.05)
        assert all(a.encoder is None for a in assemblers), "an encoder was never closed"
        # A closed assembler refuses further work rather than starting a new encoder.
        late = assemblers[-1]
        try:
            await late.add(ChunkAudio(2, PCM[:RATE], "w1", SynthesisReply(RATE, 0.5, 0.1)))
        except Exception:
            pass
        await asyncio.sleep(0.1)
        assert late.encoder is None

    asyncio.run(main())
    print("ok")
""")


@pytest.mark.parametrize("seed", [1, 2])
def test_cancelled_mp3_encode_then_close_does_not_crash(seed):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(seed), "30"], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-2000:])
