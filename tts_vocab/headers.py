"""HTTP header names (daemon and worker processes): the worker's reply metadata and the public API's extras.

Declared once so that the worker that writes a header and the front end that reads it cannot drift apart.
"""

from __future__ import annotations

# -- worker reply (also forwarded on the public API) ---------------------------------------------------------------
SAMPLE_RATE = "X-Sample-Rate"
AUDIO_DURATION = "X-Audio-Duration"
SYNTHESIS_TIME = "X-Synthesis-Time"
ENGINE = "X-Engine"
MODEL_VERSION = "X-Model-Version"
WORKER_PID = "X-Worker-Pid"
#: Code points the voice could not read, space-separated (``U+1F600 U+2603``); absent when there were none.
SKIPPED_CHARS = "X-Skipped-Chars"
#: Bytes of the JSON timings trailer after the audio (only for a job with ``timestamps``).
TIMINGS_BYTES = "X-Timings-Bytes"

# -- public API only -----------------------------------------------------------------------------------------------
CACHE = "X-Cache"
WORKER = "X-Worker"
REQUEST_ID = "X-Request-ID"
OUTPUT_URL = "X-Output-URL"
SPEED_APPLIED = "X-Speed-Applied"
MODEL = "X-Model"
RETRY_AFTER = "Retry-After"

#: Reply headers describing the model, forwarded from the worker to the client unchanged.
MODEL_HEADERS = (ENGINE, MODEL_VERSION)
