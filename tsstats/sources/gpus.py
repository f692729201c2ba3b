"""Every GPU a machine has, of every kind, as one reader (``sources.gpu.GpuReader``): NVIDIA's through NVML and
AMD's through AMD SMI, numbered 0, 1, ... in that order."""

from __future__ import annotations

from tsstats.sources.gpu import GpuConditions, GpuInfo, GpuReader, GpuReading, ProcessGpuUse


class AllGpus:
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
