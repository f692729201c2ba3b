"""The command line: ``tsstats serve``, ``check``, ``run``, ``synth``, ``export``, ``backup``, ``install-service`` and
``uninstall-service``, each a module of its own, imported only when its command runs (``--help`` and
``check`` start in a fraction of a second); the client of a running service (``client``, standard library
only). Runs on the main thread; ``serve`` hands the process to the assembly's service and Sanic. May import
every layer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from tsstats.cli import runtime  # noqa: F401  (before anything imports numpy)
from tsstats.cli.parser import attach_relative_times, build_parser
from tsstats.cli.runtime import EXIT_USAGE
from tsstats.core.settings import SETTINGS, ConfigError, Settings, load_settings


def settings_from(args: argparse.Namespace) -> Settings:
    flags = {setting.name: getattr(args, setting.name, None) for setting in SETTINGS}
    return load_settings(flags, config_path=args.config)


PRIVATE_UMASK = 0o077  # every file tsstats creates is its owner's alone (0600, directories 0700)


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)  # the database, its WAL, backups, exports and scratch files hold the user's data
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:  # a command is always named: `tsstats serve` starts the service
        parser.print_help()
        return EXIT_USAGE
    if arguments[0].startswith("-") and arguments[0] not in ("-h", "--help", "--version"):
        parser.error(f"name a command before its options, for instance: tsstats serve {' '.join(arguments)}")
    args = parser.parse_args(attach_relative_times(arguments))
    if args.command is None:
        parser.error("name a command, for instance: tsstats serve")
    if args.command == "synth":
        from tsstats.cli.synth import run_synth

        return run_synth(args)
    if args.command == "run":
        from tsstats.cli.run import run_command

        return run_command(args)
    if args.command == "compare":
        from tsstats.cli.compare import run_compare

        return run_compare(args)
    if args.command in ("install-service", "uninstall-service"):
        from tsstats.cli.unit import run_unit

        return run_unit(args)
    try:
        settings = settings_from(args)
    except ConfigError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "check":
        from tsstats.cli.check import run_check

        try:
            return run_check(settings, args.json)
        except BrokenPipeError:  # `tsstats check | head`: the reader left, which is fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    if args.command in ("export", "backup"):
        from tsstats.cli.data import run_backup, run_export

        return run_export(settings, args) if args.command == "export" else run_backup(settings, args)
    from tsstats.cli.serve import run_serve

    return run_serve(settings)
