"""Settings: precedence, types, the TOML file, and --help documenting every setting with its default."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC

import pytest

from tsstats.cli.parser import build_parser
from tsstats.core.inputs import parse_duration, parse_time
from tsstats.core.settings import SETTINGS, ConfigError, load_settings


def test_defaults():
    settings = load_settings({}, env={"HOME": "/home/someone"})
    assert settings.host == "127.0.0.1" and settings.port == 8000 and settings.sample_hz == 10.0
    assert settings.db == "/home/someone/.local/share/tsstats/tsstats.duckdb"
    assert settings.cors_origins == ("http://localhost:3000",)
    assert settings.grid_region == "WORLD" and settings.pue == 1.0
    assert settings.report_window == 86400 and settings.availability_window == 30 * 86400


def test_xdg_data_home_places_the_database():
    settings = load_settings({}, env={"XDG_DATA_HOME": "/data", "HOME": "/home/x"})
    assert settings.db == "/data/tsstats/tsstats.duckdb"


def test_flag_beats_environment_beats_file(tmp_path):
    config = tmp_path / "tsstats.toml"
    config.write_text('port = 7000\nsample_hz = 5\ngrid_region = "fra"\nreport_window = "1h"\n')
    env = {"TSSTATS_PORT": "7500", "HOME": "/h"}
    settings = load_settings({"port": "7600"}, env=env, config_path=str(config))
    assert settings.port == 7600 and settings.value_source("port") == "flag --port"
    settings = load_settings({}, env=env, config_path=str(config))
    assert settings.port == 7500 and settings.value_source("port") == "environment TSSTATS_PORT"
    settings = load_settings({}, env={"HOME": "/h"}, config_path=str(config))
    assert settings.port == 7000 and settings.sample_hz == 5.0 and settings.grid_region == "FRA"
    assert settings.report_window == 3600


def test_config_file_from_environment(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[tsstats]\nport = 9001\n")
    assert load_settings({}, env={"TSSTATS_CONFIG": str(config), "HOME": "/h"}).port == 9001


@pytest.mark.parametrize("flags, message", [
    ({"port": "eighty"}, "--port: expected an integer"),
    ({"port": "70000"}, "--port: must be at most 65535"),
    ({"sample_hz": "0"}, "--sample-hz: must be at least 0.1"),
    ({"sample_hz": "nan"}, "--sample-hz: expected a decimal number, got .nan."),
    ({"flush_interval": "soon"}, "--flush-interval: 'soon' is not a duration"),
    ({"pue": "0.5"}, "--pue: must be at least 1"),
    ({"cors_origins": "*"}, "wildcard origin is not allowed"),
    ({"latency_targets": "example.org"}, "is not host:port"),
    ({"log_level": "loud"}, "log level must be one of"),
])
def test_bad_values_name_the_setting(flags, message):
    with pytest.raises(ConfigError, match=message.replace("*", r"\*")):
        load_settings(flags, env={"HOME": "/h"})


def test_bad_config_files(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, env={"HOME": "/h"}, config_path=str(broken))
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, env={"HOME": "/h"}, config_path=str(unknown))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, env={"HOME": "/h"}, config_path=str(tmp_path / "missing.toml"))
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('port = "x"\n')
    with pytest.raises(ConfigError, match="config file key port"):
        load_settings({}, env={"HOME": "/h"}, config_path=str(wrong_type))


def test_environment_bool_and_list():
    env = {"TSSTATS_ALLOW_REMOTE": "yes", "TSSTATS_CORS_ORIGINS": "http://a:1, http://b:2", "HOME": "/h"}
    settings = load_settings({}, env=env)
    assert settings.allow_remote is True and settings.cors_origins == ("http://a:1", "http://b:2")
    with pytest.raises(ConfigError, match="TSSTATS_ALLOW_REMOTE"):
        load_settings({}, env={"TSSTATS_ALLOW_REMOTE": "maybe", "HOME": "/h"})


def test_serve_help_documents_every_setting_with_its_default():
    help_text = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--help"], capture_output=True,
                               text=True, check=True).stdout
    flat = " ".join(help_text.split())
    for setting in SETTINGS:
        assert setting.flag in help_text, setting.name
        assert f"default: {setting.shown_default()}; env {setting.env_var}" in flat, setting.name
    assert "--config" in help_text


def test_parser_accepts_every_flag(tmp_path):
    """Every setting's flag reaches its setting through the parser and load_settings, with a value of its type."""
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    token_file.chmod(0o600)
    samples = {"str": "x", "int": "7", "float": "7.5", "duration": "90s", "list": "a:1,b:2", "bool": None}
    special = {"db": "/tmp/t.duckdb", "grid_region": "DEU", "log_level": "debug", "cors_origins": "http://a,http://b",
               "latency_targets": "example.org:443,10.0.0.1:22", "db_memory_limit": "1GB", "port": "7",
               "sample_hz": "7.5", "pue": "1.5", "renewable_share": "50", "grid_intensity": "100",
               "max_db_mb": "100", "retention_raw": "2h", "retention_1m": "2d", "retention_1h": "30d",
               "token": "", "token_file": str(token_file), "max_connections": "64",
               "otlp_endpoint": "http://collector:4318/v1/metrics", "otlp_headers": "x-api-key=k,tenant=lab"}
    for setting in SETTINGS:
        if setting.kind == "duration" and setting.name not in special:
            special[setting.name] = f"{setting.minimum * 2:g}s"  # within every duration's bounds
    argv = ["serve"]
    for setting in SETTINGS:
        value = special.get(setting.name, samples[setting.kind])
        argv += [setting.flag] if value is None else [setting.flag, value]
    args = build_parser().parse_args(argv)
    settings = load_settings({s.name: getattr(args, s.name) for s in SETTINGS}, env={"HOME": "/h"})
    for setting in SETTINGS:
        assert settings.value_source(setting.name) == f"flag {setting.flag}", setting.name
        value = special.get(setting.name, samples[setting.kind])
        expected = True if value is None else setting.convert(value)
        if setting.name == "grid_region":
            expected = "DEU"
        if setting.name == "token":
            expected = "from-file"  # read from token_file
        assert getattr(settings, setting.name) == expected, setting.name


