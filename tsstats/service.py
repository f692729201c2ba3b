"""Assembly: settings -> readers, store, sampler and app; and the description of what can be measured."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from . import comparisons as cmp
from .energy import EnergySums, energy_between
from .exposition import Scrape
from .grid import GridIntensity, resolve_grid
from .gridseries import GridRow, GridRowsError, GridSeries, parse_csv, replace_rows
from .meter import Methods, PowerMeter, current_methods
from .publishing import Snapshot
from .reading import Clocks, Sources
from .request_stats import RequestStats
from .rollups import TierState
from .sampler import Sampler
from .sources.host import open_host_reader
from .sources.latency import ConnectProbe, KernelRttReader, LatencyMonitor
from .sources.nvml import NvmlReader
from .sources.power import RAPL_FIX, RaplReader, count_dimms, match_tdp
from .store import Store

log = logging.getLogger("tsstats")


class StartupError(RuntimeError):
    """The service cannot start with these settings; the message says why and what to do."""


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(settings) -> None:
    if not is_loopback_host(settings.host) and not settings.token and not settings.allow_remote:
        raise StartupError(
            f"refusing to listen on {settings.host} without a token: anyone who can reach it could read and "
            f"change this service. Set TSSTATS_TOKEN (or --token), or pass --allow-remote to accept that.")


@dataclass
class Readers:
    """The host, GPU and power readers with the roots and modules from settings (or passed in)."""

    host: Any  # sources.host.HostReader (procfs) or sources.psutil_host.PsutilHostReader
    logical_cpus: int
    gpu: NvmlReader
    meter: PowerMeter
    dimms_known: bool


def open_readers(settings, nvml: Any = None, sys_root: str = "/sys") -> Readers:
    host = open_host_reader(settings.proc_root)
    logical_cpus = host.read_fast().logical_cpus
    gpu = NvmlReader(nvml)
    gpu.start()
    rapl = RaplReader(settings.powercap_root).discover()
    tdp = match_tdp(host.cpu_model(), logical_cpus)
    dimms = settings.dimm_count if settings.dimm_count is not None else count_dimms(sys_root)
    meter = PowerMeter(rapl, tdp, dimms, has_gpu=bool(gpu.gpus))
    return Readers(host, logical_cpus, gpu, meter, dimms is not None)


def build_sources(settings, nvml: Any = None, sys_root: str = "/sys") -> Sources:
    """The readers this machine offers, ready for the sampler; ``close_sources`` closes them."""
    readers = open_readers(settings, nvml, sys_root)
    if not readers.gpu.gpus:
        log.info("no GPU readings: %s", readers.gpu.error)
    unreadable = readers.meter.rapl.unreadable
    if unreadable:
        log.warning("RAPL counters %s cannot be read (%s). %s", ", ".join(d.name for d in unreadable),
                    unreadable[0].error, RAPL_FIX)
    reader = ConnectProbe(settings.latency_targets) if settings.latency_targets else KernelRttReader()
    return Sources(host=readers.host, gpu=readers.gpu, meter=readers.meter, latency=LatencyMonitor(reader),
                   dimms_known=readers.dimms_known)


def close_sources(sources: Sources) -> None:
    sources.latency.stop()
    sources.gpu.stop()
    sources.host.close()
    sources.meter.rapl.close()


def load_grid(settings) -> GridIntensity:
    """The region's yearly average; the rows over time are added once the database is open."""
    try:
        return GridIntensity(resolve_grid(settings.grid_region, settings.grid_intensity, settings.renewable_share))
    except ValueError as error:
        raise StartupError(str(error)) from None


def load_grid_file(settings) -> list[GridRow] | None:
    """The rows of ``grid_intensity_file``, checked at start-up (a bad row is refused with its line number)."""
    path = settings.grid_intensity_file
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise StartupError(f"grid_intensity_file {path}: cannot read it: {error}") from None
    try:
        return parse_csv(text, f"grid_intensity_file {path}")
    except GridRowsError as error:
        raise StartupError(str(error)) from None


def install_grid_rows(store: Store, grid: GridIntensity, file_rows: list[GridRow] | None) -> None:
    """The file's rows replace the file rows stored before (none without a file); the feed's stay."""
    def write(con):
        con.execute("DELETE FROM grid_intensity WHERE source = 'file'")
        if file_rows:
            replace_rows(con, file_rows, "file")
    store.transaction(write)
    grid.series = GridSeries.from_table(store.writer)


@dataclass(frozen=True)
class HealthReport:
    last_sample_age_s: float | None
    stalled: bool
    database_path: str
    writable: bool
    last_error: str
    flushes: int
    reopens: int
    samples_held: int  # taken, not yet written
    samples_lost: int
    snapshot: Snapshot | None
    snapshot_age_s: float | None


