"""Settings: one table of names, defaults and help, read from flags, environment and a TOML file.

Precedence: command-line flag > ``TSSTATS_*`` environment variable > TOML file (``--config``) > default.
A setting ``grid_region`` is the flag ``--grid-region``, the variable ``TSSTATS_GRID_REGION`` and the
key ``grid_region``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tsstats.core.inputs import decimal_number, parse_duration, shown, whole_number_text


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the setting and its source."""


class StartupError(RuntimeError):
    """The service cannot start with these settings; the message says why and what to do."""


def default_db_path(env: Mapping[str, str]) -> str:
    data_home = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "share")
    return str(Path(data_home) / "tsstats" / "tsstats.duckdb")


def _to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _to_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    kind: str = "str"  # str, int, float, bool, duration, list
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # None allowed (no value)
    default_text: str | None = None  # how --help shows a computed default

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return "TSSTATS_" + self.name.upper()

    def shown_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.default is None:
            return "unset"
        if self.kind == "list":
            return ",".join(self.default) or "empty"
        if self.kind == "bool":
            return "true" if self.default else "false"
        if self.default == "":
            return "empty"
        return str(self.default)

    def convert(self, raw: Any) -> Any:
        """Turn a value from a flag, the environment or TOML into the setting's type, or raise ValueError."""
        if raw is None or (isinstance(raw, str) and raw == "" and self.optional):
            if self.optional:
                return None
            raise ValueError("a value is required")
        converters: dict[str, Callable[[Any], Any]] = {
            "str": _convert_str,
            "int": _convert_int,
            "float": _convert_float,
            "bool": lambda v: v if isinstance(v, bool) else _to_bool(str(v)),
            "duration": lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool)
            else parse_duration(str(v)),
            "list": lambda v: tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else _to_list(str(v)),
        }
        value = converters[self.kind](raw)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        return value


def _convert_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _convert_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    number = whole_number_text(str(value))
    if number is None:
        raise ValueError(f"expected an integer, got {shown(str(value).strip())}")
    return number


def _convert_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    number = decimal_number(str(value))
    if number is None:
        raise ValueError(f"expected a decimal number, got {shown(str(value).strip())}")
    return number


def setting(default: Any, help: str, kind: str = "str", minimum: float | None = None,
            maximum: float | None = None, *, optional: bool = False, default_text: str | None = None) -> Any:
    """One row of the settings table: a field of ``Settings`` with its help, type and bounds."""
    return field(default=default, metadata={"setting": (help, kind, minimum, maximum, optional, default_text)})


