"""The CPU's temperatures, clocks and thermal throttle counters from sysfs (``sys_root`` is passed in).

- Temperatures: hwmon chips of the CPU (``coretemp``, ``k10temp``, ``zenpower``, ``cpu_thermal``), as
  ``psutil.sensors_temperatures`` reads them: the package is a ``Package id N``, ``Tctl`` or ``Tdie`` sensor
  (else the chip's hottest), the hottest core a ``Core N`` or ``Tccd N`` one; without hwmon, the
  ``x86_pkg_temp`` or ``cpu*-thermal`` thermal zone gives the package.
- Clocks: each CPU's ``cpufreq/scaling_cur_freq`` against its ``cpuinfo_max_freq`` (kHz).
- Throttling: ``thermal_throttle/core_throttle_count`` summed over CPUs, plus each package's
  ``package_throttle_count`` once (every CPU of a package shows the same one).

Where is found once, when the reader is built; a file that later fails reads NaN for its figure.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from tsstats.sources.files import OpenFiles

CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal")
PACKAGE_LABELS = ("Package id", "Tctl", "Tdie")
CORE_LABELS = ("Core ", "Tccd")
CPU_ZONES = ("x86_pkg_temp", "cpu-thermal", "cpu_thermal", "soc-thermal", "soc_thermal")


@dataclass(frozen=True)
class CpuSensorReading:
    package_c: float  # NaN where unknown
    hottest_core_c: float
    freq_mean_mhz: float
    freq_min_mhz: float
    freq_max_mhz: float  # the highest of the CPUs' maximum clocks
    throttle_count: float  # core + package thermal throttle events since boot


@dataclass(frozen=True)
class SensorFiles:
    """What was found under ``sys_root``, relative to it."""

    package: tuple[str, ...]  # temperature inputs (millidegrees)
    cores: tuple[str, ...]
    cur_freq: tuple[str, ...]
    max_freq_khz: float  # NaN where not known
    throttle: tuple[str, ...]  # counters to sum

    @property
    def sources(self) -> dict[str, str]:
        """Each figure's source, or '' where this machine gives none."""
        return {"cpuTemperature": "hwmon/thermal" if self.package else "",
                "cpuFrequency": "cpufreq" if self.cur_freq else "",
                "cpuThrottle": "thermal_throttle" if self.throttle else ""}


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def find_temperatures(sys_root: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(package inputs, core inputs) relative to ``sys_root``."""
    package: list[str] = []
    cores: list[str] = []
    hwmon = os.path.join("class", "hwmon")
    for chip in _listdir(os.path.join(sys_root, hwmon)):
        chip_dir = os.path.join(hwmon, chip)
        if _text(os.path.join(sys_root, chip_dir, "name")) not in CPU_CHIPS:
            continue
        inputs = [name for name in _listdir(os.path.join(sys_root, chip_dir))
                  if name.startswith("temp") and name.endswith("_input")]
        chip_package: list[str] = []
        for name in inputs:
            label = _text(os.path.join(sys_root, chip_dir, name.replace("_input", "_label")))
            relative = os.path.join(chip_dir, name)
            if label.startswith(PACKAGE_LABELS):
                chip_package.append(relative)
            elif label.startswith(CORE_LABELS):
                cores.append(relative)
        package += chip_package or [os.path.join(chip_dir, name) for name in inputs]
    if not package:
        thermal = os.path.join("class", "thermal")
        for zone in _listdir(os.path.join(sys_root, thermal)):
            if zone.startswith("thermal_zone") and \
                    _text(os.path.join(sys_root, thermal, zone, "type")) in CPU_ZONES:
                package.append(os.path.join(thermal, zone, "temp"))
    return tuple(package), tuple(cores)


def find_sensor_files(sys_root: str) -> SensorFiles:
    package, cores = find_temperatures(sys_root)
    cpu_dir = os.path.join("devices", "system", "cpu")
    cpus = [name for name in _listdir(os.path.join(sys_root, cpu_dir)) if name[3:].isdigit() and
            name.startswith("cpu")]
    cur_freq: list[str] = []
    max_khz = math.nan
    throttle: list[str] = []
    packages_seen: set[str] = set()
    for cpu in cpus:
        freq = os.path.join(cpu_dir, cpu, "cpufreq")
        if os.path.exists(os.path.join(sys_root, freq, "scaling_cur_freq")):
            cur_freq.append(os.path.join(freq, "scaling_cur_freq"))
            top = _text(os.path.join(sys_root, freq, "cpuinfo_max_freq"))
            if top.isdigit():
                max_khz = max(float(top), max_khz) if math.isfinite(max_khz) else float(top)
        counters = os.path.join(cpu_dir, cpu, "thermal_throttle")
        if os.path.exists(os.path.join(sys_root, counters, "core_throttle_count")):
            throttle.append(os.path.join(counters, "core_throttle_count"))
            package_id = _text(os.path.join(sys_root, cpu_dir, cpu, "topology", "physical_package_id"))
            if package_id not in packages_seen and \
                    os.path.exists(os.path.join(sys_root, counters, "package_throttle_count")):
                packages_seen.add(package_id)
                throttle.append(os.path.join(counters, "package_throttle_count"))
    return SensorFiles(package=package, cores=cores, cur_freq=tuple(cur_freq), max_freq_khz=max_khz,
                       throttle=tuple(throttle))


class CpuSensors:
    """Reads the files ``find_sensor_files`` found, once a second (the sampler's slow step)."""

    def __init__(self, sys_root: str = "/sys", found: SensorFiles | None = None):
        self.found = found if found is not None else find_sensor_files(sys_root)
        self._files = OpenFiles(sys_root)

    def _values(self, paths: tuple[str, ...], scale: float) -> list[float]:
        values = []
        for path in paths:
            try:
                values.append(float(self._files.read(path).strip()) * scale)
            except (OSError, ValueError):
                continue
        return values

    def read(self) -> CpuSensorReading:
        found = self.found
        package = self._values(found.package, 0.001)
        cores = self._values(found.cores, 0.001)
        freqs = self._values(found.cur_freq, 0.001)
        throttles = self._values(found.throttle, 1.0)
        nan = math.nan
        return CpuSensorReading(
            package_c=max(package) if package else nan, hottest_core_c=max(cores) if cores else nan,
            freq_mean_mhz=sum(freqs) / len(freqs) if freqs else nan, freq_min_mhz=min(freqs) if freqs else nan,
            freq_max_mhz=found.max_freq_khz / 1000.0,
            throttle_count=sum(throttles) if len(throttles) == len(found.throttle) and throttles else nan)

    def close(self) -> None:
        self._files.close()