def test_durations_and_times():
    assert parse_duration("500ms") == 0.5 and parse_duration("15m") == 900 and parse_duration("2") == 2
    with pytest.raises(ValueError):
        parse_duration("-5s")
    now = 1_800_000_000.0
    assert parse_time("now", now) == now
    assert parse_time("-30s", now) == now - 30 and parse_time("-7d", now) == now - 7 * 86400
    assert parse_time("1700000000.5", now) == 1700000000.5
    from datetime import datetime

    expected = datetime(2026, 11, 26, 1, 52, 27, tzinfo=UTC).timestamp()
    assert parse_time("2026-11-26T01:52:27Z", now) == expected
    assert parse_time("2026-11-26T02:52:27+01:00", now) == expected
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-11-26T01:00:00", "1e400", "-1", ""):
        with pytest.raises(ValueError):
            parse_time(bad, now)


def test_the_token_file_is_read_and_must_be_private(tmp_path):
    path = tmp_path / "token"
    path.write_text("  s3cret \n")
    path.chmod(0o600)
    assert load_settings({"token_file": str(path)}, env={"HOME": str(tmp_path)}).token == "s3cret"
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="readable by group or others .*chmod 600"):
        load_settings({"token_file": str(path)}, env={"HOME": str(tmp_path)})
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not both"):
        load_settings({"token_file": str(path), "token": "x"}, env={"HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="cannot read the token file"):
        load_settings({"token_file": str(tmp_path / "missing")}, env={"HOME": str(tmp_path)})
