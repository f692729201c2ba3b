"""The machine's clocks: a monotonic clock that counts suspend, and this boot's identity."""

from __future__ import annotations

import time
from collections.abc import Callable


def boot_clock() -> Callable[[], float]:
    """A monotonic clock that also counts time suspended (Linux's CLOCK_BOOTTIME), else Python's monotonic:
    a machine asleep is an outage, a step of the wall clock is none."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    return lambda: time.clock_gettime(boottime)


def boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str:
    """This boot's identity (Linux), or "" where there is none: a monotonic offset is only comparable within a
    boot."""
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""
