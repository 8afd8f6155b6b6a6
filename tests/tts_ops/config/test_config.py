"""Tests of the configuration system (tts_ops.config.schema / tts_ops.config.loader): fast, no daemon, no network."""

from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs
import pydantic
import pytest

from tts_ops import errors
from tts_ops.config import (
    EMOTIONS,
    Config,
    ConfigError,
    dump_effective,
    load_config,
    render_yaml_reference,
)
from tts_ops.config.keys import iter_keys
from tts_ops.config.loader import from_env

REPO = Path(__file__).resolve().parents[3]
REFERENCE = REPO / "config" / "tts-ops.yaml"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Relative defaults ("./logs") resolve against the working directory; keep it predictable.
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "tts-ops.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(*args, **kwargs) -> list[str]:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# --- defaults ---------------------------------------------------------------------------------------------

def test_defaults_without_file(tmp_path):
    config = load_config(env={})
    assert config.server.host == "0.0.0.0" and config.server.port == 5000
    assert config.server.api_keys == ()
    assert config.admin.port == 5001 and config.admin.token is None
    assert config.workers.count == min(len(os.sched_getaffinity(0)), 64)
    assert config.workers.engine == "fastspeech2-baker"
    assert set(config.engines.fastspeech2_baker.emotions) == set(EMOTIONS)
    happy = config.engines.fastspeech2_baker.emotions["happy"]
    assert (happy.f0_ratio, happy.energy_ratio, happy.duration_ratio, happy.gain_db) == (1.3, 1.1, 0.82, 1.5)
    assert (happy.pitch_st, happy.pause_s, happy.rise_st, happy.tilt_db, happy.bright_db) == (3.0, 0.0, 0.0, 2.0, 0.0)
    assert config.engines.voice_map["alloy"] == "default" and len(config.engines.voice_map) == 13
    assert config.cache.redis_url is None and config.cache.max_item_bytes == 10 * 1024 * 1024
    # Every path is concrete and absolute after load.
    assert config.paths.state_dir == Path(platformdirs.user_state_dir("tts-ops")).absolute()
    assert config.instance.name == "tts-ops-5000"
    assert config.paths.runtime_dir == Path(f"/tmp/tts-ops-{os.getuid()}/tts-ops-5000")
    assert config.engines.model_dir == Path(platformdirs.user_cache_dir("tts-ops")).absolute() / "models"
    assert config.admin.token_file == config.paths.state_dir / "tts-ops-5000.token"
    assert config.logging.dir == tmp_path / "logs" and config.output.dir == tmp_path / "output"


def test_runtime_dir_follows_xdg_runtime_dir():
    config = load_config(env={"XDG_RUNTIME_DIR": "/run/user/1000"})
    assert config.paths.runtime_dir == Path("/run/user/1000/tts-ops/tts-ops-5000")


def test_default_runtime_dir_and_token_file_are_per_instance():
    # Two instances of one user on one host (different public ports) share no socket directory and no token file.
    one, two = (load_config(env={}, overrides={"server": {"port": port}}) for port in (5000, 6000))
    assert (one.instance.name, two.instance.name) == ("tts-ops-5000", "tts-ops-6000")
    assert one.paths.runtime_dir != two.paths.runtime_dir and one.paths.runtime_dir.name == "tts-ops-5000"
    assert one.paths.runtime_dir.parent == two.paths.runtime_dir.parent
    assert (one.admin.token_file.name, two.admin.token_file.name) == ("tts-ops-5000.token", "tts-ops-6000.token")
    assert one.paths.state_dir == two.paths.state_dir


def test_instance_name_scopes_the_defaults_and_is_validated(tmp_path):
    named = load_config(env={}, overrides={"instance": {"name": "blue"}})
    assert named.paths.runtime_dir.name == "blue" and named.admin.token_file.name == "blue.token"
    # Named, an explicit state directory shared by several instances gets one token file each.
    shared = load_config(env={}, overrides={"instance": {"name": "green"}, "paths": {"state_dir": str(tmp_path)}})
    assert shared.admin.token_file == tmp_path / "green.token"
    for bad in ("../x", "", "a b", "x" * 65, "-lead"):
        with pytest.raises(ConfigError, match=r"instance\.name"):
            load_config(env={}, overrides={"instance": {"name": bad}})


