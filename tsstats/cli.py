"""Command line: ``tsstats serve``, ``check``, ``synth``, ``export``, ``backup``, ``install-service`` and
``uninstall-service``."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__, runtime  # noqa: F401  (runtime first: before numpy)
from .config import SETTINGS, ConfigError, load_settings
from .store import StoreError

EXIT_USAGE = 2
EXIT_FAILURE = 1


SERVICE_SETTINGS = ("db", "host", "port", "token")  # what export and backup need to find the data


def add_setting_flags(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML file of settings (env TSSTATS_CONFIG)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tsstats", description="A small, fast metrics service for a workstation: samples CPU, memory, "
                                    "network, GPUs and power into DuckDB and serves the dashboard's stats.")
    parser.add_argument("--version", action="version", version=f"tsstats {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="sample and serve the HTTP API (the default)",
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
    export.add_argument("--from", dest="from_", metavar="TIME", help="start: RFC 3339, Unix seconds or -7d "
                                                                    "(default: -24h)")
    export.add_argument("--to", metavar="TIME", help="end (default: now)")
    export.add_argument("--metrics", metavar="NAMES", help="comma-separated names from GET /api/metrics "
                                                          "(default: every host metric and energy)")
    export.add_argument("--tier", choices=("raw", "1m", "1h"), default="raw", help="raw samples or a rollup tier "
                                                                                   "(default: raw)")
    export.add_argument("--format", choices=("parquet", "csv"), required=True, help="file format")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write")
    export.add_argument("--force", action="store_true", help="replace PATH if it exists")
    export.add_argument("--url", help="a running service to export through (default: the one on --host/--port "
                                      "when it holds the database)")
    add_setting_flags(export, SERVICE_SETTINGS)
    backup = commands.add_parser(
        "backup", help="make a consistent copy of the database",
        description="Copy the database consistently, from the file when no service holds it, else through the "
                    "running service while it keeps sampling. `tsstats serve --db PATH` serves the copy.")
    backup.add_argument("--out", required=True, metavar="PATH", help="file to write")
    backup.add_argument("--force", action="store_true", help="replace PATH if it exists")
    backup.add_argument("--url", help="a running service to back up through (default: the one on --host/--port "
                                      "when it holds the database)")
    add_setting_flags(backup, SERVICE_SETTINGS)
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
    return parser


def _positive(name: str, maximum: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}") from None
        if not 0 < value <= maximum or value != value:
            raise argparse.ArgumentTypeError(f"{name} must be greater than 0 and at most {maximum:g}")
        return value

    return parse


def run_synth(args: argparse.Namespace) -> int:
    from .store import Store
    from .synth import ProgressBar, synthesize

    try:
        store = Store(args.db)
    except StoreError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        written = synthesize(store, args.days, args.hz, gpus=args.gpus, seed=args.seed,
                             progress=ProgressBar(f"synth {args.days:g} d at {args.hz:g} Hz"))
    except ValueError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        store.close()
    print(f"wrote {written:,} samples ({args.days:g} days at {args.hz:g} Hz, {args.gpus} GPUs) to {args.db}")
    return 0


def _attach_relative_times(argv: list[str]) -> list[str]:
    """``--from -7d`` as ``--from=-7d``: argparse would take a relative time for an option of its own."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] in ("--from", "--to") and arg.startswith("-"):
            joined[-1] = f"{joined[-1]}={arg}"
        else:
            joined.append(arg)
    return joined


def _settings_from(args: argparse.Namespace):
    flags = {setting.name: getattr(args, setting.name, None) for setting in SETTINGS}
    return load_settings(flags, config_path=args.config)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["serve", *argv]
    argv = _attach_relative_times(argv)
    args = parser.parse_args(argv)
    if args.command == "synth":
        return run_synth(args)
    if args.command in ("install-service", "uninstall-service"):
        return run_unit(args)
    try:
        settings = _settings_from(args)
    except ConfigError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "check":
        try:
            return run_check(settings, args.json)
        except BrokenPipeError:  # `tsstats check | head`: the reader left, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    if args.command == "export":
        from .data_commands import run_export

        return run_export(settings, args)
    if args.command == "backup":
        from .data_commands import run_backup

        return run_backup(settings, args)
    return run_serve(settings)


def run_unit(args: argparse.Namespace) -> int:
    from .systemd import ServiceInstallError, executable, install, scope_of, uninstall, unit_text

    scope = scope_of(system=args.system)
    try:
        if args.command == "uninstall-service":
            removed = uninstall(scope)
            if removed is None:
                print(f"no {scope.name} unit at {scope.unit_dir / 'tsstats.service'}; nothing removed")
            else:
                print(f"removed {removed}; now run: {scope.systemctl} disable --now tsstats; "
                      f"{scope.systemctl} daemon-reload")
            return 0
        text = unit_text(executable(), scope)
        if args.print:
            print(text, end="")
            return 0
        path = install(scope, text)
    except ServiceInstallError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {path}; now run: {scope.systemctl} daemon-reload && {scope.systemctl} enable --now tsstats")
    if scope.name == "user":
        print("to keep it running after you log out: loginctl enable-linger $USER")
    return 0


