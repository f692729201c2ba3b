"""``tsstats run [options] -- CMD ARGS...``: run a command as a measured comparison, like ``/usr/bin/time``.

The command's stdin, stdout and stderr are its own. SIGINT, SIGTERM and SIGHUP sent to ``tsstats run`` are
passed on to it; a SIGINT from the terminal already reaches it (it is in the same process group) and is not
sent twice. The exit status is the command's (128 + N when signal N killed it, 127 when it does not exist, 126
when it cannot be run). The comparison names this process, so the command and its children are measured; it is
``completed`` for status 0, ``failed`` otherwise, ``cancelled`` when the user interrupted it. Standard library
and ``tsstats.client`` only. When the command ends it prints what it cost and how each
figure was obtained (``summary_lines``).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from typing import Any

from tsstats.cli.runtime import EXIT_USAGE
from tsstats.client.service import ServiceClient, ServiceRefused, ServiceUnreachable, say, warn
from tsstats.client.track import ended_body, running_body

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NOT_FOUND, NOT_EXECUTABLE = 127, 126
RESULT_FIELDS = ("accuracy", "speed", "latencyMs", "items", "metadata")


def keep_standard_descriptors() -> None:
    """Put /dev/null on any of descriptors 0, 1 and 2 that is closed, so that no socket or file opened here takes
    its number and reaches the command as its stdin, stdout or stderr."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != descriptor:
                os.dup2(opened, descriptor)
                os.close(opened)


class Forwarder:
    """Takes the stop signals on a thread of its own and passes on those not sent by the terminal."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.interrupted = False
        self._done = threading.Event()
        self._inherited: dict[int, Any] = {}

    def hold(self) -> None:
        """Block the signals and take them on a thread of its own. One this process inherited as ignored (a
        background job ignores SIGINT, nohup SIGHUP) would never reach that thread: it is taken all the same,
        and the command gets the disposition it would have had (``for_child``)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        for number in FORWARDED:
            self._inherited[number] = signal.getsignal(number)
            if self._inherited[number] == signal.SIG_IGN:
                signal.signal(number, signal.SIG_DFL)  # blocked: pending until the thread takes it
        threading.Thread(target=self._take, name="tsstats-run-signals", daemon=True).start()

    def for_child(self) -> None:
        """In the command's process, before it runs: the signals as this process found them."""
        for number, disposition in self._inherited.items():
            if disposition == signal.SIG_IGN:
                signal.signal(number, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)

    def _take(self) -> None:
        while not self._done.is_set():
            info = signal.sigwaitinfo(FORWARDED)
            number = info.si_signo
            if number == signal.SIGINT:
                self.interrupted = True
            from_terminal = number == signal.SIGINT and info.si_pid == 0  # the tty's ^C reached the group
            child = self.child
            if child is not None and child.poll() is None and not from_terminal:
                try:
                    child.send_signal(number)
                except ProcessLookupError:
                    pass

    def release(self) -> None:
        self._done.set()


def command_service(args: argparse.Namespace, who: str) -> ServiceClient | None:
    """For a command that runs others (run, compare): descriptors 0-2 kept, and the service its flags name (None,
    with the reason said, when the token file cannot be read)."""
    keep_standard_descriptors()
    try:
        return ServiceClient.from_environment(args.url, args.token, args.token_file)
    except ValueError as unreadable:
        say(f"{who}: {unreadable}")
        return None


