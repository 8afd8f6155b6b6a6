"""Schemathesis hooks for the admin run of ``test_openapi.py`` (loaded through ``SCHEMATHESIS_HOOKS``).

``POST /admin/scale`` scales real worker processes: a generated ``{"workers": 64}`` would start 64 model-loading
processes on the test machine. Every body the daemon would accept is turned into ``{"workers": 1}`` before it is
sent, so on the one-worker test daemon each accepted scale is a no-op, while the bodies it must reject (wrong type,
out of range, not an object) still go out unchanged and are checked against the document.
"""

from __future__ import annotations

import schemathesis

MAX_WORKERS = 64


def _accepted_count(body: object) -> bool:
    # Mirrors AdminApi.handle_scale: an integer (or integer-valued float) from 1 to 64, not a boolean.
    if not isinstance(body, dict):
        return False
    count = body.get("workers")
    if isinstance(count, float) and count.is_integer():
        count = int(count)
    return isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_WORKERS


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.path == "/admin/scale" and _accepted_count(case.body):
        case.body = {**case.body, "workers": 1}