@dataclass(frozen=True)
class Settings:
    """Every setting, typed, in the order ``--help`` and the README list them: this class is the table.
    A misspelt name is an AttributeError on a frozen dataclass (and a type checker's error), and
    ``origin(name)`` says where each value came from."""

    host: str = setting("127.0.0.1", "address to listen on; a non-loopback address needs a token or --allow-remote")
    port: int = setting(8000, "TCP port to listen on", "int", 1, 65535)
    db: str = setting(None, "DuckDB file that holds samples, comparisons and offsets", "str",
                      default_text="$XDG_DATA_HOME/tsstats/tsstats.duckdb")
    sample_hz: float = setting(10.0, "samples per second taken while anything needs them: the stats, history or "
                               "conditions asked for within the last minute, a stream client, a run being measured",
                               "float", 0.1, 100)
    idle_sample_hz: float = setting(1.0, "samples per second while nothing needs the full rate (at most sample_hz)",
                                    "float", 0.1, 100)
    flush_interval: float = setting(5.0, "seconds between writes of buffered samples to the database at sample_hz "
                                    "(a crash loses at most this much); at idle_sample_hz a flush holds as many rows",
                                    "duration", 0.1, 60)
    update_interval: float = setting(1.0, "the served stats and the live stream are rebuilt, on demand, when "
                                     "older than this", "duration", 0.1, 60)
    current_window: float = setting(1.0, "seconds of samples averaged for cpuUsage and gpuUsage", "duration", 0.1,
                                    300)
    checkpoint_interval: float = setting(300.0, "seconds between database checkpoints", "duration", 10, 86400)
    availability_window: float = setting(30 * 86400.0, "window of the uptime figure (30d by default)", "duration",
                                         60, 10 * 365 * 86400)
    report_window: float = setting(86400.0, "window of energyConsumption and carbonFootprint (24h by default)",
                                   "duration", 60, 366 * 86400)
    activity_window: float = setting(3600.0, "window of responseTime and errorRate over finished comparisons (1h "
                                     "by default)", "duration", 60, 366 * 86400)
    token: str = setting("", "bearer token required on every route but /healthz; empty: no token")
    allow_remote: bool = setting(False, "allow a non-loopback --host without a token", "bool")
    allowed_hosts: tuple[str, ...] = setting((), "comma-separated host names this service answers to besides "
                                             "localhost, 127.0.0.1, [::1] and the bound address (and, bound beyond "
                                             "loopback, this machine's names and addresses); * answers any Host",
                                             "list")
    token_file: str = setting("", "file holding the bearer token (readable by its owner alone); instead of token")
    tls_cert: str = setting("", "PEM certificate (chain) to serve HTTPS with; with tls_key")
    tls_key: str = setting("", "PEM private key of tls_cert")
    cors_origins: tuple[str, ...] = setting(("http://localhost:3000",), "comma-separated origins allowed by CORS",
                                            "list")
    latency_targets: tuple[str, ...] = setting((), "comma-separated host:port probed by TCP connect for "
                                               "networkLatency; empty: the kernel's smoothed RTT of established "
                                               "connections", "list")
    host_name: str = setting("", "the name this machine's runs carry in exports (their host column), to read a "
                             "lab's files together; empty: the machine's host name")
    proc_root: str = setting("/proc", "procfs root read for CPU, memory, load and network")
    powercap_root: str = setting("/sys/class/powercap", "sysfs powercap root read for RAPL energy counters")
    grid_region: str = setting("WORLD", "grid region, ISO 3166-1 alpha-3 code or WORLD")
    grid_intensity: float | None = setting(None, "override of the grid carbon intensity in g CO2e/kWh", "float", 0,
                                           5000, optional=True)
    renewable_share: float | None = setting(None, "override of the renewable share in % (green tariff, on-site "
                                            "solar)", "float", 0, 100, optional=True)
    grid_intensity_file: str = setting("", "CSV of time,g_per_kwh,renewable_pct rows (any step, e.g. hourly from the "
                                       "grid operator): carbon and renewable share per sample at the value in "
                                       "force then; empty: the yearly average")
    pue: float = setting(1.0, "power usage effectiveness multiplied into energy", "float", 1.0, 5.0)
    baseline_power_w: float | None = setting(None, "declared baseline power in W for totalCarbonSaved", "float", 0,
                                             1e6, optional=True)
    baseline_intensity: float | None = setting(None, "declared baseline grid intensity in g/kWh for "
                                               "totalCarbonSaved", "float", 0, 5000, optional=True)
    embodied_kg: float | None = setting(None, "embodied emissions of this machine in kg CO2e (its manufacture), "
                                        "amortised into each run's SCI; unset: SCI is operational only", "float", 0,
                                        1e6, optional=True)
    lifetime_years: float = setting(4.0, "expected lifetime of this machine, over which embodied_kg is amortised",
                                    "float", 0.1, 100)
    dimm_count: int | None = setting(None, "memory modules for the memory power model; unset: read from the "
                                     "system", "int", 1, 256, optional=True)
    retention_raw: float = setting(7 * 86400.0, "how long raw samples are kept", "duration", 3600,
                                   10 * 365 * 86400)
    retention_1m: float = setting(90 * 86400.0, "how long 1-minute rollups are kept", "duration", 86400,
                                  20 * 365 * 86400)
    retention_1h: float = setting(5 * 365 * 86400.0, "how long 1-hour rollups are kept", "duration", 86400,
                                  50 * 365 * 86400)
    max_db_mb: float | None = setting(None, "size cap of the database file in MB: oldest raw samples go first; "
                                      "records (comparisons, offsets, grid rows) may take half of it, 507 beyond",
                                      "float", 16, 1e7, optional=True)
    db_memory_limit: str = setting("128MB", "DuckDB memory_limit: the most its buffer manager holds (tables' blocks, "
                                   "hash tables, sorts); beyond it, DuckDB spills to disk")
    max_connections: int = setting(2048, "connections open at once; beyond, idle ones are closed first, then a few "
                                   "more answer only /healthz and the stats route (kept within the open-files limit)",
                                   "int", 8, 1_000_000)
    request_timeout: float = setting(10.0, "the most time to receive a request's head and body, in total (408 after)",
                                     "duration", 1, 600)
    contention_limit_pct: float = setting(10.0, "a run is unfair when other processes took more than this share "
                                          "of the machine's CPU capacity, its threads waited this share of the "
                                          "time they wanted a CPU while others ran, or a hypervisor's steal took "
                                          "this share", "float", 0, 100)
    report_grace: float = setting(120.0, "once every process a run names has exited (its measured window ends "
                                  "then), how long its report (a PATCH with a final status) is waited for before "
                                  "the service fails it; a later report still replaces that verdict", "duration", 0,
                                  7 * 86400)
    otlp_endpoint: str = setting("", "OTLP/HTTP metrics endpoint the metrics of /metrics are pushed to (e.g. "
                                 "http://localhost:4318/v1/metrics); empty: no push; needs pip install "
                                 "'tsstats[otlp]'")
    otlp_headers: tuple[str, ...] = setting((), "comma-separated key=value headers sent with each OTLP push (an "
                                            "API key)", "list")
    otlp_interval: float = setting(15.0, "seconds between OTLP pushes", "duration", 1, 3600)
    metrics_max_models: int = setting(500, "models with series in /metrics: the most recently active ones; "
                                      "tsstats_model_series_omitted counts the others", "int", 0, 100_000)
    max_tracked_trees: int = setting(32, "different process trees (the pids comparisons name) followed at once for "
                                     "per-process energy; a comparison naming one more is refused with 409",
                                     "int", 1, 4096)
    db_threads: int = setting(2, "DuckDB worker threads for queries (history, exports)", "int", 1, 64)
    log_level: str = setting("info", "log level: debug, info, warning or error")
    value_sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # by setting

    def value_source(self, name: str) -> str:
        """Where a setting's value came from: a flag, the environment, the config file, the default or code."""
        return self.value_sources.get(name, "default")

    def replace(self, **changes: Any) -> Settings:
        """These settings with ``changes`` (by code, for tests and tools)."""
        value_sources = {**self.value_sources, **dict.fromkeys(changes, "code")}
        return dataclasses.replace(self, **changes, value_sources=value_sources)


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(item.name, item.default, *item.metadata["setting"]) for item in fields(Settings)
    if "setting" in item.metadata)
