"""Configuration schema of tts-ops: one frozen pydantic model per subsystem, validated once at start, strictly
(``count: true`` or ``port: "5000"`` is an error naming the key, not a coerced value).

Used by both processes that read settings: the supervisor daemon (``tts-ops serve``, re-read on SIGHUP) and
the CLI (admin client, ``tts-ops synth``, ``tts-ops models pull``). This module holds the models only; reading
the YAML file, the environment and CLI overrides lives in ``tts_ops.config.loader``; the package re-exports both:

    from tts_ops.config import Config, ConfigError, load_config, dump_effective, render_yaml_reference

Precedence, lowest to highest: built-in defaults < systemd directories ($STATE_DIRECTORY, $LOGS_DIRECTORY,
$CACHE_DIRECTORY/models, $RUNTIME_DIRECTORY) < YAML file < TTS_OPS_* environment variables < CLI flags.
After ``load_config`` every path field is an absolute ``Path`` (``None`` defaults resolved), so consumers
never handle ``None`` or the working directory themselves. ``config/tts-ops.yaml`` is generated from the
field descriptions below (``python -m tts_ops.config > config/tts-ops.yaml``); a test keeps them in sync.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tts_ops.errors import ConfigError
from tts_vocab.emotions import EMOTIONS as EMOTIONS  # re-exported by tts_ops.config
from tts_vocab.engines import ENGINE_IDS, FASTSPEECH2_BAKER, FASTSPEECH2_PRESETS, SAMBERT_HIFIGAN, VOICE_IDS
from tts_vocab.engines import SAMBERT_VOICES as SAMBERT_VOICES  # re-exported by tts_ops.config
from tts_vocab.limits import MAX_WORKERS

MIB = 1024 * 1024
# Literal types for pydantic's strict validation and JSON schema; tests/tts_ops/config/test_vocabulary.py checks
# they list exactly the shared vocabulary's ids (tts_vocab.engines), which every other module uses.
EngineName = Literal["fastspeech2-baker", "sambert-hifigan"]
SambertVoice = Literal["zhitian_emo", "zhiyan_emo", "zhizhe_emo", "zhibei_emo"]
ENGINES: tuple[str, ...] = ENGINE_IDS
OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer", "ash", "coral", "sage", "ballad", "verse",
                 "marin", "cedar")
# JSON clients escape CJK as \uXXXX (json.dumps default): 6 bytes per character is the realistic worst case.
JSON_BYTES_PER_CHAR = 6


def _auto_workers() -> int:
    # CPUs this process may run on (affinity, cpusets), not the host's total; capped because beyond 64
    # single-threaded workers the supervisor's probes and RAM dominate, not throughput.
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _path_in(value: Any) -> Any:
    # Path("") is ".", which would silently write into the working directory; "~" is expanded for humans.
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty (use null for the default)")
        return Path(value).expanduser()
    return value


def _as_tuple(value: Any) -> Any:
    # A YAML/JSON sequence is a list; the frozen model stores a tuple (strict mode would refuse the list).
    return tuple(value) if isinstance(value, list) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _cross(at: str, message: str, *related: str) -> PydanticCustomError:
    # The loader appends ``at`` to the error's location, so cross-field errors name the exact key, and looks up
    # ``related`` keys (same base) to name the file or variable that set the other side of the conflict.
    return PydanticCustomError("cross_field", message, {"at": at, "related": ",".join(related)})


FilePath = Annotated[Path, BeforeValidator(_path_in)]
Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    # Strict: a file saying ``count: true`` or ``port: "5000"`` is a mistake to report, not to coerce (an int is
    # still accepted where a float is expected). Environment values are strings by nature: config_load converts
    # them per field before validation. Subclasses inherit (and pydantic merges) this model_config.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_section(cls, data: Any) -> Any:
        # A YAML section whose keys are all commented out ("server:" alone) parses as null: treat as empty.
        return {} if data is None else data


class ServerConfig(_Section):
    """Public HTTP API (POST /tts and the OpenAI-compatible /v1/audio/speech)."""

    host: str = Field("0.0.0.0", min_length=1,
        description="Interface the public API binds to; 0.0.0.0 matches the reference deployment.")
    port: int = Field(5000, ge=1, le=65535,
        description="TCP port of the public API (the reference deployment publishes 5000).")
    max_text_chars: int = Field(1000, gt=0,
        description="Longest text accepted by POST /tts, in characters; longer -> 413.")
    max_input_chars: int = Field(4096, gt=0,
        description="Longest input accepted by /v1/audio/speech, in characters (OpenAI's limit).")
    max_body_bytes: int = Field(65536, gt=0,
        description="Largest request body read, in bytes; larger -> 413 before parsing.")
    queue_limit: int = Field(64, ge=0,
        description="Requests allowed to wait for a free worker beyond the in-flight ones; beyond it -> 503.")
    request_timeout_s: Seconds = Field(120.0,
        description="Per-request deadline including queueing, in seconds; exceeded -> 504.")
    drain_delay_s: float = Field(5.0, ge=0,
        description="On SIGTERM or POST /admin/drain, time /ready and /health answer 503 while still serving, so a "
                    "load balancer's health check sees the drain before the listener closes.")
    graceful_timeout_s: float = Field(30.0, ge=0,
        description="After the drain delay, time allowed for in-flight requests to finish; drain_delay_s plus this "
                    "must stay below systemd TimeoutStopSec.")
    retry_after_s: int = Field(2, ge=0,
        description="Value of the Retry-After header sent with 503, in whole seconds (HTTP allows no fraction).")
    api_keys: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = Field((), repr=False,
        description="Bearer keys accepted by the public API; empty = no authentication.")
    parallel_long_text: bool = Field(True,
        description="Split a non-streamed text of several chunks over workers idle at that moment (never over "
                    "workers other requests wait for), joined in order; false = one worker per request.")
    event_loop: Literal["auto", "asyncio", "uvloop"] = Field("auto",
        description="Event loop of the daemon: auto = uvloop when installed on Linux (extra 'fast'), else asyncio; "
                    "uvloop fails the start when it is not installed.")

    @field_validator("api_keys")
    @classmethod
    def _keys_not_blank(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        # A blank key would authenticate "Authorization: Bearer " - i.e. everyone.
        if any(not k.strip() for k in keys):
            raise ValueError("API keys must not be empty")
        return keys

    @model_validator(mode="after")
    def _body_fits_text(self) -> ServerConfig:
        need = JSON_BYTES_PER_CHAR * max(self.max_text_chars, self.max_input_chars)
        if self.max_body_bytes < need:
            raise _cross("max_body_bytes", f"must be at least {need} ({JSON_BYTES_PER_CHAR} bytes per allowed "
                         f"character, JSON-escaped), or valid long texts get 413 (got {self.max_body_bytes})",
                         "max_text_chars", "max_input_chars")
        return self


class AdminConfig(_Section):
    """Admin API used by the tts-ops CLI; bound to loopback and protected by a bearer token."""

    host: str = Field("127.0.0.1", min_length=1, description="Interface the admin API binds to; keep it on loopback.")
    port: int = Field(5001, ge=1, le=65535, description="TCP port of the admin API.")
    token: str | None = Field(None, min_length=1, repr=False,
        description="Admin bearer token; null = generate one at start and write it to token_file.")
    token_file: FilePath | None = Field(None,
        description="Where the daemon writes a generated token and the CLI reads it; null = "
            "<paths.state_dir>/<instance.name>.token, or <paths.state_dir>/admin.token when paths.state_dir is set "
            "and instance.name is not.")


class WorkersConfig(_Section):
    """Synthesis worker processes and the supervisor's health checks, restarts and recycling."""

    count: int = Field(default_factory=_auto_workers, ge=1, le=MAX_WORKERS,
        description="Number of worker processes; auto = CPU count (at most 64), computed at start.")
    engine: EngineName = Field("fastspeech2-baker",
        description="TTS engine every worker loads: fastspeech2-baker (bundled) or sambert-hifigan.")
    threads: int = Field(1, ge=1, le=64,
        description="Intra-op threads per worker; 1 avoids oversubscribing CPUs across workers.")
    boot_timeout_s: Seconds = Field(180.0,
        description="Time allowed for a worker to load and warm its model before it is killed.")
    probe_interval_s: Seconds = Field(2.0, description="Period of health probes sent to each ready worker.")
    probe_timeout_s: Seconds = Field(1.0,
        description="Time a probe may take before it counts as failed; must be below probe_interval_s.")
    failure_threshold: int = Field(3, ge=1, description="Consecutive failed probes before a worker is restarted.")
    kill_grace_s: Seconds = Field(5.0, description="Time between SIGTERM and SIGKILL when stopping a worker.")
    zygote: bool = Field(True,
        description="Fork workers from a pre-loaded parent (fast replacement, shared memory); false = cold spawns.")
    first_restart_delay_s: float = Field(0.0, ge=0,
        description="Restart delay after a crash that follows a healthy period; 0 = at once.")
    backoff_initial_s: Seconds = Field(0.5,
        description="Restart delay after a repeated crash; grows up to backoff_max_s while crashes continue.")
    backoff_max_s: Seconds = Field(30.0, description="Upper bound of the restart delay.")
    backoff_reset_s: Seconds = Field(60.0, description="Time a worker must stay ready for its restart delay to reset.")
    crash_limit: int = Field(5, ge=1,
        description="Crashes within crash_window_s after which a worker slot is marked FAILED.")
    crash_window_s: Seconds = Field(60.0,
        description="Sliding window in which crashes are counted against crash_limit.")
    failed_cooldown_s: Seconds = Field(300.0, description="Time after which a FAILED worker slot is tried again.")
    boot_failure_limit: int = Field(3, ge=1,
        description="Consecutive boot failures (exit code 3: bad model, missing package) before a worker is FAILED.")
    max_rss_mb: int = Field(1536, ge=0,
        description="Resident memory above which a worker is recycled, in MiB; 0 = no limit.")
    max_requests: int = Field(0, ge=0,
        description="Requests after which a worker is recycled (bounds slow leaks); 0 = never.")
    max_requests_jitter: int = Field(50, ge=0,
        description="Random 0..N added to max_requests per worker so they do not all recycle at once.")
    watchdog_interval_s: Seconds = Field(5.0, description="Period of the RSS check (psutil) against max_rss_mb.")

    @field_validator("count", mode="before")
    @classmethod
    def _auto(cls, value: Any) -> Any:
        # "auto" keeps a config file portable across machines (and lets TTS_OPS_WORKERS=auto mean the default).
        return _auto_workers() if isinstance(value, str) and value.strip().lower() == "auto" else value

    @model_validator(mode="after")
    def _consistent(self) -> WorkersConfig:
        # A probe still running when the next is due would pile up probes on a stuck worker.
        if self.probe_timeout_s >= self.probe_interval_s:
            raise _cross("probe_timeout_s",
                         f"must be less than probe_interval_s ({self.probe_interval_s}) (got {self.probe_timeout_s})",
                         "probe_interval_s")
        if self.backoff_initial_s > self.backoff_max_s:
            raise _cross("backoff_initial_s",
                         f"must not exceed backoff_max_s ({self.backoff_max_s}) (got {self.backoff_initial_s})",
                         "backoff_max_s")
        return self


