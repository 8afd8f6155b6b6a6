"""An engine loaded in the operator's own process, for the commands that need no daemon (``synth``, ``frontend``)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from inference.engines.base import Engine
from inference.models.store import ModelStore
from tts_ops.config import Config
from tts_ops.config.engine_options import engine_options
from tts_vocab import engine_descriptor

# What native runtimes print straight to file descriptor 2, bypassing Python's logging: LiteRT's C++ logger writes
# "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." at the first inference (TF_CPP_MIN_LOG_LEVEL does not
# reach it: measured with ai-edge-litert, every level still prints it).
NATIVE_INFO = re.compile(rb"^INFO: ")


@contextlib.contextmanager
def native_info_silenced(enabled: bool = True) -> Iterator[None]:
    """Send fd 2 to a temporary file while the block runs, then replay it without the native ``INFO:`` lines:
    warnings and errors (Python's or the runtime's) still reach stderr, in order, once the block ends."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured if not NATIVE_INFO.match(line))
            if kept:
                sys.stderr.buffer.write(kept)
                sys.stderr.flush()


def load_engine(config: Config, engine_id: str, *, quiet_native: bool = False) -> Engine:
    """The engine, pulled first when it is pullable (so a first run shows the download instead of a silent wait),
    then loaded with the config's options; ``quiet_native`` drops the runtime's INFO lines while it loads."""
    # Heavy (the engine runtime: LiteRT or torch): loaded only by the commands that synthesise.
    from inference.engines import create_engine

    if engine_descriptor(engine_id).pullable:
        assert config.engines.model_dir is not None  # load_config resolves every default path
        ModelStore(config.engines.model_dir).ensure(engine_id, progress=lambda line: print(line, file=sys.stderr))
    with native_info_silenced(quiet_native):
        engine = create_engine(engine_id, store_dir=config.engines.model_dir, threads=config.workers.threads,
                               options=engine_options(config, engine_id))
        engine.load()
    return engine
