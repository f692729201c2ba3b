"""A powercap tree of RAPL domains whose counters the test sets, for machines without readable RAPL."""

from __future__ import annotations

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
        (self.domains[entry] / "energy_uj").write_text(f"{microjoules % self.max_range_uj}\n")

    def get(self, entry: str) -> int:
        return int((self.domains[entry] / "energy_uj").read_text())

    def make_unreadable(self, entry: str) -> None:
        """A counter that cannot be read, as for a non-root user since 2020 (a directory raises on open)."""
        path = self.domains[entry] / "energy_uj"
        path.unlink()
        path.mkdir()
