"""CPU and memory power: RAPL energy counters where they can be read, else the inputs of the power models (the
CPU's model and TDP, the memory modules), and what would let this machine measure more. Read on the sampler
thread (counters) and once at start-up (the rest).

RAPL: package domains (``intel-rapl:N`` named ``package-*``) for the CPU, never their subdomains too (cores and
uncore are inside the package); ``dram`` subdomains for memory. ``psys`` and the duplicate ``intel-rapl-mmio``
tree are not counted. A counter that wraps is corrected with ``max_energy_range_uj``.

Models' inputs: the CPU's TDP from the packaged table (``data/cpu-tdp.csv``) and the memory modules the system
reports. Fixes: one list for ``tsstats check`` and ``GET /api/check``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from importlib import resources

from tsstats.sources.gpu import GpuReader

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


UNKNOWN_CPU_TDP_W = 85.0
WATTS_PER_THREAD = 4.0


def normalize_cpu_name(name: str) -> list[str]:
    """Tokens of a CPU model name without vendor marks, clock speed and core counts."""
    text = name.lower()
    text = re.sub(r"\((r|tm|c)\)", " ", text)
    text = re.sub(r"@.*$", " ", text)
    text = re.sub(r"\b\d+-core\b|\bprocessor\b|\bcpu\b|\bwith radeon.*$|\bwith .* graphics.*$", " ", text)
    text = re.sub(r"\b\d+(st|nd|rd|th) gen\b", " ", text)
    return text.replace(",", " ").split()


@dataclass(frozen=True)
class TdpMatch:
    model: str
    tdp_w: float
    matched: str  # table entry, or "" for a fallback
    rule: str  # "table", "per_thread" or "unknown"


def load_tdp_table() -> list[tuple[list[str], str, float]]:
    text = resources.files("tsstats").joinpath("data/cpu-tdp.csv").read_text(encoding="utf-8")
    table = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            table.append((normalize_cpu_name(row["Name"]), row["Name"], float(row["TDP"])))
        except (KeyError, ValueError):
            continue
    return table


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    iterator = iter(haystack)
    return all(token in iterator for token in needle)


def match_tdp(model: str, threads: int, table: list[tuple[list[str], str, float]] | None = None) -> TdpMatch:
    """TDP of ``model``: the longest table entry whose tokens appear in order in the model's tokens."""
    tokens = normalize_cpu_name(model)
    if not tokens:
        return TdpMatch(model, UNKNOWN_CPU_TDP_W, "", "unknown")
    table = load_tdp_table() if table is None else table
    best = None
    for entry_tokens, entry_name, tdp in table:
        if entry_tokens == tokens:
            return TdpMatch(model, tdp, entry_name, "table")
        if entry_tokens and entry_tokens[-1] in tokens and _is_subsequence(entry_tokens, tokens):
            if best is None or len(entry_tokens) > len(best[0]):
                best = (entry_tokens, entry_name, tdp)
    if best is not None:
        return TdpMatch(model, best[2], best[1], "table")
    return TdpMatch(model, WATTS_PER_THREAD * max(threads, 1), "", "per_thread")


def count_dimms(sys_root: str = "/sys") -> int | None:
    """Memory modules known to the EDAC driver, or None when it says nothing."""
    base = os.path.join(sys_root, "devices/system/edac/mc")
    try:
        controllers = [entry for entry in os.listdir(base) if entry.startswith("mc")]
    except OSError:
        return None
    count = 0
    for controller in controllers:
        try:
            count += sum(1 for entry in os.listdir(os.path.join(base, controller))
                         if re.match(r"^(dimm|rank)\d+$", entry))
        except OSError:
            continue
    return count or None


LIBRARIES = {"nvml": "NVML", "amdsmi": "AMD SMI"}


def hardware_fixes(powercap_root: str, rapl: RaplReader, gpu: GpuReader, dimms_known: bool) -> list[str]:
    """The fix for each thing this machine's readers cannot measure, from the opened readers."""
    fixes = []
    if rapl.unreadable:
        fixes.append(RAPL_FIX)
    if not rapl.packages and not rapl.unreadable:
        fixes.append(f"no RAPL package domain under {powercap_root}: CPU power is modelled from the "
                     f"TDP table. In a container, mount the host's /sys/class/powercap and set powercap_root.")
    if not gpu.gpus:
        fixes.append(f"no NVIDIA or AMD GPU readings ({gpu.error}); GPU figures read 0. With an NVIDIA GPU, "
                     f"install its driver (nvidia-ml-py is installed with tsstats); with an AMD GPU, ROCm and "
                     f"pip install 'tsstats[amd]'.")
    for info in gpu.gpus:
        if "energy" in info.unsupported:
            older = " (older than Volta)" if info.library == "nvml" else ""
            fixes.append(f"GPU {info.index} has no {LIBRARIES.get(info.library, info.library)} energy counter"
                         f"{older}: its power is integrated over time instead.")
    if not dimms_known:
        fixes.append("the number of memory modules is unknown (no EDAC data): memory power assumes 2 DIMMs; "
                     "set dimm_count to the real number.")
    return fixes