Ratio = Annotated[float, Field(ge=0.5, le=2.0)]


class EmotionPreset(_Section):
    """Prosody of one emotion for the bundled voice, applied to the neutral prediction."""

    f0_ratio: Ratio = Field(1.0, description="Pitch-range multiplier, 0.5..2.0 (FastSpeech2 scales its normalised F0).")
    energy_ratio: Ratio = Field(1.0, description="Energy multiplier, 0.5..2.0 (a small loudness change).")
    duration_ratio: Ratio = Field(1.0, description="Duration multiplier, 0.5..2.0; above 1 speaks slower.")
    gain_db: float = Field(0.0, ge=-20, le=6,
                           description="Output gain in dB, -20..6; peaks are limited to avoid clipping.")
    pitch_st: float = Field(0.0, ge=-6, le=6,
        description="Pitch level in semitones, -6..6, by varispeed after the vocoder (the timbre moves with it).")
    pause_s: float = Field(0.0, ge=0, le=1,
        description="Silence at clause punctuation in seconds, 0..1 (clauses rendered one by one); 0 = the model's.")
    rise_st: float = Field(0.0, ge=0, le=12,
        description="Sentence-final pitch glide up in semitones over the last ~0.45 s of each chunk, 0..12.")
    tilt_db: float = Field(0.0, ge=-12, le=12,
        description="Energy slope over each chunk in dB, end minus start, -12..12 (negative fades out).")
    slope_st: float = Field(0.0, ge=-6, le=6,
        description="Pitch slope over each chunk in semitones, end minus start, -6..6 (negative declines).")
    bright_db: float = Field(0.0, ge=-6, le=6,
        description="Voice quality: energy above 1 kHz in dB, -6..6 (positive tense/bright, negative lax/dark).")


