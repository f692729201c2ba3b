"""GPUs: what a GPU reader gives, and the one interface its implementations meet (``NvmlReader``, NVIDIA
through ``pynvml``; ``AmdSmiReader``, AMD through ``amdsmi``); ``AllGpus``, which reads every kind
a machine has as one list, numbered 0, 1, ... NVIDIA's first; and the GPUs no reader reads yet, found by PCI
vendor under ``/sys/class/drm`` (``unread_gpus``). Read on the sampler thread; ``unread_gpus`` by ``tsstats
check`` too.

NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``); every NVML quirk is kept here.

- A missing library or driver means "no GPU", not an error.
- A field a card does not support (NVML_ERROR_NOT_SUPPORTED) is unavailable for that card and is not
  asked again; any other error on one card marks that card failed for the tick and leaves the others.
- Energy: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and newer) where
  supported; otherwise power (mW) integrated over the monotonic interval by the caller.
- Per process: ``nvmlDeviceGetProcessUtilization`` gives SM utilization samples by PID since a timestamp
  (NVML_ERROR_NOT_FOUND: no sample since, which is no use, not an error); where the driver does not give
  them, the GPU memory each process holds (compute and graphics processes), flagged as such.

AMD GPUs through AMD SMI (``amdsmi``, the optional extra ``tsstats[amd]``); every AMD SMI quirk is kept here.

- A missing library, ROCm or driver means "no AMD GPU", not an error (the import itself fails with OSError
  when ``libamd_smi.so`` is missing, AttributeError when ROCm and amdsmi's versions differ).
- A field a GPU does not give (``AMDSMI_STATUS_NOT_SUPPORTED``, or the value ``"N/A"``) is unavailable for
  that GPU and not asked again; any other error marks that GPU failed for the tick and leaves the others.
- Utilization: ``gfx_activity`` of ``amdsmi_get_gpu_activity`` (%). Memory: ``amdsmi_get_gpu_vram_usage``
  (MiB). Power: ``current_socket_power`` of ``amdsmi_get_power_info`` (W), else ``average_socket_power``.
  Temperature: the edge sensor (°C), else the hotspot.
- Energy: ``amdsmi_get_energy_count``: ``energy_accumulator`` (``power`` before amdsmi 6.2.1) times
  ``counter_resolution`` is microjoules since the driver loaded.
- Per process: ``amdsmi_get_gpu_process_list`` gives the VRAM each process holds (``mem``), so the share of a
  GPU is taken by memory, flagged as such (AMD SMI gives no per-process utilization samples).
"""

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