def test_explicit_and_systemd_directories_are_used_as_given(tmp_path):
    env = {"STATE_DIRECTORY": "/var/lib/tts-ops", "RUNTIME_DIRECTORY": "/run/tts-ops"}
    config = load_config(env=env)
    assert config.paths.runtime_dir == Path("/run/tts-ops")
    assert config.admin.token_file == Path("/var/lib/tts-ops/admin.token")
    config = load_config(env={}, overrides={"paths": {"state_dir": str(tmp_path / "s"),
                                                      "runtime_dir": str(tmp_path / "r")}})
    assert (config.paths.runtime_dir, config.admin.token_file) == (tmp_path / "r", tmp_path / "s" / "admin.token")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "server:\nworkers:\n"])
def test_empty_file_and_empty_sections_give_defaults(tmp_path, text):
    assert load_config(write(tmp_path, text), env={}) == load_config(env={})


def test_missing_file(tmp_path):
    assert problems(tmp_path / "nope.yaml") == [f"config file not found: {tmp_path / 'nope.yaml'}"]


def test_top_level_must_be_mapping(tmp_path):
    path = write(tmp_path, "- server\n")
    assert problems(path) == [f"{path}: top level must be a mapping of sections (got list)"]


# --- the generated reference file -------------------------------------------------------------------------

def test_reference_file_is_generated_output():
    assert REFERENCE.read_text(encoding="utf-8") == render_yaml_reference(), (
        "config/tts-ops.yaml is stale: run `python -m tts_ops.config > config/tts-ops.yaml`")


def test_reference_file_loads_to_defaults():
    assert load_config(REFERENCE, env={}) == load_config(env={})


def test_reference_values_uncommented_load_to_defaults(tmp_path):
    # "#key: value" (and "#  entry: value" inside a mapping) are defaults, "# text" is prose: uncommenting every
    # default must round-trip, which proves each rendered default is valid YAML and valid config.
    text = re.sub(r"(?m)^(\s*)#(?=[^ \n]|  )", r"\1", REFERENCE.read_text(encoding="utf-8"))
    assert load_config(write(tmp_path, text), env={}) == load_config(env={})


def test_reference_lists_every_key():
    text = render_yaml_reference()
    for key in iter_keys():
        assert re.search(rf"(?m)^{'  ' * (len(key) - 1)}#{key[-1]}:", text), ".".join(key)


# --- error messages -----------------------------------------------------------------------------------------

def test_unknown_nested_key_names_path_and_suggests(tmp_path):
    path = write(tmp_path, "server:\n  prot: 8000\n")
    assert problems(path) == [f"{path}: server.prot: unknown key (did you mean 'port'?)"]


def test_unknown_key_in_wrong_section_suggests_full_path(tmp_path):
    path = write(tmp_path, "workers:\n  port: 8000\nsever: {}\n")
    assert problems(path) == [
        f"{path}: workers.port: unknown key (did you mean 'server.port'?)",
        f"{path}: sever: unknown key (did you mean 'server'?)",
    ]


def test_wrong_type(tmp_path):
    path = write(tmp_path, "server:\n  port: abc\n")
    assert problems(path) == [f"{path}: server.port: expected an integer, got 'abc'"]


# Strict validation: YAML/JSON values of the wrong type are reported, never coerced (pydantic's lax mode would
# read true as 1 worker, "off" as false, "5000" as 5000 and 3.0 as 3).
@pytest.mark.parametrize("section, key, text, expected", [
    ("workers", "count", "true", "expected an integer, got true"),
    ("server", "queue_limit", "false", "expected an integer, got false"),
    ("cache", "enabled", '"off"', "expected true or false, got 'off'"),
    ("logging", "compress", "1", "expected true or false, got 1"),
    ("server", "port", '"5000"', "expected an integer, got '5000'"),
    ("workers", "failure_threshold", "3.0", "expected an integer, got 3.0"),
    ("workers", "boot_timeout_s", "true", "expected a number, got true"),
    ("workers", "boot_timeout_s", '"5"', "expected a number, got '5'"),
    ("server", "host", "8080", "expected a string, got 8080"),
    ("logging", "dir", "null", "expected a path, got null"),
    ("engines", "voice_map", "[nova]", "expected a mapping, got ['nova']"),
])
def test_wrong_types_in_a_file_are_rejected_not_coerced(tmp_path, section, key, text, expected):
    path = write(tmp_path, f"{section}:\n  {key}: {text}\n")
    assert problems(path) == [f"{path}: {section}.{key}: {expected}"]


def test_json_file_is_validated_strictly_too(tmp_path):
    path = write(tmp_path, '{"workers": {"count": true}, "server": {"port": "5000"}}', "tts-ops.json")
    assert problems(path) == [f"{path}: server.port: expected an integer, got '5000'",
                              f"{path}: workers.count: expected an integer, got true"]