def _default_emotions() -> dict[str, EmotionPreset]:
    # One source of truth: the engine's defaults in the shared vocabulary (measured in inference/engines).
    return {name: EmotionPreset(**values) for name, values in FASTSPEECH2_PRESETS.items()}


class FastSpeech2BakerConfig(_Section):
    """Bundled FastSpeech2 voice (Baker corpus); emotions are emulated by prosody presets."""

    pause_s: float = Field(0.25, ge=0, le=5, description="Silence inserted between synthesized chunks, in seconds.")
    max_chunk_chars: int = Field(60, gt=0,
        description="Longest chunk fed to the model at once, in characters (split at punctuation).")
    emotions: dict[str, EmotionPreset] = Field(default_factory=_default_emotions,
        description="Prosody preset per emotion; replaces the default wholesale, so list all seven emotions.")
    lexicon: FilePath | None = Field(None,
        description="Pronunciation dictionary, one '词<TAB>pinyin with tones' per line (# comments); validated at "
                    "start and on SIGHUP (a bad line keeps the running dictionary); null = none.")

    @field_validator("emotions")
    @classmethod
    def _all_emotions(cls, emotions: dict[str, EmotionPreset]) -> dict[str, EmotionPreset]:
        # Requests may ask for any of the seven; a missing preset would only fail at request time.
        missing = [e for e in EMOTIONS if e not in emotions]
        unknown = [e for e in emotions if e not in EMOTIONS]
        if missing or unknown:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unknown {', '.join(map(repr, unknown))}"] if unknown else []
            raise ValueError(f"{'; '.join(parts)}: keys must be exactly {', '.join(EMOTIONS)}")
        return emotions

    @property
    def default_voice(self) -> str:
        return FASTSPEECH2_BAKER.default_voice

    def chunking(self) -> tuple[int, float]:
        """(max_chunk_chars, pause_s): how long text is split, the same in the worker and the stream producer."""
        return self.max_chunk_chars, self.pause_s

    def engine_options(self) -> dict[str, Any]:
        """Keyword options of the engine's constructor (``create_engine``), JSON-serialisable for the worker."""
        options = {"emotions": {name: preset.model_dump() for name, preset in self.emotions.items()},
                   "pause_s": self.pause_s, "max_chunk_chars": self.max_chunk_chars}
        if self.lexicon is not None:
            options["lexicon"] = str(self.lexicon)
        return options