def run_check(settings, as_json: bool) -> int:
    from .service import describe_machine

    report = describe_machine(settings)
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    cpu, rapl, nvml = report["cpu"], report["rapl"], report["nvml"]
    lines = [
        f"CPU          {cpu['model'] or 'unknown model'}, {cpu['logicalCpus']} logical CPUs (read through "
        f"{report['system']})",
        f"CPU power    {rapl['cpuMethod']}"
        + (f" ({', '.join(rapl['packages'])})" if rapl["packages"] else
           f" (TDP {cpu['tdpW']:g} W, {cpu['tdpRule']}{': ' + cpu['tdpMatch'] if cpu['tdpMatch'] else ''})"),
        f"memory power {rapl['memoryMethod']}"
        + (f" ({', '.join(rapl['dram'])})" if rapl["dram"] else
           f" ({report['memory']['modelW']:g} W for {report['memory']['dimms'] or 'an assumed 2'} DIMMs)"),
    ]
    for entry in rapl["unreadable"]:
        lines.append(f"RAPL         {entry['domain']} unreadable: {entry['error']}")
    if nvml["available"]:
        lines.append(f"NVML         driver {nvml['driver']}, {len(nvml['gpus'])} GPU(s)")
        for gpu in nvml["gpus"]:
            lines.append(f"  GPU {gpu['index']}      {gpu['name']}: energy counter "
                         f"{'yes' if gpu['energyCounter'] else 'no'}, power {'yes' if gpu['power'] else 'no'}")
    else:
        lines.append(f"NVML         none ({nvml['error']})")
    latency = report["networkLatency"]
    lines.append("latency      " + (f"TCP connect to {', '.join(latency['targets'])}" if latency["targets"] else
                                    f"kernel TCP RTT {'readable' if latency['kernelRtt'] else 'unreadable'}"))
    grid = report["grid"]
    if "error" in grid:
        lines.append(f"grid         {grid['error']}")
    else:
        lines.append(f"grid         {grid['region']} ({grid['year']}): {grid['gPerKwh']:g} g/kWh, "
                     f"{grid['renewablePct']:g}% renewable — {grid['source']}")
    lines.append(f"database     {report['database']}{'' if report['databaseExists'] else ' (not created yet)'}")
    if report["fixes"]:
        lines.append("")
        lines.append("To measure more:")
        lines.extend(f"- {fix}" for fix in report["fixes"])
    print("\n".join(lines))
    return 0


EARLY_STOP_DELAY_S = 0.1


def run_serve(settings) -> int:
    from .server import create_app
    from .service import StartupError, open_service
    from .stopping import StopSignals

    log = logging.getLogger("tsstats")
    signals = StopSignals()
    signals.hold()  # first: every thread started from here on leaves the stop signals to the signal thread
    try:
        service = open_service(settings)
    except (StartupError, StoreError) as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    app = create_app(service.view())

    @app.before_server_start
    async def start_sampling(app):
        service.start()
        # Everything loaded so far lives as long as the process: keep it out of the collector's full passes,
        # which would otherwise walk every module's objects and show up as latency spikes.
        gc.collect()
        gc.freeze()
        log.info("sampling at %g Hz into %s; serving on http://%s:%d", settings.sample_hz, settings.db,
                 settings.host, settings.port)

    @app.after_server_start
    async def stop_on_signals(app):
        """SIGTERM, SIGINT and SIGHUP (a closed terminal, a reload request) stop the service: flushed and
        checkpointed, exit 0; a reload would have nothing to reread that a restart does not."""
        loop = asyncio.get_running_loop()

        def stop() -> None:
            try:
                loop.call_soon_threadsafe(app.stop, False)
            except RuntimeError:  # the loop has already closed: it is stopping anyway
                pass

        # a signal that came during start-up stops the server once it runs (a stop from inside this hook would
        # end the hook's own run of the loop, not the server's)
        signals.serving(stop, early=lambda: loop.call_later(EARLY_STOP_DELAY_S, app.stop, False))

    @app.after_server_stop
    async def stop_sampling(app):
        if service.stop():
            log.error("stopped; %d samples could not be written to %s (see the errors above)", service.unwritten,
                      settings.db)
        else:
            log.info("stopped; samples flushed and checkpointed to %s", settings.db)

    try:
        app.run(host=settings.host, port=settings.port, single_process=True, access_log=False,
                debug=False, motd=False)
    except OSError as error:
        print(f"tsstats: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        service.stop()  # idempotent: after_server_stop has usually done it
    return EXIT_FAILURE if service.unwritten else 0