def test_ints_are_accepted_where_seconds_are_expected(tmp_path):
    path = write(tmp_path, "workers:\n  boot_timeout_s: 5\nserver:\n  graceful_timeout_s: 0\n  api_keys: [k1]\n")
    config = load_config(path, env={})
    assert config.workers.boot_timeout_s == 5.0 and isinstance(config.workers.boot_timeout_s, float)
    assert config.server.graceful_timeout_s == 0.0 and config.server.api_keys == ("k1",)


def test_list_items_are_checked_and_name_their_source(tmp_path):
    path = write(tmp_path, "server:\n  api_keys: [k1, 12345]\n")
    # An API key is a secret: its value is never echoed, even a wrong one.
    assert problems(path) == [f"{path}: server.api_keys.1: expected a string"]


def test_out_of_range(tmp_path):
    path = write(tmp_path, "workers:\n  probe_interval_s: -1\n")
    assert problems(path) == [f"{path}: workers.probe_interval_s: Input should be greater than 0 (got -1)"]


def test_all_problems_reported_together(tmp_path):
    path = write(tmp_path, "server:\n  port: 70000\nworkers:\n  engine: tacotron\n  count: 0\n")
    lines = problems(path)
    assert [line.split(": ")[1] for line in lines] == ["server.port", "workers.count", "workers.engine"]


def test_section_must_be_mapping(tmp_path):
    path = write(tmp_path, "server: 5000\n")
    assert problems(path) == [f"{path}: server: expected a mapping of settings, got 5000"]


@pytest.mark.parametrize("drop, add, expected", [
    ("fear", None, "missing fear: keys must be exactly"),
    (None, "joy", "unknown 'joy': keys must be exactly"),
])
def test_emotions_must_be_exactly_the_seven(tmp_path, drop, add, expected):
    names = [e for e in EMOTIONS if e != drop] + ([add] if add else [])
    body = "".join(f"      {name}: {{f0_ratio: 1.0}}\n" for name in names)
    path = write(tmp_path, "engines:\n  fastspeech2_baker:\n    emotions:\n" + body)
    [line] = problems(path)
    assert line.startswith(f"{path}: engines.fastspeech2_baker.emotions: {expected} neutral, happy, sad")


def test_emotion_ratio_range():
    [line] = problems(overrides={"engines": {"fastspeech2_baker": {"emotions": {"happy": {"f0_ratio": 3}}}}})
    assert line == ("command line: engines.fastspeech2_baker.emotions.happy.f0_ratio: "
                    "Input should be less than or equal to 2 (got 3)")


@pytest.mark.parametrize("timeout_s", [2.0, 3.0])
def test_probe_timeout_must_be_below_interval(tmp_path, timeout_s):
    path = write(tmp_path, f"workers:\n  probe_interval_s: 2.0\n  probe_timeout_s: {timeout_s}\n")
    assert problems(path) == [
        f"{path}: workers.probe_timeout_s: must be less than probe_interval_s (2.0) (got {timeout_s})"]


def test_cross_field_error_names_source_of_the_other_key():
    # probe_timeout_s is at its default: the message still names who changed probe_interval_s.
    assert problems(overrides={"workers": {"probe_interval_s": 0.5}}) == [
        "command line: workers.probe_timeout_s: must be less than probe_interval_s (0.5) (got 1.0)"]


def test_backoff_initial_not_above_max():
    [line] = problems(overrides={"workers": {"backoff_initial_s": 40}})
    assert line.startswith("command line: workers.backoff_initial_s: must not exceed backoff_max_s (30.0)")


def test_other_cross_checks():
    assert problems(env={"TTS_OPS_PORT": "5001"}) == [
        "env TTS_OPS_PORT: admin.port: must differ from server.port (5001): both listen on it"]
    assert problems(env={"TTS_OPS_REDIS_URL": "sentinel://h1:26379,h2:26379"}) == [
        "env TTS_OPS_REDIS_URL: cache.sentinel_master: required when redis_url uses sentinel://"]
    [line] = problems(overrides={"engines": {"voice_map": {"nova": "zhitian"}}})
    assert line.startswith("command line: engines.voice_map.nova: unknown voice id 'zhitian'")
    [line] = problems(overrides={"server": {"max_body_bytes": 1000}})
    assert line.startswith("command line: server.max_body_bytes: must be at least 24576")


def test_yaml_syntax_error_has_line_and_column(tmp_path):
    path = write(tmp_path, "server:\n  port: 5000\n   host: x\n")
    [line] = problems(path)
    assert line.startswith(f"{path}: line 3, column 8: invalid YAML: mapping values are not allowed here")


