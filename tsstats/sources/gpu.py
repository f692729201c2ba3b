"""GPUs: what a GPU reader gives, and the one interface its implementations meet (``nvml.NvmlReader``, NVIDIA
through ``pynvml``; ``amdsmi_reader.AmdSmiReader``, AMD through ``amdsmi``); ``AllGpus``, which reads every kind
a machine has as one list, numbered 0, 1, ... NVIDIA's first; and the GPUs no reader reads yet, found by PCI
vendor under ``/sys/class/drm`` (``unread_gpus``). Read on the sampler thread; ``unread_gpus`` by ``tsstats
check`` too."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

NAN = float("nan")


@dataclass
class GpuReading:
    index: int
    ok: bool = True
    utilization_pct: float = NAN
    memory_used_bytes: float = NAN
    memory_total_bytes: float = NAN
    power_w: float = NAN
    energy_counter_j: float = NAN  # the driver's cumulative counter, in joules
    temperature_c: float = NAN


@dataclass(frozen=True)
class GpuConditions:
    """Read once a second: clocks, fan, and the reasons the driver holds the clocks down now."""

    sm_clock_mhz: float = NAN
    memory_clock_mhz: float = NAN
    fan_pct: float = NAN
    throttle_mask: float = NAN  # NVML's clocks-event reasons, a bit mask (THROTTLE_REASONS); NaN: unknown


# NVML's clocks-event (throttle) reasons by bit; those in THROTTLED hold the clocks below what the load asks
THROTTLE_REASONS = {0x1: "GpuIdle", 0x2: "ApplicationsClocksSetting", 0x4: "SwPowerCap", 0x8: "HwSlowdown",
                    0x10: "SyncBoost", 0x20: "SwThermalSlowdown", 0x40: "HwThermalSlowdown",
                    0x80: "HwPowerBrakeSlowdown", 0x100: "DisplayClockSetting"}
THROTTLED = 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


@dataclass(frozen=True)
class ProcessGpuUse:
    """What each process used of one GPU: SM utilization summed over the driver's samples ("utilization"), or
    bytes of GPU memory held ("memory")."""

    by_pid: dict[int, float]
    method: str


@dataclass
class GpuInfo:
    index: int
    name: str
    unsupported: set[str] = field(default_factory=set)
    library: str = "nvml"  # the reader's: nvml or amdsmi


def read_field(info: GpuInfo, reading: GpuReading, name: str, read: Callable[[], Any],
               not_supported: Callable[[Exception], bool]) -> Any:
    """``read()``, or None: a field the GPU does not give (``not_supported`` says which errors mean that) is
    named in ``info.unsupported`` and not asked again; any other error marks the reading failed."""
    if name in info.unsupported:
        return None
    try:
        return read()
    except Exception as error:
        if not_supported(error):
            info.unsupported.add(name)
        else:
            reading.ok = False
        return None


class LibraryGpuReader:
    """What the NVML and AMD SMI readers share: their GPUs numbered on from ``first_index`` with a handle each,
    the one way a field is read (``read_field``, with the library's ``_not_supported``), and the library's
    shutdown (``_shut_down``) once started."""

    name = ""

    def __init__(self, first_index: int = 0):
        self.first_index = first_index  # the index of this reader's first GPU
        self.gpus: list[GpuInfo] = []
        self._handles: list[Any] = []
        self.driver_version = ""
        self.error = ""
        self.started = False

    def _not_supported(self, error: Exception) -> bool:
        raise NotImplementedError

    def _shut_down(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.started:
            try:
                self._shut_down()
            except Exception:
                pass
            self.started = False

    def _field(self, info: GpuInfo, reading: GpuReading, name: str, call: Callable[..., Any], *args: Any) -> Any:
        return read_field(info, reading, name, lambda: call(*args), self._not_supported)

    def _info(self, index: int) -> GpuInfo:
        return self.gpus[index - self.first_index]

    def _handle(self, index: int) -> Any:
        return self._handles[index - self.first_index]

    def energy_supported(self, index: int) -> bool:
        return "energy" not in self._info(index).unsupported


class GpuReader(Protocol):
    """Per-GPU readings every tick, per-process use once a second; a field a GPU does not give is NaN and
    named in its ``unsupported``."""

    name: str
    first_index: int  # the index of its first GPU (set before ``start``)
    gpus: list[GpuInfo]
    driver_version: str
    error: str  # why there is no GPU, when there is none

    def start(self) -> bool: ...

    def stop(self) -> None: ...

    def read(self) -> list[GpuReading]: ...

    def read_conditions(self) -> dict[int, GpuConditions]:
        """Clocks, fan and throttle reasons by GPU index (once a second)."""
        ...

    def process_use(self, index: int) -> ProcessGpuUse | None: ...

    def process_memory(self, index: int) -> dict[int, float]:
        """Bytes of the GPU's memory each process holds now."""
        ...

    def energy_supported(self, index: int) -> bool: ...


class AllGpus:
    """Every GPU a machine has, of every kind, as one reader."""

    def __init__(self, readers: list[GpuReader]):
        self.readers = readers
        self.first_index = 0
        self.gpus: list[GpuInfo] = []
        self._owner: dict[int, GpuReader] = {}
        self.name = "absent"
        self.driver_version = ""
        self.error = ""

    def start(self) -> bool:
        """Start each reader; the GPUs of those that found some, numbered on from the previous reader's."""
        errors, drivers, names = [], [], []
        for reader in self.readers:
            reader.first_index = self.first_index + len(self.gpus)
            if not reader.start():
                errors.append(reader.error)
                continue
            for info in reader.gpus:
                self._owner[info.index] = reader
                self.gpus.append(info)
            names.append(reader.name)
            if reader.driver_version:
                drivers.append(f"{reader.name} {reader.driver_version}")
        self.name = "+".join(names) or "absent"
        self.driver_version = ", ".join(drivers)
        self.error = "" if self.gpus else "; ".join(errors)
        return bool(self.gpus)

    def stop(self) -> None:
        for reader in self.readers:
            reader.stop()

    def read(self) -> list[GpuReading]:
        readings: list[GpuReading] = []
        for reader in self.readers:
            if reader.gpus:
                readings.extend(reader.read())
        return readings

    def read_conditions(self) -> dict[int, GpuConditions]:
        found: dict[int, GpuConditions] = {}
        for reader in self.readers:
            if reader.gpus:
                found.update(reader.read_conditions())
        return found

    def process_use(self, index: int) -> ProcessGpuUse | None:
        return self._owner[index].process_use(index)

    def process_memory(self, index: int) -> dict[int, float]:
        return self._owner[index].process_memory(index)

    def energy_supported(self, index: int) -> bool:
        return self._owner[index].energy_supported(index)


VENDORS_NOT_READ = {"0x8086": "Intel"}
INTEL_REASON = ("Intel GPUs are not read yet: their utilization and power come from the i915/xe PMU through "
                "perf events (as intel_gpu_top reads them), which needs CAP_PERFMON; their energy shows in RAPL's "
                "package domain")


def unread_gpus(sys_root: str = "/sys") -> list[tuple[str, str]]:
    """(device, vendor) of each display device (``cardN``) of a vendor no reader reads."""
    drm = os.path.join(sys_root, "class", "drm")
    try:
        cards = sorted(name for name in os.listdir(drm) if name.startswith("card") and name[4:].isdigit())
    except OSError:
        return []
    found = []
    for card in cards:
        try:
            with open(os.path.join(drm, card, "device", "vendor"), encoding="ascii") as handle:
                vendor = handle.read().strip().lower()
        except OSError:
            continue
        if vendor in VENDORS_NOT_READ:
            found.append((card, VENDORS_NOT_READ[vendor]))
    return found
