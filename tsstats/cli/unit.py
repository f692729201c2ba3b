"""``tsstats install-service`` and ``uninstall-service``: a systemd unit that runs this tsstats, hardened, with
its database under the state directory (``/var/lib/tsstats`` for the system, ``~/.local/state/tsstats`` for a
user)."""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from tsstats.cli.runtime import EXIT_FAILURE, EXIT_USAGE
from tsstats.core.settings import SETTINGS, ConfigError, load_settings

UNIT_NAME = "tsstats.service"
OPEN_FILES = 8192  # connections the service may hold, with room for its own files
# for the system unit only (a user manager cannot do these): a user of its own made for the service, no
# capability at all, the system calls of an ordinary service; /proc and /sys stay readable (the readers need
# them) and devices stay reachable (NVML opens /dev/nvidia*)
SYSTEM_HARDENING = """DynamicUser=yes
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
RemoveIPC=yes
"""
NO_RIGHTS = (errno.EACCES, errno.EPERM, errno.EROFS)


@dataclass(frozen=True)
class Scope:
    name: str  # user or system
    unit_dir: Path
    systemctl: str  # the systemctl command for this scope
    wanted_by: str


def scope_of(system: bool, env: dict[str, str] | None = None) -> Scope:
    env = dict(os.environ if env is None else env)
    if system:
        return Scope("system", Path("/etc/systemd/system"), "systemctl", "multi-user.target")
    config = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME", "~")).expanduser() / ".config")
    return Scope("user", config / "systemd" / "user", "systemctl --user", "default.target")


def executable() -> list[str]:
    """The command that runs this tsstats: the one-file executable itself, or the installed entry point."""
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    beside = Path(sys.executable).with_name("tsstats")
    if beside.exists():
        return [str(beside)]
    return [os.path.abspath(sys.executable), "-m", "tsstats"]


def rerun_command() -> str:
    """This very command line, runnable as written (for `sudo ...` advice)."""
    return shlex.join([*executable(), *sys.argv[1:]])


def unit_text(command: list[str], scope: Scope, extra_args: list[str] | None = None,
              token_file: str | None = None) -> str:
    """The unit file. %S is the state directory root (/var/lib, or ~/.local/state for a user); with
    ``token_file``, systemd reads it and hands it to the service as the credential ``token`` (%d/token)."""
    token = ["--token-file", "%d/token"] if token_file else []
    arguments = " ".join(shlex.quote(part) for part in [*command, "serve", "--db", "%S/tsstats/tsstats.duckdb",
                                                        *token, *(extra_args or [])])
    credential = f"LoadCredential=token:{token_file}\n" if token_file else ""
    under_home = any(part.startswith(("/home/", "/root/")) for part in command)
    protect_home = "read-only" if under_home or scope.name == "user" else "yes"
    system = SYSTEM_HARDENING if scope.name == "system" else ""
    return f"""[Unit]
Description=tsstats: a small, fast metrics service for this workstation
After=network.target

[Service]
Type=simple
ExecStart={arguments}
Restart=on-failure
RestartSec=2
StateDirectory=tsstats
StateDirectoryMode=0700
Environment=TSSTATS_LOG_LEVEL=info
{credential}UMask=0077
LimitNOFILE={OPEN_FILES}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome={protect_home}
ReadWritePaths=%S/tsstats
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
{system}
[Install]
WantedBy={scope.wanted_by}
"""


HIDDEN_BY_PRIVATE_TMP = ("/tmp/", "/var/tmp/")


def hidden_paths(paths: list[str]) -> list[str]:
    """Paths the unit needs that its ``PrivateTmp=yes`` hides from the service (a virtual environment under
    /tmp): it would not start."""
    return [f"{path} is under {top.rstrip('/')}, which the unit's PrivateTmp=yes hides from the service: it would "
            f"not find it. Install tsstats (and its --config) elsewhere"
            for path in paths for top in HIDDEN_BY_PRIVATE_TMP if path.startswith(top)]


def unit_arguments(args: argparse.Namespace, has_token_file: bool) -> list[str]:
    """The serve flags given to install-service, checked as serve checks them (``ConfigError``,
    ``ServiceInstallError`` for what serve would refuse), for the unit's command line."""
    from tsstats.assembly import StartupError, checked_settings  # only when a unit is made: it imports the service
    from tsstats.cli.parser import UNIT_SETTINGS

    given = {name: getattr(args, name) for name in UNIT_SETTINGS if getattr(args, name, None) is not None}
    config = os.path.abspath(args.config) if args.config else None
    settings = load_settings({**given, **({"token": "from --token-file"} if has_token_file else {})}, env={},
                             config_path=config)
    try:
        checked_settings(settings)
    except StartupError as error:
        raise ServiceInstallError(f"the unit's service would refuse to start: {error}") from None
    flags = {setting.name: setting for setting in SETTINGS}
    extra = ["--config", config] if config else []
    for name, value in given.items():
        extra += [flags[name].flag] if flags[name].kind == "bool" else [flags[name].flag, str(value)]
    return extra


class ServiceInstallError(RuntimeError):
    """The unit cannot be written or removed; the message says what to run instead."""


def install(scope: Scope, text: str) -> Path:
    path = scope.unit_dir / UNIT_NAME
    try:
        scope.unit_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{UNIT_NAME}.partial")
        temporary.write_text(text)
        os.replace(temporary, path)
    except OSError as error:
        if error.errno in NO_RIGHTS:
            alternative = "" if scope.name == "user" else ", or install for your user with `tsstats install-service " \
                                                          "--user`"
            raise ServiceInstallError(f"no permission to write {path} ({error.strerror}); run "
                                      f"`sudo {rerun_command()}`{alternative}") from None
        raise ServiceInstallError(f"cannot write {path}: {error}") from None
    return path


def uninstall(scope: Scope) -> Path | None:
    path = scope.unit_dir / UNIT_NAME
    if not path.exists():
        return None
    try:
        path.unlink()
    except OSError as error:
        if error.errno in NO_RIGHTS:
            raise ServiceInstallError(f"no permission to remove {path} ({error.strerror}); run "
                                      f"`sudo {rerun_command()}`") from None
        raise ServiceInstallError(f"cannot remove {path}: {error}") from None
    return path


def run_unit(args: argparse.Namespace) -> int:
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
        token_file = os.path.abspath(args.token_file) if args.token_file else None
        command = executable()
        extra = unit_arguments(args, token_file is not None)
        for warning in hidden_paths([command[0], *([os.path.abspath(args.config)] if args.config else [])]):
            print(f"tsstats: warning: {warning}", file=sys.stderr)
        text = unit_text(command, scope, extra, token_file=token_file)
        if args.print:
            print(text, end="")
            return 0
        path = install(scope, text)
    except ServiceInstallError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except ConfigError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {path}; now run: {scope.systemctl} daemon-reload && {scope.systemctl} enable --now tsstats")
    if scope.name == "user":
        print("to keep it running after you log out: loginctl enable-linger $USER")
    return 0