SETTINGS_BY_NAME = {item.name: item for item in SETTINGS}
LOG_LEVELS = ("debug", "info", "warning", "error")


def default_of(name: str) -> Any:
    """A setting's default, for code that runs without a ``Settings`` (the command line's own stores)."""
    return Settings.__dataclass_fields__[name].default


def read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error}") from None
    table = data.get("tsstats", data)
    unknown = sorted(set(table) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(SETTINGS_BY_NAME)}")
    return table


def read_token_file(path: str, source: str) -> str:
    """The token in ``path``, which only its owner may read (a token readable by others is no secret)."""
    try:
        mode = os.stat(path).st_mode
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source}: cannot read the token file {path}: {error}") from None
    if mode & 0o077:
        raise ConfigError(f"{source}: the token file {path} is readable by group or others (mode "
                          f"{mode & 0o777:o}); run chmod 600 {path}")
    if not token:
        raise ConfigError(f"{source}: the token file {path} is empty")
    return token


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                  config_path: str | None = None) -> Settings:
    """Resolve every setting. ``flags`` holds only the flags given (name -> raw value)."""
    flags = dict(flags or {})
    env = dict(os.environ if env is None else env)
    config_path = config_path or env.get("TSSTATS_CONFIG") or None
    file_values = read_toml(config_path) if config_path else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name in flags and flags[setting.name] is not None:
            raw, source = flags[setting.name], f"flag {setting.flag}"
        elif setting.env_var in env:
            raw, source = env[setting.env_var], f"environment {setting.env_var}"
        elif setting.name in file_values:
            raw, source = file_values[setting.name], f"config file key {setting.name}"
        else:
            values[setting.name], sources[setting.name] = setting.default, "default"
            continue
        try:
            values[setting.name] = setting.convert(raw)
        except ValueError as error:
            raise ConfigError(f"{source}: {error}") from None
        sources[setting.name] = source
    if values["db"] is None:
        values["db"] = default_db_path(env)
    if values["log_level"] not in LOG_LEVELS:
        raise ConfigError(f"{sources['log_level']}: log level must be one of {', '.join(LOG_LEVELS)}")
    values["grid_region"] = values["grid_region"].upper()
    for origin in values["cors_origins"]:
        if origin == "*":
            raise ConfigError(f"{sources['cors_origins']}: a wildcard origin is not allowed; list the origins")
    if bool(values["tls_cert"]) != bool(values["tls_key"]):
        raise ConfigError(f"{sources['tls_cert'] if values['tls_cert'] else sources['tls_key']}: HTTPS needs both "
                          f"tls_cert and tls_key")
    if values["token_file"]:
        if values["token"]:
            raise ConfigError(f"{sources['token_file']}: give token or token_file, not both")
        values["token"] = read_token_file(values["token_file"], sources["token_file"])
    if values["otlp_endpoint"] and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", values["otlp_endpoint"]):
        raise ConfigError(f"{sources['otlp_endpoint']}: {values['otlp_endpoint']!r} is not an http:// or https:// URL")
    for header in values["otlp_headers"]:
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+=.*", header):
            raise ConfigError(f"{sources['otlp_headers']}: {header!r} is not key=value")
    for target in values["latency_targets"]:
        host, _, port = target.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ConfigError(f"{sources['latency_targets']}: {target!r} is not host:port")
    return Settings(**values, value_sources=sources)