class ServiceView:
    """What the HTTP server sees of the service: the stats, health, the grid, the GPUs, the tiers, energy
    over an interval, and the one write path; nothing of the sampler's insides."""

    def __init__(self, settings, store: Store, sampler: Sampler, requests: RequestStats):
        self.settings = settings
        self.requests = requests
        self.grid: GridIntensity = sampler.grid
        self._store = store
        self._sampler = sampler
        self.database_directory = os.path.dirname(os.path.abspath(store.path))
        self._publisher = sampler.publisher
        self.monotonic = sampler.clocks.monotonic
        self._run_clock = cmp.RunClock(sampler.clocks.monotonic)

    # stats
    @property
    def snapshot(self) -> Snapshot | None:
        return self._publisher.snapshot

    @property
    def snapshot_expires(self) -> float:
        """Monotonic time after which the snapshot is due for a rebuild."""
        return self._publisher.expires

    def request_snapshot(self) -> Future:
        return self._publisher.request()

    def scrape(self, snapshot: Snapshot) -> Scrape:
        sampler = self._sampler
        return Scrape(figures=snapshot.figures, totals=sampler.ledger.view().totals, pue=self.settings.pue,
                      requests=self.requests, samples_lost=sampler.flusher.health.lost_rows,
                      last_sample_age_s=self.health().last_sample_age_s)

    def health(self) -> HealthReport:
        sampler, now = self._sampler, self.monotonic()
        flush, snapshot = sampler.flusher.health, self._publisher.snapshot
        last = sampler.last_tick_mono
        return HealthReport(
            last_sample_age_s=None if last is None else max(now - last, 0.0), stalled=sampler.stalled,
            database_path=self._store.path, writable=flush.ok and self._store.failure is None,
            last_error=self._store.failure or flush.error, flushes=flush.flushes, reopens=self._store.reopens,
            samples_held=len(sampler.ring.pending()), samples_lost=flush.lost_rows, snapshot=snapshot,
            snapshot_age_s=None if snapshot is None else now - snapshot.built_mono)

    # what is measured
    def gpus_present(self) -> set[int]:
        return {info.index for info in self._sampler.sources.gpu.gpus}

    def current_methods(self) -> Methods:
        sources = self._sampler.sources
        return current_methods(sources.meter, sources.gpu)

    def check(self) -> dict[str, Any]:
        """Why a figure may read "not measured" here, and what would measure more, from the open readers."""
        sources, settings = self._sampler.sources, self.settings
        gpu_reason = sources.gpu.error or "no GPU answered"
        reasons = {
            "gpuUsage": f"no NVIDIA GPU readings ({gpu_reason})",
            "networkLatency": "no round trip in the last 30 s: no established TCP connection to another host"
                              + ("" if settings.latency_targets else " (set latency_targets to probe one)"),
            "responseTime": "no comparison finished within the activity window reported latencyMs",
            "errorRate": "no comparison completed or failed within the activity window",
            "totalCarbonSaved": "no baseline declared: set baseline_power_w or baseline_intensity",
        }
        fixes = hardware_fixes(settings, sources.meter.rapl, sources.gpu, sources.dimms_known)
        methods = self.current_methods()
        return {"reasons": reasons, "fixes": fixes, "methods": methods.as_dict(), "system": sources.host.name}

    def tiers(self) -> TierState:
        return self._sampler.rollups.state

    # reads and writes
    async def read(self, work, *args):
        return await self._store.read(work, *args)

    def energy_between(self, con, from_ms: float, to_ms: float) -> EnergySums:
        """Energy over [from_ms, to_ms) from stored rows and those still in memory (a read, any thread)."""
        return energy_between(con, self._sampler.pending_columns(), from_ms, to_ms, self.grid)

    def write(self, work) -> Future:
        """Run ``work(connection)`` in one transaction on the writer thread; resolves once committed."""
        return self._store.write(work)

    def finish_update(self, con, comparison_id: int, update: cmp.ComparisonUpdate, now_ms: int):
        """A comparison's update with its energy (as a write's work: on the writer thread)."""
        return cmp.finish_update(con, comparison_id, update, now_ms, self._sampler.pending_columns(),
                                 self.settings.pue, self.grid, self._run_clock, self._sampler.attributor)

    def insert_comparison(self, con, new: cmp.NewComparison, now_ms: int):
        """A new comparison (as a write's work); one created running with ``pids`` is followed at once."""
        record = cmp.insert_comparison(con, new, now_ms)
        if new.status == "running":
            self._run_clock.started(record["id"])
            if new.pids:
                self._sampler.attributor.track(record["id"], new.pids)
        return record

    def feed_grid(self, rows: list[GridRow]) -> Future:
        """Store a live feed's rows (they replace what they overlap), then carry on with them: the series in force
        and the report window's carbon are reloaded once committed."""
        sampler = self._sampler

        def feed(con) -> GridSeries | None:
            replace_rows(con, rows, "feed")
            return GridSeries.from_table(con)

        def in_force(con, series: GridSeries | None) -> None:
            self.grid.series = series
            sampler.ledger.reload_window(con, sampler.clocks.wall() * 1000.0)
            sampler.publisher.invalidate()

        return self._store.write(feed, then=in_force)

    def process_exists(self, pid: int) -> bool:
        return self._sampler.attributor.exists(pid)


