"""AMD GPUs through AMD SMI (``amdsmi``, the optional extra ``tsstats[amd]``); every AMD SMI quirk is kept here.

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

from typing import Any

from tsstats.sources.gpu import GpuConditions, GpuInfo, GpuReading, LibraryGpuReader, ProcessGpuUse

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