def run_command(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        say("tsstats run: name the command to run after --, e.g. tsstats run -- python bench.py")
        return EXIT_USAGE
    service = command_service(args, "tsstats run")
    if service is None:
        return EXIT_USAGE
    name = args.name or shlex.join(command)[:200]
    run = start(service, name, args.model, args.items, args.required)
    if run is False:
        return EXIT_USAGE
    forwarder = Forwarder()
    forwarder.hold()
    started = time.monotonic()
    error: str | None = None
    try:
        forwarder.child = subprocess.Popen(command, preexec_fn=forwarder.for_child)
    except FileNotFoundError:
        warn(f"{command[0]}: command not found")
        code, error = NOT_FOUND, f"{command[0]}: command not found"
    except PermissionError:
        warn(f"{command[0]}: permission denied")
        code, error = NOT_EXECUTABLE, f"{command[0]}: permission denied"
    else:
        status = forwarder.child.wait()
        code = 128 - status if status < 0 else status
        error = None if status == 0 else (f"killed by signal {-status}" if status < 0 else f"exit status {status}")
    forwarder.release()
    wall_s = time.monotonic() - started
    outcome = "cancelled" if forwarder.interrupted and code != 0 else ("completed" if code == 0 else "failed")
    record = finish(service, run, outcome, error, args.result) if run else None
    for line in summary_lines(name, outcome, code, wall_s, record):
        say(line)
    if record is not None and args.json_out:
        try:
            with open(args.json_out, "w", encoding="utf-8") as out:
                json.dump(record, out, indent=2)
        except OSError as problem:
            warn(f"--json {args.json_out}: {problem}")
    return code


def start(service: ServiceClient, name: str, models: list[str], items: float | None,
          required: bool) -> dict[str, Any] | None | bool:
    """The comparison, running; None when no service answers (the command runs unmeasured); False when
    ``required`` and none answers, or the service refused it."""
    try:
        return service.call("POST", "/api/comparisons", running_body(models, name, items))
    except ServiceUnreachable as error:
        if required:
            warn(f"{error}; not running the command (--required)")
            return False
        warn(f"{error}; the command runs unmeasured")
    except ServiceRefused as error:
        warn(str(error))
        return False
    return None


def finish(service: ServiceClient, run: Any, outcome: str, error: str | None,
           result_path: str | None) -> dict[str, Any] | None:
    try:
        body = ended_body(outcome, error, read_result(result_path))
        return service.call("PATCH", f"/api/comparisons/{run['id']}", body)
    except (ServiceUnreachable, ServiceRefused) as problem:
        warn(f"{problem}; the run's figures are missing")
        return None


def read_result(path: str | None) -> dict[str, Any]:
    """The fields of ``--result FILE`` to report; a missing or bad file is a warning, not a failure."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            result = json.load(handle)
    except (OSError, ValueError) as problem:
        warn(f"--result {path}: {problem}; nothing reported from it")
        return {}
    if not isinstance(result, dict):
        warn(f"--result {path}: expected a JSON object; nothing reported from it")
        return {}
    unknown = sorted(set(result) - set(RESULT_FIELDS))
    if unknown:
        warn(f"--result {path}: ignored {', '.join(unknown)} (known: {', '.join(RESULT_FIELDS)})")
    return {key: value for key, value in result.items() if key in RESULT_FIELDS}


def joules(value: float) -> str:
    if value == 0:
        return "0 J"
    for limit, unit, scale in ((1e6, "MJ", 1e-6), (1e3, "kJ", 1e-3), (1.0, "J", 1.0), (1e-3, "mJ", 1e3)):
        if abs(value) >= limit:
            return f"{value * scale:.3g} {unit}"
    return f"{value * 1e6:.3g} uJ"


def grams(value: float) -> str:
    if value == 0:
        return "0 g CO2e"
    for limit, unit, scale in ((1e3, "kg", 1e-3), (1.0, "g", 1.0), (1e-3, "mg", 1e3)):
        if abs(value) >= limit:
            return f"{value * scale:.3g} {unit} CO2e"
    return f"{value * 1e6:.3g} ug CO2e"


def summary_lines(name: str, outcome: str, code: int, wall_s: float, record: dict[str, Any] | None) -> list[str]:
    lines = [f"tsstats: {name}: {outcome} (exit {code}) in {wall_s:.2f} s"]
    if record is None or record.get("energyJ") is None:
        return lines + ["  not measured: no figures from the service"]
    methods = record.get("methods") or {}
    estimated = set(record.get("estimated") or [])
    by_component = record.get("energyByComponentJ")
    if by_component:
        parts = [f"{component} {joules(value)} ({methods.get(component, '?')}"
                 f"{', estimated' if component in estimated else ''})" for component, value in by_component.items()]
        lines.append(f"  energy   {joules(record['energyJ'])}: " + ", ".join(parts))
    else:
        how = ", ".join(f"{component} {method}" for component, method in methods.items())
        lines.append(f"  energy   {joules(record['energyJ'])} (the machine's, shared with the runs beside it; "
                     f"{how})")
    grid = record.get("grid") or {}
    lines.append(f"  carbon   {grams(record['carbonG'])} at {grid.get('gPerKwh', '?')} g/kWh "
                 f"({grid.get('region', '?')}, {grid.get('source', '?')})")
    if record.get("items"):
        sci = record.get("sci")
        includes = " + ".join(record.get("sciIncludes") or [])
        lines.append(f"  per item {joules(record['energyPerItemJ'])}, {grams(record['carbonPerItemG'])} over "
                     f"{record['items']:,g} items; SCI {grams(sci) if sci is not None else '-'} per item ({includes})")
    machine = record.get("machineEnergyJ")
    energy = record.get("energyJ")
    if machine and energy is not None:
        lines.append(f"  share    {100.0 * energy / machine:.1f} % of the machine's energy over the run "
                     f"({joules(machine)})")
    if record.get("fair") is not None:
        reasons = "; ".join(record.get("unfairReasons") or [])
        lines.append("  fair     yes: nothing spoiled the comparison (docs/conditions.md)" if record["fair"] else
                     f"  fair     no: {reasons} (left out of ?fair=true and of a study's statistics)")
    return lines