class SambertHifiganConfig(_Section):
    """ModelScope Sambert-HifiGan multi-emotion voices (optional extra: pip install tts-ops[sambert])."""

    model_dir: FilePath | None = Field(None,
        description="Directory of the Sambert-HifiGan models; null = inside engines.model_dir (model store layout).")
    default_voice: SambertVoice = Field("zhitian_emo",
        description="Voice used when a request names none (or maps to 'default').")
    emotion_intensity: float = Field(1.0, ge=0.1, le=2.0,
        description="Strength of the emotion embedding, 0.1..2.0; 1.0 = as trained.")
    vocoder: Literal["eager", "jit", "onnx"] = Field("eager",
        description="How the HiFi-GAN vocoder runs when the model exposes it: eager (as shipped), jit (torch.jit), "
                    "onnx (ONNX Runtime, extra 'onnx'); speed-ups on the real weights are unmeasured here.")

    def chunking(self) -> tuple[int, float]:
        """(max_chunk_chars, pause_s): not configurable for Sambert, the engine's own defaults."""
        return SAMBERT_HIFIGAN.max_chunk_chars, SAMBERT_HIFIGAN.pause_s

    def engine_options(self) -> dict[str, Any]:
        """Keyword options of the engine's constructor (``create_engine``), JSON-serialisable for the worker."""
        options: dict[str, Any] = {"default_voice": self.default_voice, "emotion_intensity": self.emotion_intensity,
                                   "vocoder": self.vocoder}
        if self.model_dir is not None:
            options["model_dir"] = str(self.model_dir)
        return options


