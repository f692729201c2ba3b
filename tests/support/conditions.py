"""Canned sysfs and procfs files for the conditions' readers: hwmon chips, thermal zones, cpufreq, throttle
counters, block devices, pressure, vmstat and diskstats, written where a test asks."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def add_coretemp(sys_root: Path, package_mc: int, cores_mc: list[int], chip: str = "hwmon1") -> Path:
    """An Intel ``coretemp`` chip: ``Package id 0`` and one ``Core N`` input per core (millidegrees)."""
    base = sys_root / "class" / "hwmon" / chip
    write(base / "name", "coretemp\n")
    write(base / "temp1_label", "Package id 0\n")
    write(base / "temp1_input", f"{package_mc}\n")
    for i, value in enumerate(cores_mc, start=2):
        write(base / f"temp{i}_label", f"Core {i - 2}\n")
        write(base / f"temp{i}_input", f"{value}\n")
    return base


def add_other_chip(sys_root: Path, name: str = "nvme", value_mc: int = 99_000) -> None:
    """A chip that is not the CPU's (a disk's), whose heat must not count."""
    base = sys_root / "class" / "hwmon" / "hwmon0"
    write(base / "name", f"{name}\n")
    write(base / "temp1_input", f"{value_mc}\n")


def add_thermal_zone(sys_root: Path, kind: str, value_mc: int, zone: int = 0) -> None:
    base = sys_root / "class" / "thermal" / f"thermal_zone{zone}"
    write(base / "type", f"{kind}\n")
    write(base / "temp", f"{value_mc}\n")


def add_cpus(sys_root: Path, cur_khz: list[int], max_khz: int, core_throttles: list[int] | None = None,
             package_throttle: int | None = None, packages: list[int] | None = None) -> None:
    """CPUs with cpufreq, and thermal throttle counters where given (the package counter repeated under
    each CPU of a package, as the kernel shows it)."""
    for i, khz in enumerate(cur_khz):
        base = sys_root / "devices" / "system" / "cpu" / f"cpu{i}"
        write(base / "cpufreq" / "scaling_cur_freq", f"{khz}\n")
        write(base / "cpufreq" / "cpuinfo_max_freq", f"{max_khz}\n")
        write(base / "topology" / "physical_package_id", f"{(packages or [0] * len(cur_khz))[i]}\n")
        if core_throttles is not None:
            write(base / "thermal_throttle" / "core_throttle_count", f"{core_throttles[i]}\n")
            write(base / "thermal_throttle" / "package_throttle_count", f"{package_throttle or 0}\n")


def add_block(sys_root: Path, name: str, physical: bool) -> None:
    base = sys_root / "block" / name
    base.mkdir(parents=True, exist_ok=True)
    if physical:
        (base / "device").mkdir(exist_ok=True)


def diskstats_line(name: str, reads: int, read_sectors: int, writes: int, write_sectors: int,
                   major: int = 8, minor: int = 0) -> str:
    return f" {major} {minor} {name} {reads} 0 {read_sectors} 0 {writes} 0 {write_sectors} 0 0 0 0 0 0 0 0 0 0\n"


def write_proc_conditions(proc_root: Path, *, swap_total_kb: int = 1024, swap_free_kb: int = 1024,
                          pswpin: int = 0, pswpout: int = 0, pressure: tuple[float, float, float] = (1.5, 2.5, 3.5),
                          disks: str = "") -> None:
    """meminfo with swap, vmstat, pressure and diskstats under ``proc_root`` (stat is written apart)."""
    write(proc_root / "meminfo", "MemTotal: 1000 kB\nMemFree: 200 kB\nMemAvailable: 400 kB\nCached: 100 kB\n"
                                 f"SwapTotal: {swap_total_kb} kB\nSwapFree: {swap_free_kb} kB\n")
    write(proc_root / "vmstat", f"nr_free_pages 10\npswpin {pswpin}\npswpout {pswpout}\npgfault 5\n")
    for resource, value in zip(("cpu", "memory", "io"), pressure, strict=True):
        write(proc_root / "pressure" / resource,
              f"some avg10={value:.2f} avg60=0.00 avg300=0.00 total=1\n"
              "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    write(proc_root / "diskstats", disks)
