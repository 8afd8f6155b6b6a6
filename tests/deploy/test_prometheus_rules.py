"""``promtool check rules`` and ``promtool test rules`` over deploy/prometheus/, the example scrape config, and the
metric-name extraction the live checks rely on."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.deploy.conftest import PROMETHEUS_DIR, RULES, dashboard_queries, metric_names, rules, run_promtool


def test_rules_pass_promtool_check(promtool):
    result = run_promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_rejects_a_broken_rule(promtool, tmp_path: Path):
    # Positive control for the check above: promtool really parses the expressions.
    broken = tmp_path / "broken.rules.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m])\n")
    assert run_promtool("check", "rules", str(broken)).returncode != 0


def test_rule_unit_tests_pass(promtool):
    result = run_promtool("test", "rules", "tests.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_summary_description_runbook_and_severity():
    alerts = [rule for rule in rules() if "alert" in rule]
    assert len(alerts) >= 9
    for rule in alerts:
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
    # Each alert has a unit test that expects it to fire.
    tests = (PROMETHEUS_DIR / "tests.yml").read_text()
    for rule in alerts:
        assert f"alertname: {rule['alert']}\n        eval_time" in tests, rule["alert"]


def test_example_scrape_config_passes_promtool(promtool, tmp_path: Path):
    shutil.copy(RULES, tmp_path / RULES.name)
    token = tmp_path / "admin.token"
    token.write_text("t0ken\n")
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    assert "/var/lib/tts-ops/admin.token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/var/lib/tts-ops/admin.token", str(token)))
    result = run_promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_name_extraction():
    assert metric_names('histogram_quantile(0.95, sum by (le, job) (rate(a_bucket{endpoint=~"/tts|x", le!="1"}'
                        '[$__rate_interval])))') == {"a_bucket"}
    assert metric_names("b / clamp_min(c, 1) > 0.8 and on (instance) d:rec unless absent(e)") == {
        "b", "c", "d:rec", "e"}
    assert metric_names('sum(rate(x_total{status="503"}[5m])) by (instance) * 1e3') == {"x_total"}
    # Both files yield names (a broken extractor returning nothing would pass the live checks vacuously).
    assert "tts_ops_requests_total" in set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert "tts_ops_worker_rss_bytes" in set().union(*map(metric_names, dashboard_queries()))