@dataclass
class Service:
    settings: Any
    store: Store
    sources: Sources
    sampler: Sampler
    requests: RequestStats
    unwritten: int = 0  # samples the final flush could not write

    def view(self) -> ServiceView:
        return ServiceView(self.settings, self.store, self.sampler, self.requests)

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> int:
        """Stop sampling, flush and checkpoint, close the readers this service opened and the database.
        Returns how many samples could not be written (again on a second call: 0 after a clean stop)."""
        if self.store.closed:
            return self.unwritten
        try:
            self.unwritten = self.sampler.stop()
        finally:
            close_sources(self.sources)
            self.store.close()
        return self.unwritten


def open_service(settings, nvml: Any = None, clocks: Clocks | None = None) -> Service:
    """Open the database and the readers and build the sampler; raises StoreLocked/StoreError/StartupError."""
    check_exposure(settings)
    grid = load_grid(settings)
    file_rows = load_grid_file(settings)
    wake = threading.Event()  # the store rings it when a write is queued; the sampler thread answers
    store = Store(settings.db, memory_limit=settings.db_memory_limit, notify=wake.set)
    requests = RequestStats()
    try:
        install_grid_rows(store, grid, file_rows)
        sources = build_sources(settings, nvml=nvml)
        try:
            sampler = Sampler(settings, store, sources, grid, requests, clocks=clocks, wake=wake)
        except Exception:
            close_sources(sources)
            raise
    except Exception:
        store.close()
        raise
    return Service(settings=settings, store=store, sources=sources, sampler=sampler, requests=requests)


def hardware_fixes(settings, rapl: RaplReader, gpu: NvmlReader, dimms_known: bool) -> list[str]:
    """What would let this machine measure more, for `tsstats check` and the page (GET /api/check)."""
    fixes = []
    if rapl.unreadable:
        fixes.append(RAPL_FIX)
    if not rapl.packages and not rapl.unreadable:
        fixes.append(f"no RAPL package domain under {settings.powercap_root}: CPU power is modelled from the "
                     f"TDP table. In a container, mount the host's /sys/class/powercap and set powercap_root.")
    if not gpu.gpus:
        fixes.append(f"no NVIDIA GPU readings ({gpu.error}); GPU figures read 0. With an NVIDIA GPU, install "
                     f"its driver; nvidia-ml-py is installed with tsstats.")
    for info in gpu.gpus:
        if "energy" in info.unsupported:
            fixes.append(f"GPU {info.index} has no NVML energy counter (older than Volta): its power is "
                         f"integrated over time instead.")
    if not dimms_known:
        fixes.append("the number of memory modules is unknown (no EDAC data): memory power assumes 2 DIMMs; "
                     "set dimm_count to the real number.")
    return fixes


def describe_machine(settings, nvml: Any = None, sys_root: str = "/sys") -> dict[str, Any]:
    """What this machine can measure and how, with the fix for each thing that is missing."""
    readers = open_readers(settings, nvml, sys_root)
    meter, gpu, rapl, tdp = readers.meter, readers.gpu, readers.meter.rapl, readers.meter.tdp
    has_gpu = bool(gpu.gpus)
    gpus = []
    if has_gpu:
        readings = gpu.read()
        for info, gpu_reading in zip(gpu.gpus, readings, strict=False):
            gpus.append({"index": info.index, "name": info.name, "ok": gpu_reading.ok,
                         "energyCounter": "energy" not in info.unsupported,
                         "power": "power" not in info.unsupported,
                         "unsupported": sorted(info.unsupported)})
    gpu.stop()
    rapl.close()
    readers.host.close()
    fixes = hardware_fixes(settings, rapl, gpu, readers.dimms_known)
    try:
        grid = load_grid(settings).meta()
    except StartupError as error:
        grid = {"error": str(error)}
        fixes.append(str(error))
    latency = KernelRttReader()
    return {
        "system": readers.host.name,
        "cpu": {"model": tdp.model, "logicalCpus": readers.logical_cpus, "tdpW": tdp.tdp_w,
                "tdpMatch": tdp.matched, "tdpRule": tdp.rule},
        "rapl": {
            "root": settings.powercap_root,
            "packages": [d.name for d in rapl.packages],
            "dram": [d.name for d in rapl.drams],
            "unreadable": [{"domain": d.name, "error": d.error} for d in rapl.unreadable],
            "cpuMethod": meter.cpu_method,
            "memoryMethod": meter.memory_method,
        },
        "memory": {"dimms": meter.dimms if readers.dimms_known else None, "modelW": meter.memory_model_w},
        "nvml": {"available": has_gpu, "driver": gpu.driver_version, "error": gpu.error or None, "gpus": gpus},
        "networkLatency": {"kernelRtt": latency.available(), "targets": list(settings.latency_targets)},
        "grid": grid,
        "database": settings.db,
        "databaseExists": os.path.exists(settings.db),
        "fixes": fixes,
    }