def _import_pynvml() -> Any:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlReader(LibraryGpuReader):
    """Per-GPU readings (``sources.gpu.GpuReader``); ``nvml`` is the pynvml module or a stand-in with the same
    functions."""

    name = "nvml"

    def __init__(self, nvml: Any = None, first_index: int = 0):
        super().__init__(first_index)
        self._nvml = nvml if nvml is not None else _import_pynvml()
        self._process_seen_us: dict[int, int] = {}  # newest process-utilization sample taken, per GPU

    def start(self) -> bool:
        """Initialise NVML; False (with ``error`` set) when there is no library, driver or GPU."""
        nvml = self._nvml
        if nvml is None:
            self.error = "nvidia-ml-py is not installed"
            return False
        try:
            nvml.nvmlInit()
        except Exception as error:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.error = f"NVML unavailable: {error}"
            return False
        self.started = True
        try:
            self.driver_version = _text(nvml.nvmlSystemGetDriverVersion())
        except Exception:
            self.driver_version = ""
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as error:
            self.error = f"NVML cannot count GPUs: {error}"
            return False
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                name = _text(nvml.nvmlDeviceGetName(handle))
            except Exception as error:
                handle, name = None, f"unavailable ({error})"
            self._handles.append(handle)
            self.gpus.append(GpuInfo(index=self.first_index + index, name=name))
        if not self.gpus:
            self.error = "NVML found no GPU"
        return bool(self.gpus)

    def _shut_down(self) -> None:
        self._nvml.nvmlShutdown()

    def _not_supported(self, error: Exception) -> bool:
        code = getattr(self._nvml, "NVML_ERROR_NOT_SUPPORTED", 3)
        return getattr(error, "value", None) == code

    def read(self) -> list[GpuReading]:
        nvml = self._nvml
        readings = []
        for info, handle in zip(self.gpus, self._handles, strict=False):
            reading = GpuReading(index=info.index)
            if handle is None:
                reading.ok = False
                readings.append(reading)
                continue
            utilization = self._field(info, reading, "utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
            if utilization is not None:
                reading.utilization_pct = float(utilization.gpu)
            memory = self._field(info, reading, "memory", nvml.nvmlDeviceGetMemoryInfo, handle)
            if memory is not None:
                reading.memory_used_bytes = float(memory.used)
                reading.memory_total_bytes = float(memory.total)
            power = self._field(info, reading, "power", nvml.nvmlDeviceGetPowerUsage, handle)
            if power is not None:
                reading.power_w = power / 1000.0
            energy = self._field(info, reading, "energy", nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
            if energy is not None:
                reading.energy_counter_j = energy / 1000.0
            temperature = self._field(info, reading, "temperature", nvml.nvmlDeviceGetTemperature, handle,
                                      getattr(nvml, "NVML_TEMPERATURE_GPU", 0))
            if temperature is not None:
                reading.temperature_c = float(temperature)
            readings.append(reading)
        return readings

    def read_conditions(self) -> dict[int, GpuConditions]:
        """SM and memory clocks (MHz), fan speed (%) and the current clocks-event reasons of each GPU."""
        nvml = self._nvml
        found = {}
        for info, handle in zip(self.gpus, self._handles, strict=False):
            if handle is None:
                continue
            reading = GpuReading(index=info.index)  # collects failures; the tick's reading is apart
            sm = self._field(info, reading, "sm_clock", nvml.nvmlDeviceGetClockInfo, handle,
                             getattr(nvml, "NVML_CLOCK_SM", 1))
            memory = self._field(info, reading, "memory_clock", nvml.nvmlDeviceGetClockInfo, handle,
                                 getattr(nvml, "NVML_CLOCK_MEM", 2))
            fan = self._field(info, reading, "fan", nvml.nvmlDeviceGetFanSpeed, handle)
            events = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
                nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
            mask = self._field(info, reading, "throttle_reasons", events, handle) if events else None
            found[info.index] = GpuConditions(*(float(v) if v is not None else NAN for v in (sm, memory, fan, mask)))
        return found

    def process_use(self, index: int) -> ProcessGpuUse | None:
        """Per-process use of GPU ``index`` since the last call; None when NVML gives neither measure."""
        nvml, info, handle = self._nvml, self._info(index), self._handle(index)
        if handle is None:
            return None
        if "process_utilization" not in info.unsupported:
            try:
                samples = nvml.nvmlDeviceGetProcessUtilization(handle, self._process_seen_us.get(index, 0))
            except Exception as error:
                if getattr(error, "value", None) == getattr(nvml, "NVML_ERROR_NOT_FOUND", 6):
                    return ProcessGpuUse({}, "utilization")  # no process ran a kernel since the last call
                if not self._not_supported(error):
                    return None
                info.unsupported.add("process_utilization")
            else:
                by_pid: dict[int, float] = {}
                newest = self._process_seen_us.get(index, 0)
                for sample in samples:
                    by_pid[int(sample.pid)] = by_pid.get(int(sample.pid), 0.0) + float(sample.smUtil)
                    newest = max(newest, int(sample.timeStamp))
                self._process_seen_us[index] = newest
                return ProcessGpuUse(by_pid, "utilization")
        return ProcessGpuUse(self.process_memory(index), "memory")

    def process_memory(self, index: int) -> dict[int, float]:
        """Bytes of GPU ``index``'s memory each process holds (compute and graphics processes)."""
        nvml, handle = self._nvml, self._handle(index)
        if handle is None:
            return {}
        held: dict[int, float] = {}
        for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                processes = getattr(nvml, call)(handle)
            except Exception:
                continue
            for process in processes:
                memory = getattr(process, "usedGpuMemory", None)
                held[int(process.pid)] = held.get(int(process.pid), 0.0) + float(memory or 0)
        return held


AMDSMI_MEMORY_UNIT = 1 << 20  # AMD SMI gives memory in MiB: bytes per its unit (sources may not import core)

NOT_SUPPORTED = 2  # AMDSMI_STATUS_NOT_SUPPORTED


def _import_amdsmi() -> Any:
    try:
        import amdsmi  # type: ignore[import-not-found]
    except (ImportError, OSError, AttributeError):
        return None
    return amdsmi


class Unsupported(Exception):
    """A value the library answered "N/A" for."""


def _number(value: Any) -> float:
    if isinstance(value, str) or value is None:
        raise Unsupported(value)
    return float(value)


class AmdSmiReader(LibraryGpuReader):
    """Per-GPU readings (``sources.gpu.GpuReader``); ``amdsmi`` is the amdsmi module or a stand-in with the
    same functions; indexes start at ``first_index``."""

    name = "amdsmi"

    def __init__(self, amdsmi: Any = None, first_index: int = 0):
        super().__init__(first_index)
        self._amdsmi = amdsmi if amdsmi is not None else _import_amdsmi()

    def start(self) -> bool:
        smi = self._amdsmi
        if smi is None:
            self.error = "amdsmi is not installed (pip install 'tsstats[amd]', with ROCm)"
            return False
        try:
            flags = getattr(getattr(smi, "AmdSmiInitFlags", None), "INIT_AMD_GPUS", None)
            smi.amdsmi_init(flags) if flags is not None else smi.amdsmi_init()
        except Exception as error:  # AmdSmiLibraryException: no driver, no permission
            self.error = f"AMD SMI unavailable: {error}"
            return False
        self.started = True
        try:
            handles = list(smi.amdsmi_get_processor_handles())
        except Exception as error:
            self.error = f"AMD SMI cannot list GPUs: {error}"
            return False
        try:
            self.driver_version = str(smi.amdsmi_get_gpu_driver_info(handles[0]).get("driver_version", ""))
        except Exception:  # no GPU, or a version without driver information
            self.driver_version = ""
        for offset, handle in enumerate(handles):
            try:
                name = str(smi.amdsmi_get_gpu_asic_info(handle).get("market_name") or "AMD GPU")
            except Exception as error:
                name = f"unavailable ({error})"
            self._handles.append(handle)
            self.gpus.append(GpuInfo(index=self.first_index + offset, name=name, library="amdsmi"))
        if not self.gpus:
            self.error = "AMD SMI found no GPU"
        return bool(self.gpus)

    def _shut_down(self) -> None:
        self._amdsmi.amdsmi_shut_down()

    def _not_supported(self, error: Exception) -> bool:
        if isinstance(error, Unsupported):
            return True
        code = getattr(error, "get_error_code", None)
        return callable(code) and code() == NOT_SUPPORTED

    def _power_w(self, handle: Any) -> float:
        info = self._amdsmi.amdsmi_get_power_info(handle)
        for key in ("current_socket_power", "average_socket_power"):
            value = info.get(key)
            if not isinstance(value, str) and value is not None:
                return float(value)
        raise Unsupported(info)

    def _energy_j(self, handle: Any) -> float:
        counts = self._amdsmi.amdsmi_get_energy_count(handle)
        accumulated = counts.get("energy_accumulator", counts.get("power"))
        return _number(accumulated) * _number(counts.get("counter_resolution")) / 1e6

    def _temperature_c(self, handle: Any) -> float:
        smi = self._amdsmi
        kinds, metric = smi.AmdSmiTemperatureType, smi.AmdSmiTemperatureMetric.CURRENT
        try:
            return _number(smi.amdsmi_get_temp_metric(handle, kinds.EDGE, metric))
        except Exception:  # no edge sensor on some data-centre GPUs: the hotspot
            return _number(smi.amdsmi_get_temp_metric(handle, kinds.HOTSPOT, metric))

    def read(self) -> list[GpuReading]:
        smi = self._amdsmi
        readings = []
        for info, handle in zip(self.gpus, self._handles, strict=False):
            reading = GpuReading(index=info.index)
            activity = self._field(info, reading, "utilization",
                                   lambda h=handle: _number(smi.amdsmi_get_gpu_activity(h).get("gfx_activity")))
            if activity is not None:
                reading.utilization_pct = activity
            vram = self._field(info, reading, "memory", lambda h=handle: _number(
                smi.amdsmi_get_gpu_vram_usage(h).get("vram_used")))
            if vram is not None:
                reading.memory_used_bytes = vram * AMDSMI_MEMORY_UNIT
            power = self._field(info, reading, "power", self._power_w, handle)
            if power is not None:
                reading.power_w = power
            energy = self._field(info, reading, "energy", self._energy_j, handle)
            if energy is not None:
                reading.energy_counter_j = energy
            temperature = self._field(info, reading, "temperature", self._temperature_c, handle)
            if temperature is not None:
                reading.temperature_c = temperature
            readings.append(reading)
        return readings

    def read_conditions(self) -> dict[int, GpuConditions]:
        """The GFX and memory clocks (MHz) of each GPU; AMD SMI gives no fan share nor throttle reasons in
        NVML's terms, so those stay unknown."""
        smi = self._amdsmi
        kinds = getattr(smi, "AmdSmiClkType", None)
        found = {}
        for info, handle in zip(self.gpus, self._handles, strict=False):
            reading = GpuReading(index=info.index)
            clocks = [self._field(info, reading, name, lambda h=handle, k=kind: _number(
                smi.amdsmi_get_clock_info(h, k).get("clk"))) if kinds is not None else None
                for name, kind in (("sm_clock", getattr(kinds, "GFX", 0)), ("memory_clock", getattr(kinds, "MEM", 1)))]
            found[info.index] = GpuConditions(*(value if value is not None else float("nan") for value in clocks))
        return found

    def process_use(self, index: int) -> ProcessGpuUse | None:
        """The VRAM each process holds on GPU ``index``; None when AMD SMI cannot say."""
        held = self.process_memory(index)
        return ProcessGpuUse(held, "memory") if "processes" not in self._info(index).unsupported else None

    def process_memory(self, index: int) -> dict[int, float]:
        """Bytes of VRAM each process holds on GPU ``index`` (AMD SMI's ``mem``)."""
        info, handle = self._info(index), self._handle(index)
        if "processes" in info.unsupported:
            return {}
        try:
            processes = self._amdsmi.amdsmi_get_gpu_process_list(handle)
        except Exception as error:
            if self._not_supported(error):
                info.unsupported.add("processes")
            return {}
        held: dict[int, float] = {}
        for process in processes:
            if not isinstance(process, dict):  # amdsmi before 6.1 lists handles, not the processes' info
                try:
                    process = self._amdsmi.amdsmi_get_gpu_process_info(handle, process)
                except Exception:
                    continue
            pid, memory = process.get("pid"), process.get("mem")
            if isinstance(pid, int) and isinstance(memory, (int, float)):
                held[pid] = held.get(pid, 0.0) + float(memory)
        return held
