"""Process trees named by comparisons: CPU time and resident memory of a process and all its descendants, and
the machine's busy CPU time and used memory to share them against.

On Linux from procfs under ``proc_root`` (children from ``/proc/PID/task/*/children``, times from
``/proc/PID/stat``, the time each thread spent runnable but waiting for a CPU from
``/proc/PID/task/*/schedstat``); elsewhere through psutil (no waiting time). Only the named trees are read, and
the service's own process (its CPU time is reported apart from everyone else's).

A tree's CPU time counts its live processes' own time and the time of children they have reaped
(``cutime``/``cstime``): when a child exits and its parent reaps it, the child's time moves into the parent's,
so the tree's total carries on without a jump.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Protocol

MAX_TREE = 4096  # processes read per tree at most (a fork bomb is not measured in full)


@dataclass(frozen=True)
class TreeUsage:
    cpu_ticks: float  # user + system time of the live processes and the children they reaped, in clock ticks
    rss_bytes: float
    members: frozenset[int]  # the processes read
    running: bool  # some named process runs (is not a zombie)
    wait_ticks: float = math.nan  # runnable but waiting for a CPU, live threads only, in clock ticks (NaN: unknown)


@dataclass(frozen=True)
class MachineUsage:
    busy_ticks: float  # CPU time of all CPUs not idle, in clock ticks
    used_bytes: float  # total - available memory
    total_ticks: float = math.nan  # CPU time of all CPUs, idle included: the machine's capacity
    steal_ticks: float = 0.0  # time a hypervisor gave other guests (part of busy_ticks)
    service_ticks: float = math.nan  # this service's own CPU time (NaN: unknown)


class ProcessTrees(Protocol):
    """Reads named process trees and the machine's totals to share them against (procfs or psutil)."""

    def exists(self, pid: int) -> bool: ...

    def tree(self, pids: tuple[int, ...]) -> TreeUsage: ...

    def machine(self) -> MachineUsage: ...


class ProcfsTrees:
    """Process trees from procfs; ``service_pid``: this service's own process."""

    def __init__(self, proc_root: str = "/proc", service_pid: int | None = None):
        self.root = proc_root
        self.service_pid = os.getpid() if service_pid is None else service_pid
        self.page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.ticks_per_s = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0

    def exists(self, pid: int) -> bool:
        try:
            with open(f"{self.root}/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            return fields[0] != b"Z"  # a zombie has exited
        except (OSError, IndexError):
            return False

    def _stat(self, pid: int, reaped: bool = True) -> tuple[bool, float, float] | None:
        """(whether it runs, not a zombie; its CPU ticks, with those of the children it reaped unless not
        ``reaped``; its resident bytes), or None once it is gone."""
        try:
            with open(f"{self.root}/{pid}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        # after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14) ... rss(21)
        ticks = float(int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0))
        return fields[0] != b"Z", ticks, float(int(fields[21])) * self.page_size

    def _threads(self, pid: int) -> tuple[list[int], float]:
        """A process's children and its threads' time runnable but waiting for a CPU (ticks; NaN when no
        thread gave one: a kernel without schedstats)."""
        children: list[int] = []
        wait_ns, known = 0, False
        try:
            tasks = os.listdir(f"{self.root}/{pid}/task")
        except OSError:
            return children, math.nan
        for task in tasks:
            try:
                with open(f"{self.root}/{pid}/task/{task}/children", "rb") as handle:
                    children.extend(int(child) for child in handle.read().split())
            except OSError:
                pass
            try:
                with open(f"{self.root}/{pid}/task/{task}/schedstat", "rb") as handle:
                    wait_ns += int(handle.read().split()[1])  # on-CPU ns, waiting ns, time slices
                known = True
            except (OSError, IndexError, ValueError):
                continue
        return children, wait_ns / 1e9 * self.ticks_per_s if known else math.nan

    def tree(self, pids: tuple[int, ...]) -> TreeUsage:
        seen: set[int] = set()
        pending = list(pids)
        ticks = rss = wait = 0.0
        running = False
        while pending and len(seen) < MAX_TREE:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            stat = self._stat(pid)
            if stat is None:  # exited since
                continue
            running = running or (stat[0] and pid in pids)
            ticks += stat[1]
            rss += stat[2]
            children, waited = self._threads(pid)
            wait += waited  # one process without schedstat makes the tree's unknown
            pending.extend(children)
        return TreeUsage(ticks, rss, frozenset(seen), running, wait if seen else math.nan)

    def machine(self) -> MachineUsage:
        with open(f"{self.root}/stat", "rb") as handle:
            values = [int(value) for value in handle.readline().split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
        busy = float(user + nice + system + irq + softirq + steal)
        service = self._stat(self.service_pid, reaped=False)  # its own threads' time, as psutil gives it
        own = math.nan if service is None else service[1]
        memory = {}
        with open(f"{self.root}/meminfo", "rb") as handle:
            for line in handle:
                key, _, rest = line.partition(b":")
                if key in (b"MemTotal", b"MemAvailable"):
                    memory[key] = int(rest.split()[0]) * 1024
        used = memory.get(b"MemTotal", 0) - memory.get(b"MemAvailable", 0)
        return MachineUsage(busy, float(max(used, 0)), busy + idle + iowait, float(steal), own)


def _import_psutil() -> Any:
    import psutil

    return psutil


class PsutilTrees:
    """Process trees through psutil, where there is no procfs (times in seconds: the shares are ratios)."""

    def __init__(self, psutil_module: Any = None, service_pid: int | None = None):
        self.psutil = psutil_module if psutil_module is not None else _import_psutil()
        self.service_pid = os.getpid() if service_pid is None else service_pid

    def exists(self, pid: int) -> bool:
        try:
            return self.psutil.Process(pid).status() != self.psutil.STATUS_ZOMBIE
        except (self.psutil.Error, ValueError):
            return False

    def tree(self, pids: tuple[int, ...]) -> TreeUsage:
        psutil = self.psutil
        seen: set[int] = set()
        ticks = rss = 0.0
        running = False
        for pid in pids:
            try:
                root = psutil.Process(pid)
                running = running or root.status() != psutil.STATUS_ZOMBIE
                processes = [root, *root.children(recursive=True)]
            except (psutil.Error, ValueError):
                continue
            for process in processes[:MAX_TREE]:
                if process.pid in seen:
                    continue
                seen.add(process.pid)
                try:
                    times = process.cpu_times()
                    ticks += times.user + times.system + times.children_user + times.children_system
                    rss += process.memory_info().rss
                except psutil.Error:
                    continue
        return TreeUsage(ticks, rss, frozenset(seen), running)

    def machine(self) -> MachineUsage:
        times = self.psutil.cpu_times()
        memory = self.psutil.virtual_memory()
        steal = getattr(times, "steal", 0.0)
        busy = (times.user + times.system + getattr(times, "nice", 0.0) + getattr(times, "irq", 0.0)
                + getattr(times, "softirq", 0.0) + steal)
        try:
            own = self.psutil.Process(self.service_pid).cpu_times()
            service = own.user + own.system
        except (self.psutil.Error, ValueError):
            service = math.nan
        return MachineUsage(busy, float(memory.total - memory.available),
                            busy + times.idle + getattr(times, "iowait", 0.0), steal, service)
