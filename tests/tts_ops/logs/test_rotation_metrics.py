"""The log rotation and deletion metrics count what the log manager really did: rotations, not rotate_logs
job runs (a size-mode run is only a size check), and files pruned by keep-N in files_deleted / bytes_freed."""

from __future__ import annotations

import io
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.tts_ops.logs.util import emit_access
from tts_ops.config import Config, LoggingConfig, OutputConfig
from tts_ops.logs.manager import LogManager, setup_logging
from tts_ops.maintenance.scheduler import Maintenance
from tts_ops.observability.metrics import Metrics
from tts_ops.storage.output_store import OutputStore


def setup(tmp_path: Path, **logging_kw) -> tuple[LogManager, Maintenance, Metrics]:
    config = Config(output=OutputConfig(dir=tmp_path / "out", min_free_mb=0),
                    logging=LoggingConfig(dir=tmp_path / "logs", **logging_kw))
    manager = setup_logging(config, stream=io.StringIO())
    maintenance = Maintenance(config, log_manager=manager, output_store=OutputStore(config.output.dir, enabled=False))
    return manager, maintenance, Metrics(maintenance=maintenance, log_manager=manager)


def scrape(metrics: Metrics) -> dict[str, float]:
    body, _ = metrics.render()
    return {s.name: s.value for f in text_string_to_metric_families(body.decode()) for s in f.samples
            if s.name.startswith("tts_ops_")}


def grow_access_log(manager: LogManager, over: int, tag: str) -> None:
    i = 0
    while manager.paths["access"].stat().st_size <= over:
        emit_access(f"{tag}-{i}")
        i += 1


async def test_rotation_metric_counts_rotations_not_size_checks(tmp_path):
    manager, maintenance, metrics = setup(tmp_path, rotate_when="size", rotate_max_bytes=500, keep=10)
    for _ in range(5):  # nothing big enough: five size checks, no rotation
        assert (await maintenance.run_now("rotate_logs"))["last_result"] == {}
    assert scrape(metrics)["tts_ops_log_rotations_total"] == 0
    for round_ in range(3):
        grow_access_log(manager, 500, f"r{round_}")
        assert list((await maintenance.run_now("rotate_logs"))["last_result"]) == ["access"]
    assert maintenance.counters["runs"]["rotate_logs"] == 8
    assert manager.stats()["rotations"] == 3
    assert scrape(metrics)["tts_ops_log_rotations_total"] == 3


async def test_keep_n_pruning_counts_as_files_deleted_and_bytes_freed(tmp_path):
    manager, maintenance, metrics = setup(tmp_path, keep=1, compress=False)
    sizes = []
    for round_ in range(3):
        grow_access_log(manager, 200, f"p{round_}")
        sizes.append(manager.rotate_all(wait=True)["access"]["bytes"])
    # keep=1: the first two rotated files were pruned, the newest is kept.
    assert [p.name.startswith("access.log.") for p in manager.rotated_files()] == [True]
    assert maintenance.counters["files_deleted"] == 0  # the maintenance jobs deleted nothing themselves
    s = scrape(metrics)
    assert s["tts_ops_files_deleted_total"] == 2
    assert s["tts_ops_bytes_freed_total"] == sizes[0] + sizes[1]
    assert manager.stats()["pruned_files"] == 2 and manager.stats()["pruned_bytes"] == sizes[0] + sizes[1]
