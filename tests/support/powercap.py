"""A powercap tree of RAPL domains whose counters the test sets, for machines without readable RAPL."""

from __future__ import annotations

import os
from pathlib import Path


class FakePowercap:
    """A powercap tree: package domains with core/uncore/dram subdomains, counters set by the test."""

    def __init__(self, root: Path, packages: int = 2, max_range_uj: int = 262143328850, dram: bool = True):
        self.root = root
        self.max_range_uj = max_range_uj
        self.domains: dict[str, Path] = {}
        for package in range(packages):
            self._domain(f"intel-rapl:{package}", f"package-{package}")
            self._domain(f"intel-rapl:{package}:0", "core")
            self._domain(f"intel-rapl:{package}:1", "uncore")
            if dram:
                self._domain(f"intel-rapl:{package}:2", "dram")
        self._domain("intel-rapl:9", "psys")
        self._domain("intel-rapl-mmio:0", "package-0")

    def _domain(self, entry: str, name: str) -> None:
        path = self.root / entry
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{self.max_range_uj}\n")
        (path / "energy_uj").write_text("0\n")
        self.domains[entry] = path

    def set(self, entry: str, microjoules: int) -> None:
        """Write the counter in one write at offset 0, as sysfs answers a read whole: truncating first (as
        ``write_text`` does) would let the sampler's read in between see an empty file."""
        data = f"{microjoules % self.max_range_uj}\n".encode()
        fd = os.open(self.domains[entry] / "energy_uj", os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))  # shorter only after a wrap
        finally:
            os.close(fd)

    def get(self, entry: str) -> int:
        return int((self.domains[entry] / "energy_uj").read_text())

    def make_unreadable(self, entry: str) -> None:
        """A counter that cannot be read, as for a non-root user since 2020 (a directory raises on open)."""
        path = self.domains[entry] / "energy_uj"
        path.unlink()
        path.mkdir()