def _default_voice_map() -> dict[str, str]:
    return {voice: "default" for voice in OPENAI_VOICES}


class EnginesConfig(_Section):
    """Models and per-engine synthesis settings, loaded inside the worker processes."""

    model_dir: FilePath | None = Field(None,
        description="Model store directory; null = <user cache dir>/tts-ops/models.")
    voice_map: dict[str, str] = Field(default_factory=_default_voice_map,
        description="OpenAI voice name -> engine voice id ('default' = the engine's own voice); replaces the defaults.")
    fastspeech2_baker: FastSpeech2BakerConfig = Field(default_factory=FastSpeech2BakerConfig,
        description="Settings of the fastspeech2-baker engine.")
    sambert_hifigan: SambertHifiganConfig = Field(default_factory=SambertHifiganConfig,
        description="Settings of the sambert-hifigan engine.")

    @field_validator("voice_map")
    @classmethod
    def _known_voices(cls, voice_map: dict[str, str]) -> dict[str, str]:
        # Checked against every engine's ids, not just workers.engine's: switching engine by flag or env during an
        # incident must not make the daemon refuse to start; a voice the running engine lacks is a 400 per request.
        for name, voice in voice_map.items():
            if voice not in VOICE_IDS:
                raise _cross(str(name), f"unknown voice id {voice!r}; expected one of {', '.join(VOICE_IDS)}")
        return voice_map

    def section(self, engine_id: str) -> FastSpeech2BakerConfig | SambertHifiganConfig:
        """The settings of one engine (its descriptor names the section; ``workers.engine`` is validated)."""
        if engine_id == FASTSPEECH2_BAKER.id:
            return self.fastspeech2_baker
        if engine_id == SAMBERT_HIFIGAN.id:
            return self.sambert_hifigan
        raise ConfigError(f"unknown engine {engine_id!r}; available: {', '.join(ENGINE_IDS)}")


