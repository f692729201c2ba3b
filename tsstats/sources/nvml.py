"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``); every NVML quirk is kept here.

- A missing library or driver means "no GPU", not an error.
- A field a card does not support (NVML_ERROR_NOT_SUPPORTED) is unavailable for that card and is not
  asked again; any other error on one card marks that card failed for the tick and leaves the others.
- Energy: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and newer) where
  supported; otherwise power (mW) integrated over the monotonic interval by the caller.
- Per process: ``nvmlDeviceGetProcessUtilization`` gives SM utilization samples by PID since a timestamp
  (NVML_ERROR_NOT_FOUND: no sample since, which is no use, not an error); where the driver does not give
  them, the GPU memory each process holds (compute and graphics processes), flagged as such.
"""

from __future__ import annotations

from typing import Any

from tsstats.sources.gpu import NAN, GpuConditions, GpuInfo, GpuReading, LibraryGpuReader, ProcessGpuUse


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
