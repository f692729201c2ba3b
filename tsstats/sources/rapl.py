"""RAPL energy counters under the powercap root, for CPU and memory energy.

Package domains (``intel-rapl:N`` named ``package-*``) for the CPU, never their subdomains too
(cores and uncore are inside the package); ``dram`` subdomains for memory. ``psys`` and the duplicate
``intel-rapl-mmio`` tree are not counted. A counter that wraps is corrected with ``max_energy_range_uj``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

RAPL_FIX = ("RAPL energy counters are readable by root only. To let tsstats read them, run "
            "`sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
            "/sys/class/powercap/intel-rapl:*/intel-rapl:*/energy_uj` (until reboot), or make it permanent "
            "with a systemd-tmpfiles line `z /sys/class/powercap/intel-rapl:*/energy_uj 0444 - - -` "
            "(and the same for intel-rapl:*/intel-rapl:*/energy_uj).")
_TOP = re.compile(r"^intel-rapl:(\d+)$")
_SUB = re.compile(r"^intel-rapl:(\d+):(\d+)$")


def counter_delta(previous: int, current: int, max_range: int) -> int:
    """Increase of a wrapping counter between two readings."""
    if current >= previous:
        return current - previous
    return current + max_range - previous


@dataclass
class RaplDomain:
    path: str
    name: str
    max_range_uj: int
    error: str = ""
    last_uj: int | None = None
    _fd: int | None = None

    def read_uj(self) -> int:
        """The counter, re-read with pread from a descriptor kept open (sysfs answers fresh contents)."""
        if self._fd is None:
            self._fd = os.open(os.path.join(self.path, "energy_uj"), os.O_RDONLY)
        return int(os.pread(self._fd, 64, 0))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def peek(self) -> float:
        """Joules since the previous ``advance``, leaving its mark where it is (0 before the first)."""
        if self.last_uj is None:
            return 0.0
        return counter_delta(self.last_uj, self.read_uj(), self.max_range_uj) / 1e6

    def advance(self) -> float:
        """Joules since the previous call (0 on the first)."""
        current = self.read_uj()
        previous, self.last_uj = self.last_uj, current
        if previous is None:
            return 0.0
        return counter_delta(previous, current, self.max_range_uj) / 1e6


@dataclass
class RaplReader:
    """Package and dram RAPL domains found under ``powercap_root``."""

    powercap_root: str = "/sys/class/powercap"
    packages: list[RaplDomain] = field(default_factory=list)
    drams: list[RaplDomain] = field(default_factory=list)
    unreadable: list[RaplDomain] = field(default_factory=list)

    def discover(self) -> RaplReader:
        try:
            entries = sorted(os.listdir(self.powercap_root))
        except OSError:
            entries = []
        for entry in entries:
            path = os.path.join(self.powercap_root, entry)
            top, sub = _TOP.match(entry), _SUB.match(entry)
            if not top and not sub:
                continue
            try:
                with open(os.path.join(path, "name"), encoding="ascii") as handle:
                    name = handle.read().strip()
                with open(os.path.join(path, "max_energy_range_uj"), encoding="ascii") as handle:
                    max_range = int(handle.read())
            except (OSError, ValueError):
                continue
            if top and name.startswith("package"):
                group = self.packages
            elif sub and name == "dram":
                group = self.drams
            else:
                continue
            domain = RaplDomain(path=path, name=f"{entry} ({name})", max_range_uj=max_range)
            try:
                domain.last_uj = domain.read_uj()
            except (OSError, ValueError) as error:
                domain.error = str(error)
                self.unreadable.append(domain)
                continue
            group.append(domain)
        return self

    @property
    def cpu_available(self) -> bool:
        """Every package domain is readable (a partial reading would undercount)."""
        return bool(self.packages) and not any("package" in d.name for d in self.unreadable)

    @property
    def dram_available(self) -> bool:
        return bool(self.drams) and not any("dram" in d.name for d in self.unreadable)

    def close(self) -> None:
        for domain in self.packages + self.drams:
            domain.close()

    def cpu_joules(self) -> float:
        return sum(domain.advance() for domain in self.packages)

    def dram_joules(self) -> float:
        return sum(domain.advance() for domain in self.drams)

    def peek_cpu_joules(self) -> float:
        """CPU joules since the last ``cpu_joules``, without moving its mark."""
        return sum(domain.peek() for domain in self.packages)

    def peek_dram_joules(self) -> float:
        return sum(domain.peek() for domain in self.drams)