class CacheConfig(_Section):
    """Audio cache: Redis when redis_url is set, otherwise an in-process LRU; failures never fail requests."""

    redis_url: str | None = Field(None, repr=False,
        description="redis://, rediss://, unix:// or sentinel:// URL(s, comma-separated); null = in-process LRU.")
    sentinel_master: str | None = Field(None, min_length=1,
        description="Name of the Redis Sentinel master; required when redis_url uses sentinel://.")
    prefix: str = Field("tts-ops:",
        description="Prefix of every cache key, so several deployments can share one Redis.")
    ttl_s: int = Field(604800, gt=0,
        description="Lifetime of a cached audio item, in seconds (Redis EX takes whole seconds).")
    max_item_bytes: int = Field(10 * MIB, gt=0,
        description="Largest audio item cached, in bytes; larger results are served but not cached.")
    memory_max_bytes: int = Field(256 * MIB, ge=0,
        description="Budget of the in-process LRU, in bytes (unused with Redis).")
    connect_timeout_s: Seconds = Field(0.25,
        description="Redis connect timeout; short because a cache miss is cheaper than a stalled request.")
    op_timeout_s: Seconds = Field(0.25, description="Redis per-operation timeout.")
    breaker_failures: int = Field(3, ge=1,
        description="Consecutive Redis failures that open the circuit breaker (cache bypassed).")
    breaker_reset_s: Seconds = Field(5.0, description="Time the breaker stays open before Redis is tried again.")
    enabled: bool = Field(True, description="Cache synthesized audio at all.")
    fleet_single_flight: bool = Field(True,
        description="With Redis: the first instance to synthesize a key holds a lease; others wait for its result.")
    lease_ttl_s: Seconds = Field(5.0,
        description="Lifetime of a fleet single-flight lease, renewed while the synthesis runs; a killed holder's "
                    "lease lapses after it.")
    fleet_wait_s: Seconds = Field(30.0,
        description="Longest wait for another instance's result before synthesizing here anyway.")

    @field_validator("redis_url")
    @classmethod
    def _scheme(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = url.split(",")
        # Only the first entry needs a scheme: "sentinel://h1:26379,h2:26379" is a sentinel list.
        if parts[0].split("://", 1)[0] not in ("redis", "rediss", "unix", "sentinel"):
            raise ValueError("must start with redis://, rediss://, unix:// or sentinel://")
        if any(not part.strip() for part in parts):
            raise ValueError("empty entry in the comma-separated URL list")
        return url

    @model_validator(mode="after")
    def _sentinel(self) -> CacheConfig:
        if self.redis_url and self.redis_url.startswith("sentinel://") and not self.sentinel_master:
            raise _cross("sentinel_master", "required when redis_url uses sentinel://", "redis_url")
        return self


class LoggingConfig(_Section):
    """Log files written by the daemon (access and events) and its stderr output."""

    dir: FilePath = Field(Path("./logs"),
        description="Directory of the log files; relative = to the daemon's working directory.")
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = Field("INFO",
        description="Minimum level logged: DEBUG, INFO, WARNING or ERROR.")
    log_text: bool = Field(False,
        description="Log the requested text; off by default because it may contain personal data.")
    rotate_when: Literal["daily", "hourly", "size"] = Field("daily",
        description="Rotate log files daily, hourly, or by size (rotate_max_bytes).")
    rotate_max_bytes: int = Field(100 * MIB, gt=0,
        description="Size at which a log file is rotated in size mode, in bytes.")
    keep: int = Field(7, ge=1, description="Rotated log files kept per log.")
    compress: bool = Field(True, description="Compress rotated log files.")
    stderr_format: Literal["text", "json"] = Field("text",
        description="Format of stderr output (the journal under systemd): text or json.")
    journald: bool = Field(False, description="Also send logs to journald natively (structured fields).")


class OutputConfig(_Section):
    """Saved audio files and disk housekeeping."""

    dir: FilePath = Field(Path("./output"),
        description="Directory where synthesized audio is saved; relative = to the working directory.")
    save: bool = Field(False, description="Save every synthesized file to dir (off: audio is only streamed back).")
    retention_days: int = Field(7, ge=1, description="Saved audio older than this is deleted, in days.")
    min_free_mb: int = Field(1024, ge=0,
        description="Disk guard threshold: free space on the output disk below which it acts, in MiB; 0 = off.")
    rotated_log_retention_days: int = Field(30, ge=1,
        description="Rotated log files older than this are deleted, in days.")
    cleanup_interval_s: Seconds = Field(3600.0, description="Period of the retention and disk-space cleanup job.")


class AudioConfig(_Section):
    """Processing of every synthesised answer in the workers, before it is encoded."""

    loudness_lufs: float | None = Field(-16.0, ge=-40.0, le=-6.0,
        description="Integrated loudness every answer is normalised to (ITU-R BS.1770, LUFS; peaks kept under "
            "-1 dBFS), so emotions and speeds do not change the level; null = off (the engine's own level).")


class QualityConfig(_Section):
    """Online speech quality sampling: a niced scorer process predicts the MOS (Distill-MOS, 1..5) of a sample of
    finished syntheses. Needs the quality extra (CPU torch + distillmos); without it the scorer is FAILED and the
    service serves as usual."""

    sample_rate: float = Field(0.0, ge=0.0, le=1.0,
        description="Fraction of syntheses (cache hits excluded) scored, 0..1; 0 = off (no scorer process).")
    threads: int = Field(1, ge=1, le=16, description="CPU threads of the scorer's model (torch intra-op threads).")
    nice: int = Field(10, ge=0, le=19,
        description="Niceness added to the scorer process, so scoring yields the CPU to synthesis.")
    queue_size: int = Field(32, ge=1, le=10000,
        description="Samples waiting for the scorer; a sample arriving at a full queue is dropped and counted.")
    min_mos: float | None = Field(2.5, ge=1.0, le=5.0,
        description="Scores below this are logged as warnings (request id, text hash) and counted; null = no alert.")
    boot_timeout_s: Seconds = Field(120.0, description="Time allowed for the scorer to load its model.")
    score_timeout_s: Seconds = Field(60.0,
        description="Time one sample may take to score before the scorer is killed and restarted.")


# Safe as a file name and a directory name: it names the runtime directory, the token file and the record.
INSTANCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class InstanceConfig(_Section):
    """This daemon's identity on the host, so that several instances of one user run side by side."""

    name: str | None = Field(None, pattern=INSTANCE_NAME_PATTERN,
        description="Instance name: scopes the default runtime directory, the token file and the instance record "
            "the CLI finds with --instance; null = tts-ops-<server.port>.")


class PathsConfig(_Section):
    """Directories for daemon state and runtime files."""

    state_dir: FilePath | None = Field(None,
        description="Persistent state (admin token, instance record); null = platformdirs user_state_dir('tts-ops').")
    runtime_dir: FilePath | None = Field(None,
        description="Worker sockets and the daemon's lock file (one daemon per directory); null = "
            "$XDG_RUNTIME_DIR/tts-ops/<instance.name>, else /tmp/tts-ops-<uid>/<instance.name>.")


class MetricsConfig(_Section):
    """Prometheus metrics."""

    enabled: bool = Field(True, description="Expose Prometheus metrics at /metrics.")
    public: bool = Field(False,
        description="With enabled, also serve /metrics unauthenticated on host:port, for scrapers (admin copy stays).")
    host: str = Field("127.0.0.1", min_length=1, description="Interface of the unauthenticated metrics listener.")
    port: int = Field(9464, ge=1, le=65535, description="TCP port of the unauthenticated metrics listener.")


class Config(_Section):
    """The whole tts-ops configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig, description="Public HTTP API.")
    admin: AdminConfig = Field(default_factory=AdminConfig, description="Admin API used by the tts-ops CLI.")
    workers: WorkersConfig = Field(default_factory=WorkersConfig, description="Worker processes and their supervision.")
    engines: EnginesConfig = Field(default_factory=EnginesConfig, description="TTS engines and models.")
    cache: CacheConfig = Field(default_factory=CacheConfig, description="Audio cache.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Saved audio and disk housekeeping.")
    audio: AudioConfig = Field(default_factory=AudioConfig, description="Processing of synthesised audio.")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="Online speech quality sampling.")
    instance: InstanceConfig = Field(default_factory=InstanceConfig, description="Instance identity on the host.")
    paths: PathsConfig = Field(default_factory=PathsConfig, description="State and runtime directories.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Metrics.")

    @model_validator(mode="after")
    def _ports_distinct(self) -> Config:
        wildcard = {"0.0.0.0", "::", ""}
        same_host = self.server.host == self.admin.host or {self.server.host, self.admin.host} & wildcard
        if self.server.port == self.admin.port and same_host:
            raise _cross("admin.port", f"must differ from server.port ({self.server.port}): both listen on it",
                         "server.port", "server.host", "admin.host")
        if self.metrics.enabled and self.metrics.public:
            for name, listener in (("server", self.server), ("admin", self.admin)):
                shared_host = self.metrics.host == listener.host or {self.metrics.host, listener.host} & wildcard
                if self.metrics.port == listener.port and shared_host:
                    raise _cross("metrics.port", f"must differ from {name}.port ({listener.port}): both listen on it",
                                 f"{name}.port", "metrics.host", f"{name}.host")
        return self
