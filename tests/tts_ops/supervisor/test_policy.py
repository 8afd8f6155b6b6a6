"""RestartPolicy: backoff, reset after a stable run, crash-loop and boot-failure detection (pure logic)."""

from __future__ import annotations

import pytest

from tts_ops.supervisor.policy import RestartPolicy


def crash(policy: RestartPolicy, now: float):
    return policy.on_exit(now, boot_failure=False)


def boot_fail(policy: RestartPolicy, now: float):
    return policy.on_exit(now, boot_failure=True)


def test_first_crash_is_restarted_at_once_then_backoff_doubles_from_initial_and_is_capped():
    # crash_limit high and crashes far apart: only the backoff is under test.
    policy = RestartPolicy(backoff_initial_s=0.5, backoff_max_s=5.0, crash_limit=100, crash_window_s=1.0)
    delays = []
    for i in range(8):
        decision = crash(policy, now=i * 10.0)
        assert not decision.failed and decision.reason == "crash"
        delays.append(decision.delay_s)
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_first_restart_delay_is_configurable():
    policy = RestartPolicy(first_restart_delay_s=3.0, backoff_initial_s=0.5, crash_limit=100)
    assert [crash(policy, i * 10.0).delay_s for i in range(3)] == [3.0, 0.5, 1.0]


def test_backoff_max_below_initial_still_caps_later_delays():
    policy = RestartPolicy(backoff_initial_s=0.5, backoff_max_s=0.8, crash_limit=100, crash_window_s=1.0)
    assert [crash(policy, i * 10.0).delay_s for i in range(4)] == [0.0, 0.5, 0.8, 0.8]


def test_ready_long_enough_resets_backoff():
    policy = RestartPolicy(backoff_initial_s=0.5, backoff_reset_s=60.0, crash_limit=100, crash_window_s=1.0)
    for i in range(4):
        crash(policy, i * 10.0)
    assert crash(policy, 40.0).delay_s == 4.0
    assert policy.on_ready_for(59.9) is False  # not long enough: nothing forgotten
    assert crash(policy, 50.0).delay_s == 8.0
    assert policy.on_ready_for(60.0) is True
    assert policy.on_ready_for(120.0) is False  # nothing left to reset
    # A crash after the stable run is a first crash again: at once, then the backoff starts over.
    assert crash(policy, 60.0).delay_s == 0.0
    assert crash(policy, 61.0).delay_s == 0.5


def test_on_ready_for_with_clean_history_reports_nothing():
    assert RestartPolicy().on_ready_for(10_000) is False


def test_crash_limit_within_window_fails_with_cooldown():
    policy = RestartPolicy(crash_limit=5, crash_window_s=60.0, failed_cooldown_s=300.0, backoff_max_s=30.0)
    decisions = [crash(policy, 100.0 + i * 10) for i in range(5)]  # 5 crashes within 40 s
    assert [d.failed for d in decisions] == [False] * 4 + [True]
    last = decisions[-1]
    assert last.delay_s == 300.0 and "crashed 5 times within 60s" in last.reason


def test_after_failed_the_crash_count_starts_over():
    policy = RestartPolicy(crash_limit=3, crash_window_s=60.0, failed_cooldown_s=300.0)
    assert [crash(policy, t).failed for t in (0, 1, 2)] == [False, False, True]
    assert [crash(policy, t).failed for t in (3, 4)] == [False, False]
    assert crash(policy, 5).failed


def test_crashes_spread_wider_than_the_window_do_not_trip():
    policy = RestartPolicy(crash_limit=3, crash_window_s=60.0, backoff_max_s=30.0)
    # Any three consecutive crashes span more than 60 s.
    for i in range(20):
        assert not crash(policy, i * 31.0).failed


def test_crash_exactly_window_apart_still_counts():
    # The window is inclusive: a crash exactly crash_window_s after the first one is still inside it.
    policy = RestartPolicy(crash_limit=2, crash_window_s=60.0)
    assert not crash(policy, 0.0).failed
    assert crash(policy, 60.0).failed


def test_boot_failure_limit_consecutive_fails():
    policy = RestartPolicy(boot_failure_limit=3, failed_cooldown_s=120.0, backoff_initial_s=0.5)
    first, second, third = (boot_fail(policy, t) for t in (0.0, 1.0, 2.0))
    assert not first.failed and first.reason == "boot failure" and first.delay_s == 0.5
    assert not second.failed and second.delay_s == 1.0
    assert third.failed and third.delay_s == 120.0 and "boot failed 3 times in a row" in third.reason


def test_boot_failures_spread_over_any_time_still_count():
    # Boot failures are counted in a row, not in a window.
    policy = RestartPolicy(boot_failure_limit=2)
    assert not boot_fail(policy, 0.0).failed
    assert boot_fail(policy, 10_000.0).failed


def test_a_normal_crash_resets_the_boot_failure_streak():
    policy = RestartPolicy(boot_failure_limit=3, crash_limit=100)
    assert not boot_fail(policy, 0.0).failed
    assert not boot_fail(policy, 1.0).failed
    assert not crash(policy, 2.0).failed  # the worker did boot: streak over
    assert not boot_fail(policy, 3.0).failed
    assert not boot_fail(policy, 4.0).failed
    assert boot_fail(policy, 5.0).failed


def test_stable_run_resets_the_boot_failure_streak():
    policy = RestartPolicy(boot_failure_limit=2, backoff_reset_s=60.0)
    assert not boot_fail(policy, 0.0).failed
    assert policy.on_ready_for(60.0) is True
    assert not boot_fail(policy, 100.0).failed


def test_boot_failures_do_not_count_toward_the_crash_limit():
    policy = RestartPolicy(crash_limit=2, boot_failure_limit=100)
    assert not crash(policy, 0.0).failed
    for t in (1.0, 2.0, 3.0):
        assert not boot_fail(policy, t).failed


@pytest.mark.parametrize("limit", [1, 2])
def test_small_limits(limit):
    policy = RestartPolicy(crash_limit=limit, boot_failure_limit=limit)
    results = [crash(policy, float(i)).failed for i in range(limit)]
    assert results == [False] * (limit - 1) + [True]


@pytest.mark.parametrize("reason, key", [
    ("killed by SIGKILL", "killed by SIGKILL"), ("exit code 1", "exit code 1"),
    ("boot failure (exit 3)", "boot failure"), ("boot timeout after 180s", "boot timeout"),
    ("hung: 3 health probes failed", "hung"), ("recycle: rss 1600 MB > max_rss_mb 1536", "recycle: rss"),
    ("recycle: served 1012 >= max_requests 1000", "recycle: requests"), (None, "unknown"),
])
def test_reason_key_is_a_stable_category_without_numbers_from_config(reason, key):
    from tts_ops.supervisor.reasons import reason_key

    assert reason_key(reason) == key
