"""What the model store reports: one model's status (``models list``, the daemon's status page), the result of a
verify, and the plain-text table ``tts-ops models list`` prints. Used by the CLI, the daemon and the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inference.models.catalog import DEFAULT_MODEL

#: ``ModelStatus.check`` of a pulled model whose files failed the check (``models list`` shows it as CORRUPT).
CHECK_FAILED = "failed"


@dataclass(frozen=True)
class ModelStatus:
    """One catalog model as seen in the store. ``path`` is where its files are (or would be) on disk."""

    id: str
    version: str
    pulled: bool
    path: Path
    size: int  # bytes recorded in the manifest; 0 when not pulled
    manifest: dict | None
    description: str = ""
    problem: str | None = None  # why a present model does not count as pulled (outdated, corrupt manifest, files)
    #: The files check ``list`` ran on a pulled model: "size" or "sha256" (passed), CHECK_FAILED, None (not run).
    check: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a successful `ModelStore.verify` (a failed one raises ModelStoreError)."""

    model_id: str
    version: str
    path: Path
    files: tuple[str, ...]
    total_bytes: int
    method: str  # "sha256" for pinned models, "size" for directory models
    seconds: float

    def __str__(self) -> str:  # what the CLI prints
        return self.summary()

    def summary(self) -> str:
        return (
            f"{self.model_id} {self.version}: {len(self.files)} files, {human_size(self.total_bytes)}, "
            f"{self.method} OK in {self.seconds:.2f}s ({self.path})"
        )


def format_list(statuses: list[ModelStatus]) -> str:
    """A plain-text table for `tts-ops models list`."""
    rows = [("MODEL", "VERSION", "STATUS", "SIZE", "PATH")]
    for status in statuses:
        state = _state(status)
        name = f"{status.id} (default)" if status.id == DEFAULT_MODEL else status.id
        size = human_size(status.size) if status.manifest else "-"
        rows.append((name, status.version, state, size, str(status.path)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    # every column padded but the last (the path)
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    lines += [f"  {status.id}: {status.problem}" for status in statuses if status.problem]
    return "\n".join(lines)


def _state(status: ModelStatus) -> str:
    if status.check == CHECK_FAILED:
        return "CORRUPT"
    if status.pulled:
        return f"pulled, {status.check} ok" if status.check else "pulled, unchecked"
    return "not pulled" if status.problem is None else "needs pull"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "TiB":
            break
    return f"{scaled:.1f} {unit}"