def test_duplicate_yaml_key_rejected(tmp_path):
    path = write(tmp_path, "server:\n  port: 1\n  port: 2\n")
    assert problems(path) == [f"{path}: line 3, column 3: invalid YAML: duplicate key 'port'"]


# --- layers -----------------------------------------------------------------------------------------------

def test_precedence_file_env_cli(tmp_path):
    path = write(tmp_path, "server:\n  port: 6000\n  host: 10.0.0.1\nworkers:\n  count: 3\n")
    assert load_config(path, env={}).server.port == 6000
    config = load_config(path, env={"TTS_OPS_PORT": "7000", "TTS_OPS_WORKERS": "2"})
    assert (config.server.port, config.server.host, config.workers.count) == (7000, "10.0.0.1", 2)
    config = load_config(path, env={"TTS_OPS_PORT": "7000"}, overrides={"server": {"port": 8000}})
    assert config.server.port == 8000


def test_env_overrides_every_variable(tmp_path):
    env = {
        "TTS_OPS_ADMIN_TOKEN": "s3cret-token", "TTS_OPS_REDIS_URL": "redis://h:6379/0", "TTS_OPS_WORKERS": "auto",
        "TTS_OPS_PORT": "8080", "TTS_OPS_HOST": "127.0.0.1", "TTS_OPS_LOG_DIR": "/var/log/x",
        "TTS_OPS_OUTPUT_DIR": "out", "TTS_OPS_MODEL_DIR": "/m", "TTS_OPS_STATE_DIR": "/s", "TTS_OPS_RUNTIME_DIR": "/r",
    }
    config = load_config(env=env)
    assert config.admin.token == "s3cret-token" and config.cache.redis_url == "redis://h:6379/0"
    assert config.workers.count == min(len(os.sched_getaffinity(0)), 64)
    assert (config.server.port, config.server.host) == (8080, "127.0.0.1")
    assert config.logging.dir == Path("/var/log/x") and config.output.dir == tmp_path / "out"
    assert (config.engines.model_dir, config.paths.state_dir, config.paths.runtime_dir) == (
        Path("/m"), Path("/s"), Path("/r"))
    assert config.admin.token_file == Path("/s/admin.token")


def test_empty_env_value_is_unset():
    assert load_config(env={"TTS_OPS_PORT": "", "TTS_OPS_ADMIN_TOKEN": "  "}) == load_config(env={})


def test_bad_env_value_names_the_variable():
    assert problems(env={"TTS_OPS_PORT": "abc", "TTS_OPS_WORKERS": "0"}) == [
        "env TTS_OPS_PORT: server.port: expected an integer, got 'abc'",
        "env TTS_OPS_WORKERS: workers.count: Input should be greater than or equal to 1 (got 0)",
    ]
    assert problems(env={"TTS_OPS_WORKERS": "2.5"}) == [
        "env TTS_OPS_WORKERS: workers.count: expected an integer, got '2.5'"]


def test_env_values_are_converted_per_field_before_strict_validation():
    # Environment values are always text: the number a file must not quote is fine in a variable.
    config = load_config(env={"TTS_OPS_PORT": "6000", "TTS_OPS_WORKERS": " 3 ", "TTS_OPS_HOST": "127.0.0.1"})
    assert (config.server.port, config.workers.count, config.server.host) == (6000, 3, "127.0.0.1")
    # A value that looks like a number stays text for a text field (an admin token may be all digits).
    assert load_config(env={"TTS_OPS_ADMIN_TOKEN": "123456789012"}).admin.token == "123456789012"


@pytest.mark.parametrize("key, raw, expected", [
    (("server", "port"), "+80", 80), (("server", "port"), "8_0", "8_0"), (("server", "port"), "٨٠", "٨٠"),
    (("cache", "enabled"), "Off", False), (("cache", "enabled"), "yes", True), (("cache", "enabled"), "maybe", "maybe"),
    (("workers", "boot_timeout_s"), "2.5", 2.5), (("workers", "boot_timeout_s"), "1e3", 1000.0),
    (("workers", "boot_timeout_s"), "inf", "inf"), (("server", "host"), "10", "10"),
    (("paths", "state_dir"), "/s", "/s"), (("workers", "count"), "auto", "auto"),
])
def test_env_conversion_by_field_type(key, raw, expected):
    # Only plain ASCII literals convert; anything else reaches strict validation as text and is reported there.
    value = from_env(key, raw)
    assert value == expected and type(value) is type(expected)


