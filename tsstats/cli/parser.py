"""The argument parser of ``tsstats`` and its subcommands: a declarative table, the settings' flags generated
from the one table of settings."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from tsstats import __version__
from tsstats.core.inputs import decimal_number, shown, whole_number_text
from tsstats.core.settings import SETTINGS

CLIENT_FLAGS = (  # export and backup: where the data is, worded for a client (the settings' own text is the server's)
    ("db", "the database to read: the file itself when no process holds it, else through the service that holds "
           "it, found from the runtime file beside it (<db>.service.json)"),
    ("host", "where the service is (a host name or address); naming it or --port reads through that service and "
             "the database it holds"),
    ("port", "the service's port"),
    ("token", "the service's bearer token, where it has one (visible to every local user on the command line: "
              "prefer --token-file)"),
    ("token_file", "a file holding the service's bearer token"),
)


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings (env TSSTATS_CONFIG)")


def add_setting_flags(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    add_config_flag(parser)
    group = parser.add_argument_group(
        "settings", "each also as a TSSTATS_<NAME> environment variable and a key in the --config TOML file; "
                    "flags win over the environment, which wins over the file")
    for setting in SETTINGS:
        if names is not None and setting.name not in names:
            continue
        text = f"{setting.help} (default: {setting.shown_default()}; env {setting.env_var})".replace("%", "%%")
        if setting.kind == "bool":
            group.add_argument(setting.flag, dest=setting.name, action="store_const", const=True, default=None,
                               help=text)
        else:
            group.add_argument(setting.flag, dest=setting.name, metavar=setting.name.upper(), default=None,
                               help=text)


UNIT_SETTINGS = tuple(setting.name for setting in SETTINGS if setting.name not in ("db", "token", "token_file"))


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that find a service's data (``locate``), as settings: each also from the environment and
    ``--config``."""
    parser.add_argument("--url", help="the service's URL, for instance http://127.0.0.1:8411 (instead of "
                                      "--host and --port)")
    add_config_flag(parser)
    group = parser.add_argument_group("where the data is", "each also as a TSSTATS_<NAME> environment variable")
    by_name = {setting.name: setting for setting in SETTINGS}
    for name, text in CLIENT_FLAGS:
        setting = by_name[name]
        shown_default = "none" if name in ("token", "token_file") else setting.shown_default()
        group.add_argument(setting.flag, dest=name, metavar=name.upper(), default=None,
                           help=f"{text} (default: {shown_default}; env {setting.env_var})".replace("%", "%%"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsstats", description="A small, fast metrics service for a workstation: samples CPU, memory, "
                                    "network, GPUs and power into DuckDB and serves the dashboard's stats.")
    parser.add_argument("--version", action="version", version=f"tsstats {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="sample this machine and serve the HTTP API",
                                description="Sample this machine and serve the HTTP API until SIGINT/SIGTERM.")
    add_setting_flags(serve)
    check = commands.add_parser("check", help="print what this machine can measure and how",
                                description="Print what this machine can measure and how, with the fix for "
                                            "each thing that is missing.")
    check.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_setting_flags(check)
    synth = commands.add_parser(
        "synth", help="write realistic synthetic history into a database file",
        description="Write realistic synthetic history (daily cycles, bursts, idle nights, GPU jobs or none) "
                    "through the sampler's write path and rollups, ending now, into an empty or older database.")
    synth.add_argument("--days", type=_positive("days", 3650), required=True, help="days of history (up to 3650)")
    synth.add_argument("--hz", type=_positive("hz", 100), default=10.0, help="samples per second (default: 10)")
    synth.add_argument("--db", required=True, help="DuckDB file to write (not one a server is using)")
    synth.add_argument("--gpus", type=int, choices=range(0, 9), default=0, metavar="N",
                       help="synthetic GPUs, 0 to 8 (default: 0)")
    synth.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    export = commands.add_parser(
        "export", help="write samples or rollups to Parquet or CSV",
        description="Write samples (tier raw) or 1-minute/1-hour rollups to Parquet or CSV, units in the column "
                    "names, from the database file, or through the running service when it holds the file. The "
                    "file appears only once complete.")
    export.add_argument("--from", dest="from_", metavar="TIME", help="start: RFC 3339, a date (00:00 UTC), Unix "
                                                                    "seconds or -7d (default: -24h)")
    export.add_argument("--to", metavar="TIME", help="end (default: now)")
    export.add_argument("--metrics", metavar="NAMES", help="comma-separated names from GET /api/metrics "
                                                          "(default: every host metric and energy)")
    export.add_argument("--tier", choices=("raw", "1m", "1h"), default="raw", help="raw samples or a rollup tier "
                                                                                   "(default: raw)")
    export.add_argument("--comparisons", action="store_true", help="export comparisons instead (one row each, "
                        "with the host, figures per item and SCI, phases; --from/--to bound their creation, "
                        "default the last 30 days)")
    export.add_argument("--format", choices=("parquet", "csv"), help="file format (default: from the name of --out, "
                                                                     ".csv or .parquet; csv for -)")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write, or - for standard output")
    export.add_argument("--force", action="store_true", help="replace PATH if it exists")
    add_client_flags(export)
    backup = commands.add_parser(
        "backup", help="make a consistent copy of the database",
        description="Copy the database consistently, from the file when no service holds it, else through the "
                    "running service while it keeps sampling. `tsstats serve --db PATH` serves the copy.")
    backup.add_argument("--out", required=True, metavar="PATH", help="file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    add_client_flags(backup)
    for name, verb in (("install-service", "write"), ("uninstall-service", "remove")):
        unit = commands.add_parser(name, help=f"{verb} a systemd unit that runs tsstats",
                                   description=f"{verb.capitalize()} a systemd unit (tsstats.service) that runs this "
                                               "tsstats with its database under the state directory, restarted "
                                               "on failure and hardened.")
        where = unit.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true", help="for your user: ~/.config/systemd/user (the "
                                                              "default)")
        where.add_argument("--system", action="store_true", help="for the system: /etc/systemd/system (needs "
                                                                "root)")
        if name == "install-service":
            unit.add_argument("--print", action="store_true", help="print the unit instead of writing it")
            unit.add_argument("--token-file", metavar="PATH", help="a file holding the bearer token: systemd hands "
                              "it to the service as a credential (LoadCredential), so the token sits neither "
                              "in the unit nor in the environment")
            add_setting_flags(unit, UNIT_SETTINGS)
            unit.epilog = ("The settings given here (and --config, as an absolute path) are checked as serve checks "
                           "them and passed on to the unit's command line; the database stays under the state "
                           "directory, and the token comes from --token-file.")
    add_run_parser(commands)
    add_compare_parser(commands)
    return parser


def add_run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run", help="run a command as a measured comparison and print what it cost",
        description="Run CMD as a comparison of the running service, with its stdin, stdout and stderr untouched and "
                    "SIGINT, SIGTERM and SIGHUP passed on; exit with its status (128 + N when signal N killed it) "
                    "and print to stderr, like /usr/bin/time, its wall time, energy by component with each "
                    "figure's method, carbon, energy and carbon per item, and its share of the machine's energy.",
        usage="tsstats run [options] -- CMD [ARGS...]")
    run.add_argument("--name", help="the comparison's name (default: the command line)")
    run.add_argument("--model", action="append", default=[], metavar="M", help="a model the command runs "
                                                                               "(repeat for several)")
    run.add_argument("--items", type=_positive("items", 1e15), metavar="N",
                     help="items the command processes (prompts, images, tokens): energy, carbon and SCI per item")
    run.add_argument("--result", metavar="FILE", help="a JSON object the command writes (accuracy, speed, "
                                                      "latencyMs, items, metadata), reported with its end")
    run.add_argument("--json", dest="json_out", metavar="FILE", help="write the finished record to FILE")
    run.add_argument("--required", action="store_true", help="refuse to run the command when no service answers")
    run.add_argument("--url", help="the service (default: TSSTATS_URL, else http://127.0.0.1:8000)")
    run.add_argument("--token", help="its bearer token (default: TSSTATS_TOKEN); visible to every local user on the "
                                     "command line: prefer --token-file")
    run.add_argument("--token-file", metavar="PATH", help="a file holding its bearer token (default: "
                                                          "TSSTATS_TOKEN_FILE)")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD", help="the command and its arguments, after --")


def add_compare_parser(commands: argparse._SubParsersAction) -> None:
    compare = commands.add_parser(
        "compare", help="compare two or more commands over repeated, interleaved trials: energy and time with "
                        "spread, 95 %% intervals and a verdict",
        description="Run each command --warmup times, then --runs rounds in which every command runs once, in an "
                    "order shuffled each round; each trial is measured by the running service. Prints per "
                    "command energy per item (or per run) and time, mean ± σ, the 95 %% interval and the range; "
                    "then each command's ratio to the least, with its interval and Welch's t-test at the 5 %% "
                    "level; and warnings (outliers, a slow first trial, σ above 10 %% of the mean). A command that "
                    "fails stops the study with its output. Without a service the commands are timed only.",
        usage="tsstats compare [options] -- CMD_A [ARGS...] -- CMD_B [ARGS...] [-- ...]")
    compare.add_argument("--runs", type=_runs, default="10", metavar="N|auto",
                         help="rounds of measured trials (default 10); auto: until every ratio's 95 %% interval is "
                              "within --target-ci")
    compare.add_argument("--min-runs", type=_whole("min-runs", 2, 10_000), default=5, metavar="N",
                         help="with --runs auto, at least this many rounds (default 5)")
    compare.add_argument("--max-runs", type=_whole("max-runs", 2, 10_000), default=30, metavar="N",
                         help="with --runs auto, at most this many rounds (default 30)")
    compare.add_argument("--target-ci", type=_positive("target-ci", 100), default=5.0, metavar="PCT",
                         help="with --runs auto, the half-width of every ratio's interval to reach, in %% of the "
                              "ratio (default 5)")
    compare.add_argument("--warmup", type=_whole("warmup", 0, 10_000), default=1, metavar="W",
                         help="warm-up trials of each command, measured and left out (default 1)")
    compare.add_argument("--items", type=_positive("items", 1e15), metavar="N",
                         help="items each trial processes: energy per item instead of per run")
    compare.add_argument("--name", action="append", default=[], metavar="NAME",
                         help="a command's name, once per command in order (default: the command lines)")
    compare.add_argument("--seed", type=_whole("seed", 0, 2 ** 63), metavar="S",
                         help="the seed of the trials' order (default: random)")
    compare.add_argument("--study", metavar="NAME", help="the study's name, in each trial's metadata")
    compare.add_argument("--allow-unfair", action="store_true",
                         help="keep the trials the service judged unfair in the statistics (and run none again)")
    compare.add_argument("--max-wait", type=_whole("max-wait", 0, 3600), default=30, metavar="SECONDS",
                         help="before each trial, wait up to this long for a quiet machine (others' CPU within "
                              "contention_limit_pct) and a cool one (temperatures within 3 °C of the study's first "
                              "quiet reading); 0: do not wait (default 30)")
    compare.add_argument("--retries", type=_whole("retries", 0, 100), default=2, metavar="N",
                         help="run a trial the service judged unfair again, up to this many times (default 2)")
    compare.add_argument("--idle-baseline", type=_positive("idle-baseline", 3600), metavar="SECONDS",
                         help="measure the machine's idle power for this long before the study, and give each "
                              "trial's energy also net of it (as measured stays the default figure)")
    compare.add_argument("--export-json", metavar="FILE", help="write every trial and figure as JSON")
    compare.add_argument("--export-csv", metavar="FILE", help="write each command's figures as CSV")
    compare.add_argument("--export-markdown", metavar="FILE", help="write a Markdown table")
    compare.add_argument("--url", help="the service (default: TSSTATS_URL, else http://127.0.0.1:8000)")
    compare.add_argument("--token", help="its bearer token (default: TSSTATS_TOKEN); prefer --token-file")
    compare.add_argument("--token-file", metavar="PATH", help="a file holding its bearer token (default: "
                                                              "TSSTATS_TOKEN_FILE)")
    compare.add_argument("cmd", nargs=argparse.REMAINDER, metavar="CMD",
                         help="the commands and their arguments, each after --")


def _runs(text: str) -> str:
    if text == "auto":
        return text
    value = whole_number_text(text)
    if value is None or not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"runs must be auto or a whole number from 1 to 10000, not {shown(text)}")
    return str(value)


def _whole(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = whole_number_text(text)
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number from {low} to {high}, not {shown(text)}")
        return value

    return parse


def _positive(name: str, maximum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = decimal_number(text)
        if value is None:
            raise argparse.ArgumentTypeError(f"{name} must be a decimal number, not {shown(text)}")
        if not 0 < value <= maximum or value != value:
            raise argparse.ArgumentTypeError(f"{name} must be greater than 0 and at most {maximum:g}")
        return value

    return parse


def attach_relative_times(argv: list[str]) -> list[str]:
    """``--from -7d`` as ``--from=-7d``: argparse would take a relative time for an option of its own."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in ("--from", "--to") and arg.startswith("-"):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined
