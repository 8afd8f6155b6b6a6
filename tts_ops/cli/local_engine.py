"""An engine loaded in the operator's own process, for the commands that need no daemon (``synth``, ``frontend``)."""

from __future__ import annotations

import sys

from inference.engines.base import Engine
from inference.models.store import ModelStore
from tts_ops.config import Config
from tts_ops.config.engine_options import engine_options
from tts_vocab import engine_descriptor


def load_engine(config: Config, engine_id: str) -> Engine:
    """The engine, pulled first when it is pullable (so a first run shows the download instead of a silent wait),
    then loaded with the config's options."""
    # Heavy (the engine runtime: LiteRT or torch): loaded only by the commands that synthesise.
    from inference.engines import create_engine

    if engine_descriptor(engine_id).pullable:
        assert config.engines.model_dir is not None  # load_config resolves every default path
        ModelStore(config.engines.model_dir).ensure(engine_id, progress=lambda line: print(line, file=sys.stderr))
    engine = create_engine(engine_id, store_dir=config.engines.model_dir, threads=config.workers.threads,
                           options=engine_options(config, engine_id))
    engine.load()
    return engine