def test_systemd_directories_fill_defaults():
    env = {"STATE_DIRECTORY": "/var/lib/tts-ops", "LOGS_DIRECTORY": "/var/log/tts-ops",
           "CACHE_DIRECTORY": "/var/cache/tts-ops", "RUNTIME_DIRECTORY": "/run/tts-ops:/run/other"}
    config = load_config(env=env)
    assert config.paths.state_dir == Path("/var/lib/tts-ops")
    assert config.logging.dir == Path("/var/log/tts-ops")
    assert config.engines.model_dir == Path("/var/cache/tts-ops/models")
    assert config.paths.runtime_dir == Path("/run/tts-ops")  # first of a ":"-separated list
    assert config.admin.token_file == Path("/var/lib/tts-ops/admin.token")


def test_systemd_directories_lose_to_file_and_env(tmp_path):
    path = write(tmp_path, "logging:\n  dir: /srv/logs\n")
    env = {"LOGS_DIRECTORY": "/var/log/tts-ops", "CACHE_DIRECTORY": "/var/cache/tts-ops", "TTS_OPS_MODEL_DIR": "/m"}
    config = load_config(path, env=env)
    assert config.logging.dir == Path("/srv/logs") and config.engines.model_dir == Path("/m")


def test_cli_overrides_win_and_none_means_not_given(tmp_path):
    path = write(tmp_path, "server:\n  port: 6000\nworkers:\n  count: 3\n")
    config = load_config(path, env={"TTS_OPS_PORT": "7000"},
                         overrides={"server": {"port": 8000, "host": None}, "workers": {"count": 2}, "admin": None})
    assert (config.server.port, config.server.host, config.workers.count) == (8000, "0.0.0.0", 2)


def test_paths_expand_user_and_reject_empty(tmp_path):
    config = load_config(overrides={"output": {"dir": "~/audio"}}, env={})
    assert config.output.dir == Path("~/audio").expanduser()
    [line] = problems(overrides={"logging": {"dir": ""}})
    assert line.startswith("command line: logging.dir: must not be empty")


def test_level_is_case_insensitive():
    assert load_config(overrides={"logging": {"level": "debug"}}, env={}).logging.level == "DEBUG"


# --- secrets ------------------------------------------------------------------------------------------------

def test_dump_effective_redacts_secrets():
    config = load_config(env={"TTS_OPS_ADMIN_TOKEN": "tok-123456",
                              "TTS_OPS_REDIS_URL": "rediss://:pw1@h:6380/0,redis://user:pw2@h2/1?password=pw3"},
                         overrides={"server": {"api_keys": ["key-a", "key-b"]}})
    dumped = dump_effective(config)
    assert dumped["admin"]["token"] == "***"
    assert dumped["server"]["api_keys"] == ["***", "***"]
    assert dumped["cache"]["redis_url"] == "rediss://:***@h:6380/0,redis://user:***@h2/1?password=***"
    assert dumped["server"]["port"] == 5000 and dumped["paths"]["state_dir"] == str(config.paths.state_dir)
    text = repr(dumped) + repr(config)
    for secret in ("tok-123456", "pw1", "pw2", "pw3", "key-a"):
        assert secret not in text


def test_errors_do_not_echo_secrets():
    [line] = problems(overrides={"admin": {"token": 123456789}})
    assert line == "command line: admin.token: expected a string"


# --- immutability and error classes ---------------------------------------------------------------------

def test_config_is_frozen():
    config = load_config(env={})
    with pytest.raises(pydantic.ValidationError):
        config.server = config.server  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.server.port = 1  # type: ignore[misc]
    assert isinstance(config, Config)


def test_error_hierarchy():
    assert ConfigError is errors.ConfigError
    assert issubclass(errors.ConfigError, errors.TtsOpsError)
    assert ConfigError(["a", "b"]).problems == ["a", "b"] and str(ConfigError("x")) == "x"


def test_public_metrics_port_must_not_clash_with_the_other_listeners():
    [line] = problems(overrides={"metrics": {"public": True, "port": 5001}})
    assert line.endswith("metrics.port: must differ from admin.port (5001): both listen on it"), line
    [line] = problems(overrides={"metrics": {"public": True, "port": 5000, "host": "0.0.0.0"}})
    assert line.endswith("metrics.port: must differ from server.port (5000): both listen on it"), line
    # Not listening (public off): no clash to report.
    assert load_config(overrides={"metrics": {"public": False, "port": 5001}}, env={}).metrics.port == 5001
