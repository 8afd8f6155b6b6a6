"""Every metric name in the alert/recording rules and the dashboard is one a live daemon exports on /metrics
(with Redis configured, so the Redis gauge exists, and after traffic, so labelled histograms have series)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http
from tests.deploy.conftest import dashboard_queries, metric_names, rules
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow

# The sample names a family of each type declares (a counter with no labelled child yet still declares its name).
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names


def test_rules_and_dashboard_use_only_exported_metrics(start_daemon):
    redis = RedisServer()
    redis.start()
    try:
        daemon = start_daemon({"cache": {"enabled": True, "redis_url": redis.url},
                               "workers": {"watchdog_interval_s": 0.5}}, workers=1)
        assert http("POST", daemon.base_url + "/tts", {"text": "指标名称。"})[0] == 200

        def scrape_with_rss() -> str | None:
            """The /metrics text once the watchdog has sampled the worker's RSS (absent before)."""
            code, _, body = http("GET", daemon.admin_url + "/metrics", token=daemon.token)
            assert code == 200
            return body.decode() if b"tts_ops_worker_rss_bytes{" in body else None

        text = daemon.wait_until(scrape_with_rss, 30, what="worker RSS sampled")
    finally:
        redis.close()
    exported = exported_names(text)
    assert "_created" not in text
    assert {"tts_ops_build_info", "tts_ops_redis_up", "tts_ops_disk_guard_active"} <= exported  # positive control
    assert "tts_ops_nonexistent_total" not in exported  # the check below can fail

    recorded = {rule["record"] for rule in rules() if "record" in rule}
    used = {name: where for where, exprs in (("rules", [rule["expr"] for rule in rules()]),
                                             ("dashboard", dashboard_queries()))
            for expr in exprs for name in metric_names(expr)}
    assert len(used) >= 20
    # `up` is Prometheus' own series per scrape target (the TtsOpsDown alert), not the daemon's.
    unknown = {name: where for name, where in used.items()
               if name not in exported and not (":" in name and name in recorded) and name != "up"}
    assert unknown == {}, f"not exported by the daemon: {unknown}"
