"""The configuration of tts-ops (daemon and CLI): frozen models per subsystem (``schema``, ``engines``), loading
from YAML, environment and flags (``loader``), the generated reference, redaction of secrets, and the reload rules.

Callers import from here::

    from tts_ops.config import Config, ConfigError, load_config
"""

from tts_ops.config.engines import EnginesConfig
from tts_ops.config.loader import check_lexicon, instance_key, load_config
from tts_ops.config.reload import RESTART_ONLY, effective_config, restart_only_changes
from tts_ops.config.render import dump_effective, redact_url, render_yaml_reference
from tts_ops.config.schema import (
    EMOTIONS,
    ENGINES,
    OPENAI_VOICES,
    SAMBERT_VOICES,
    AdminConfig,
    CacheConfig,
    Config,
    LoggingConfig,
    MetricsConfig,
    OutputConfig,
    PathsConfig,
    ServerConfig,
    WorkersConfig,
)
from tts_ops.errors import ConfigError

__all__ = [
    "check_lexicon",
    "EMOTIONS", "ENGINES", "OPENAI_VOICES", "RESTART_ONLY", "SAMBERT_VOICES", "AdminConfig", "CacheConfig", "Config",
    "ConfigError", "EnginesConfig", "LoggingConfig", "MetricsConfig", "OutputConfig", "PathsConfig",
    "ServerConfig", "WorkersConfig", "instance_key", "dump_effective", "effective_config", "load_config", "redact_url",
    "render_yaml_reference", "restart_only_changes",
]
