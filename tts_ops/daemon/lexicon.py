"""The pronunciation dictionary as the workers get it (daemon process, at start and on each SIGHUP's config load).

The daemon validates ``engines.fastspeech2_baker.lexicon`` when it loads the config (a bad line is a ConfigError:
at start the daemon does not start, on HUP the reload is rejected and the running dictionary stays), then pins
what it validated: a copy named by the entries' digest, ``<runtime_dir>/lexicon-<digest>.tsv``, which is the path
the workers are given. A worker restarted later (crash, recycle, scale-up) therefore loads the dictionary the
daemon validated at the last start or HUP, never an edit made to the operator's file since. Copies are not
deleted while the daemon runs: a rollback after a failed HUP starts workers on the previous copy. The runtime
directory is a tmpfs under systemd, emptied at reboot.
"""

from __future__ import annotations

import os
from pathlib import Path

from tts_ops.config import Config, check_lexicon
from tts_ops.daemon.specs import resolved_dir
from tts_vocab.lexicon import Lexicon

__all__ = ["pin_lexicon"]


def pin_lexicon(config: Config) -> Config:
    """``config`` with its dictionary replaced by the daemon's validated copy; ConfigError for a bad dictionary."""
    lexicon = check_lexicon(config)
    if lexicon is None:
        return config
    runtime_dir = resolved_dir(config.paths.runtime_dir, "paths.runtime_dir")
    copy = _write_copy(lexicon, runtime_dir)
    engine = config.engines.fastspeech2_baker.model_copy(update={"lexicon": copy})
    engines = config.engines.model_copy(update={"fastspeech2_baker": engine})
    return config.model_copy(update={"engines": engines})


def _write_copy(lexicon: Lexicon, runtime_dir: Path) -> Path:
    runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = runtime_dir / f"lexicon-{lexicon.digest}.tsv"
    if path.is_file():
        return path
    text = "".join(f"{word}\t{' '.join(readings)}\n" for word, readings in lexicon.entries.items())
    # Written whole then renamed: a worker starting meanwhile never reads half a file.
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path
