"""The worker pool's settings derived from the config (daemon process, pure): the spec every worker process is
started from and the pool-wide limits, rebuilt from each reloaded config."""

from __future__ import annotations

import json
from pathlib import Path

from tts_ops.config import Config, ConfigError
from tts_ops.config.engine_options import engine_options
from tts_ops.observability.sdnotify import child_env
from tts_ops.quality import ScorerSpec
from tts_ops.supervisor import PoolSettings, WorkerSpec
from tts_ops.supervisor.policy import RestartOptions

__all__ = ["pool_settings", "resolved_dir", "scorer_spec", "worker_spec"]


def worker_spec(config: Config) -> WorkerSpec:
    w = config.workers
    policy: RestartOptions = {
        "first_restart_delay_s": w.first_restart_delay_s, "backoff_initial_s": w.backoff_initial_s,
        "backoff_max_s": w.backoff_max_s, "backoff_reset_s": w.backoff_reset_s, "crash_limit": w.crash_limit,
        "crash_window_s": w.crash_window_s, "failed_cooldown_s": w.failed_cooldown_s,
        "boot_failure_limit": w.boot_failure_limit}
    return WorkerSpec(
        engine=w.engine, runtime_dir=resolved_dir(config.paths.runtime_dir, "paths.runtime_dir"), threads=w.threads,
        store_dir=config.engines.model_dir,
        options_json=json.dumps(engine_options(config, w.engine)), boot_timeout_s=w.boot_timeout_s,
        probe_interval_s=w.probe_interval_s, probe_timeout_s=w.probe_timeout_s,
        failure_threshold=w.failure_threshold, kill_grace_s=w.kill_grace_s, policy=policy, env=child_env(),
        loudness_lufs=config.audio.loudness_lufs)


def resolved_dir(path: Path | None, key: str) -> Path:
    """A directory ``load_config`` always resolves (``paths.*``); None only in a Config built without it."""
    if path is None:
        raise ConfigError(f"{key} is not set (load_config resolves its default)")
    return path


def pool_settings(config: Config) -> PoolSettings:
    w = config.workers
    return PoolSettings(drain_timeout_s=config.server.graceful_timeout_s, max_rss_mb=w.max_rss_mb,
                        max_requests=w.max_requests, max_requests_jitter=w.max_requests_jitter,
                        watchdog_interval_s=w.watchdog_interval_s)




def scorer_spec(config: Config) -> ScorerSpec:
    """The quality scorer process: the workers' restart policy, except that one boot failure is enough for FAILED
    (a missing torch or altered weights do not fix themselves, and each attempt costs seconds of CPU loading
    torch); the cool-down retries it, as for workers."""
    w, q = config.workers, config.quality
    policy: RestartOptions = {
        "backoff_initial_s": w.backoff_initial_s, "backoff_max_s": w.backoff_max_s,
        "backoff_reset_s": w.backoff_reset_s, "crash_limit": w.crash_limit, "crash_window_s": w.crash_window_s,
        "failed_cooldown_s": w.failed_cooldown_s, "boot_failure_limit": 1}
    return ScorerSpec(threads=q.threads, nice=q.nice, boot_timeout_s=q.boot_timeout_s,
                      score_timeout_s=q.score_timeout_s, kill_grace_s=w.kill_grace_s, policy=policy,
                      env=child_env())
