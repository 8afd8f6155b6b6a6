"""Numeric bounds shared by the daemon's request validation and the worker's job validation (all processes)."""

from __future__ import annotations

#: Speed factor a client may ask for: 1.0 is the voice's own tempo, 2.0 twice as fast.
SPEED_MIN = 0.5
SPEED_MAX = 2.0
#: Telephone band to full band: below 8 kHz speech is unintelligible, above 48 kHz no codec or player we serve
#: gains anything, and both bounds keep the resampler's polyphase filter a sane size.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
#: Longest silence a stream chunk may ask to carry after it (seconds).
MAX_PAUSE_S = 5.0
#: Most worker processes one daemon runs: beyond 64 single-threaded workers the supervisor's probes and RAM
#: dominate, not throughput.
MAX_WORKERS = 64
