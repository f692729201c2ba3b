"""The one module that builds things: settings -> readers, store, the sampler's rooms, the comparisons' owner,
the view and the app. Every other module receives what it works with; only this one chooses implementations
(procfs or psutil, kernel RTT or connect probes) and wires them together. Runs on the main thread, at start-up
and shut-down."""

from __future__ import annotations

import logging
import os
import resource
import threading
from dataclasses import dataclass, field
from typing import Any

from sanic import Sanic

from tsstats import __version__
from tsstats.api.app import create_app
from tsstats.api.connections import (
    BODY_BUDGET_BYTES,
    BodyBudget,
    ConnectionLimits,
    connection_cap,
    guarded_protocol,
    raise_open_files_limit,
)
from tsstats.api.dashboard_json import dashboard_body
from tsstats.api.exposure import HostCheck, allowed_host_names, check_exposure, tls_context
from tsstats.api.otlp import OtlpConfig, OtlpPush, require_sdk
from tsstats.api.router import RequestStats
from tsstats.api.view import ServiceView
from tsstats.comparisons.attributor import Attributor
from tsstats.comparisons.lifecycle import ComparisonLife, Machine, RunClock, RunPolicy
from tsstats.comparisons.stats import ComparisonTally
from tsstats.core.settings import Settings, StartupError, default_of
from tsstats.core.units import MS_PER_S
from tsstats.figures.grid import GridIntensity, GridRow, GridRowsError, parse_csv, resolve_grid
from tsstats.figures.moment import Accounting
from tsstats.sampling.clocks import Clocks, ClockWatch, StepMover
from tsstats.sampling.energy import EnergyLedger, GridFeed, MachineEnergy, install_file_rows
from tsstats.sampling.flushing import Availability, Flusher
from tsstats.sampling.footprint import Footprint
from tsstats.sampling.meter import PowerMeter, current_methods
from tsstats.sampling.publishing import CurrentFigures, FigureWindows, StatsPublisher
from tsstats.sampling.reading import Sources, TickReader
from tsstats.sampling.ring import Ring
from tsstats.sampling.sampler import Demand, Sampler, SamplerParts, Schedule, ring_capacity
from tsstats.sources.conditions import ConditionsReader, ProcfsConditions, PsutilConditions
from tsstats.sources.gpu import AllGpus, AmdSmiReader, GpuReader, NvmlReader
from tsstats.sources.host import HostReader, ProcfsHostReader, PsutilHostReader
from tsstats.sources.latency import ConnectProbe, KernelRttReader, LatencyMonitor
from tsstats.sources.power import RAPL_FIX, RaplReader, count_dimms, match_tdp
from tsstats.sources.processes import ProcessTrees, ProcfsTrees, PsutilTrees
from tsstats.storage.export import remove_leftovers
from tsstats.storage.retention import Retention, RetentionPolicy
from tsstats.storage.rollups import Rollups
from tsstats.storage.rows import GPU_ROW, HOST_ROW
from tsstats.storage.store import Store

log = logging.getLogger("tsstats")


def connection_protocol(settings: Settings) -> type:
    """The HTTP protocol the server runs with the connection bounds of the settings, within the open files this
    process may have (its soft limit raised to the hard one first)."""
    open_files = raise_open_files_limit(resource)
    cap = connection_cap(settings.max_connections, open_files)
    if cap < settings.max_connections:
        log.warning("max_connections is %d, but %d files may be open: at most %d connections are served",
                    settings.max_connections, open_files, cap)
    return guarded_protocol(ConnectionLimits(cap, settings.request_timeout), BodyBudget(BODY_BUDGET_BYTES))


# -- readers ---------------------------------------------------------------------------------------------
def has_procfs(proc_root: str) -> bool:
    return os.path.exists(os.path.join(proc_root, "stat"))


def open_host_reader(proc_root: str = "/proc", psutil_module: Any = None) -> HostReader:
    """The procfs reader where ``proc_root`` has ``stat`` (Linux), else the psutil reader."""
    if has_procfs(proc_root):
        return ProcfsHostReader(proc_root)
    return PsutilHostReader(psutil_module)


def open_trees(proc_root: str = "/proc") -> ProcessTrees:
    """The procfs reader of process trees where ``proc_root`` is a procfs, else psutil's."""
    return ProcfsTrees(proc_root) if has_procfs(proc_root) else PsutilTrees()


def open_conditions(proc_root: str, sys_root: str, db_path: str, psutil_module: Any = None) -> ConditionsReader:
    """The conditions' reader: procfs and sysfs where ``proc_root`` is a procfs, else psutil's; the
    filesystem share is that of the database's directory."""
    db_dir = os.path.dirname(os.path.abspath(db_path))
    if has_procfs(proc_root):
        return ProcfsConditions(proc_root, sys_root, db_dir)
    return PsutilConditions(psutil_module, db_dir)


def open_gpus(nvml: Any = None, amdsmi: Any = None) -> AllGpus:
    """NVIDIA GPUs through NVML, then AMD GPUs through AMD SMI, started; ``nvml`` or ``amdsmi`` (fakes) given
    alone read that library alone: a test's GPUs are its fake's whatever the machine has."""
    readers: list[GpuReader] = [NvmlReader(nvml)] if nvml is not None or amdsmi is None else []
    gpus = AllGpus(readers + ([AmdSmiReader(amdsmi)] if amdsmi is not None or nvml is None else []))
    gpus.start()
    return gpus


def open_sources(settings: Settings, nvml: Any = None, sys_root: str = "/sys", amdsmi: Any = None) -> Sources:
    """Every reader of this machine, with the roots and modules from settings (or passed in), opened; the latency
    monitor's thread is not started (the sampler starts it). ``close_sources`` closes them. Used by the service
    and by ``tsstats check``."""
    host = open_host_reader(settings.proc_root)
    gpu = open_gpus(nvml, amdsmi)
    rapl = RaplReader(settings.powercap_root).discover()
    tdp = match_tdp(host.cpu_model(), host.read_fast().logical_cpus)
    dimms = settings.dimm_count if settings.dimm_count is not None else count_dimms(sys_root)
    meter = PowerMeter(rapl, tdp, dimms, has_gpu=bool(gpu.gpus))
    latency = ConnectProbe(settings.latency_targets) if settings.latency_targets else KernelRttReader()
    return Sources(host=host, gpu=gpu, meter=meter, latency=LatencyMonitor(latency), dimms_known=dimms is not None,
                   conditions=open_conditions(settings.proc_root, sys_root, settings.db))


def kernel_rtt_readable() -> bool:
    return KernelRttReader().available()


def build_sources(settings: Settings, nvml: Any = None, sys_root: str = "/sys") -> Sources:
    """The readers this machine offers, ready for the sampler, with what they cannot read logged once."""
    sources = open_sources(settings, nvml, sys_root)
    if not sources.gpu.gpus:
        log.info("no GPU readings: %s", sources.gpu.error)
    unreadable = sources.meter.rapl.unreadable
    if unreadable:
        log.warning("RAPL counters %s cannot be read (%s). %s", ", ".join(d.name for d in unreadable),
                    unreadable[0].error, RAPL_FIX)
    return sources


def close_sources(sources: Sources) -> None:
    sources.latency.stop()
    if sources.conditions is not None:
        sources.conditions.close()
    sources.gpu.stop()
    sources.host.close()
    sources.meter.rapl.close()


# -- the grid --------------------------------------------------------------------------------------------
def load_grid(settings: Settings) -> GridIntensity:
    """The region's yearly average; the rows over time are added once the database is open."""
    try:
        return GridIntensity(resolve_grid(settings.grid_region, settings.grid_intensity, settings.renewable_share))
    except ValueError as error:
        raise StartupError(str(error)) from None


def load_grid_file(settings: Settings) -> list[GridRow] | None:
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


def checked_settings(settings: Settings) -> tuple[GridIntensity, list[GridRow] | None]:
    """What ``serve`` refuses to start with (StartupError), checked before anything opens; ``tsstats check``
    runs the same checks. Returns the grid and the grid file's rows."""
    check_exposure(settings)
    tls_context(settings)
    return load_grid(settings), load_grid_file(settings)


def path_warnings(settings: Settings) -> list[str]:
    """Path settings that name nothing: the reader falls back, and the user should hear which."""
    warnings = []
    if settings.proc_root != default_of("proc_root") and not has_procfs(settings.proc_root):
        warnings.append(f"proc_root {settings.proc_root} has no stat file: the host, process and conditions "
                        f"readers use psutil instead")
    if settings.powercap_root != default_of("powercap_root") and not os.path.isdir(settings.powercap_root):
        warnings.append(f"powercap_root {settings.powercap_root} does not exist: no RAPL counter is read there")
    return warnings


# -- the service -----------------------------------------------------------------------------------------
@dataclass
class Service:
    settings: Settings
    store: Store
    sources: Sources
    sampler: Sampler
    comparisons: ComparisonLife
    grid: GridIntensity
    grid_feed: GridFeed
    requests: RequestStats
    unwritten: int = field(default=0)  # samples the final flush could not write
    otlp: OtlpPush | None = None  # the push to an OpenTelemetry collector, while otlp_endpoint is set

    def view(self) -> ServiceView:
        return ServiceView(self.settings, self.store, self.sampler, self.comparisons, self.grid, self.grid_feed,
                           self.requests)

    def app(self, name: str = "tsstats") -> Sanic:
        names, any_host = allowed_host_names(self.settings)
        return create_app(self.view(), HostCheck(names, any_host), name=name)

    def start(self) -> None:
        self.sampler.start()
        if self.settings.otlp_endpoint:
            self.otlp = OtlpPush(OtlpConfig.of(self.settings, __version__), self.view().scrape_now).start()

    def stop(self) -> int:
        """Stop sampling, flush and checkpoint, close the readers this service opened and the database.
        Returns how many samples could not be written (again on a second call: 0 after a clean stop)."""
        if self.store.closed:
            return self.unwritten
        if self.otlp is not None:
            self.otlp.close()
            self.otlp = None
        try:
            self.unwritten = self.sampler.stop()
        finally:
            close_sources(self.sources)
            self.store.close()  # the read pool has finished: no export or backup is being written any more
            for leftover in remove_leftovers(self.store.path):
                log.info("removed the scratch file %s of an export or backup cut short by the stop", leftover)
        return self.unwritten


def sampler_schedule(settings: Settings) -> Schedule:
    return Schedule(settings.sample_hz, settings.idle_sample_hz, settings.flush_interval, settings.checkpoint_interval,
                    settings.current_window, settings.report_window, settings.availability_window)


def build_sampler(settings: Settings, store: Store, sources: Sources, grid: GridIntensity, requests: RequestStats,
                  clocks: Clocks, wake: threading.Event) -> tuple[Sampler, ComparisonLife, GridFeed]:
    """The sampler with its rooms, the owner of comparisons' lives, and the grid feed."""
    schedule = sampler_schedule(settings)
    capacity = ring_capacity(schedule)
    ring = Ring(HOST_ROW.names, capacity)
    gpu_ring = Ring(GPU_ROW.names, capacity * max(len(sources.gpu.gpus), 1))
    rollups = Rollups()
    ledger = EnergyLedger(ring, settings.report_window * 1000.0, grid)
    availability = Availability()
    watch = ClockWatch()
    period_s = 1.0 / settings.sample_hz
    flusher = Flusher(store, rollups, ring, gpu_ring, ledger, availability,
                      max_gap_ms=schedule.stall_s(schedule.slow_period_s) * MS_PER_S, unsaved_segment=watch.unsaved,
                      segment_saved=watch.saved)
    steps = StepMover(store, rollups, (ring, gpu_ring), availability, flusher, watch, period_s * 1000.0)
    reader = TickReader(sources, clocks, watch, steps.step_back)
    footprint = Footprint(clocks.process_cpu, clocks.monotonic, lambda: reader.conditions_cpu_s,
                          lambda: rollups.cpu_s)
    energy = MachineEnergy(sources.meter, sources.gpu, clocks.monotonic)
    attributor = Attributor(open_trees(settings.proc_root), sources.gpu, grid.intensity_at, energy.now,
                            energy.at_last_tick, settings.max_tracked_trees)
    run_policy = RunPolicy(settings.pue, settings.embodied_kg, settings.lifetime_years, settings.contention_limit_pct,
                       settings.report_grace, settings.max_tracked_trees)
    comparisons = ComparisonLife(attributor, ComparisonTally(settings.activity_window),
                                 RunClock(clocks.monotonic, energy.now), run_policy, grid,
                                 ring.pending_columns,
                                 lambda: current_methods(sources.meter, sources.gpu),
                                 gpu_ring.pending_columns,
                                 Machine(sources.host.cpu_model() or None,
                                         tuple(info.name for info in sources.gpu.gpus)))
    windows = FigureWindows(settings.current_window, settings.availability_window, settings.report_window,
                            settings.activity_window, MS_PER_S / settings.sample_hz)
    current = CurrentFigures(windows,
                             Accounting(settings.pue, settings.baseline_power_w, settings.baseline_intensity), store,
                             sources, clocks, ring, reader, ledger, availability, comparisons, grid, requests.summary,
                             lambda: sampler.rate(), footprint.view)
    publisher = StatsPublisher(settings.update_interval, clocks.monotonic, current.compute,
                               dashboard_body, wake.set)
    policy = RetentionPolicy(settings.retention_raw, settings.retention_1m, settings.retention_1h, settings.max_db_mb)
    parts = SamplerParts(ring=ring, gpu_ring=gpu_ring, rollups=rollups, ledger=ledger, availability=availability,
                         clock_watch=watch, flusher=flusher,
                         retention=Retention(policy, store, lambda: rollups.minutes_until), reader=reader,
                         steps=steps, publisher=publisher, comparisons=comparisons, energy=energy,
                         footprint=footprint)
    sampler = Sampler(schedule, store, sources, parts, clocks, wake, Demand(clocks.monotonic, wake.set))
    return sampler, comparisons, GridFeed(store, grid, ledger, clocks.wall)


def open_service(settings: Settings, nvml: Any = None, clocks: Clocks | None = None) -> Service:
    """Open the database and the readers and build the sampler; raises StoreLocked/StoreError/StartupError."""
    grid, file_rows = checked_settings(settings)
    if settings.otlp_endpoint:
        require_sdk()  # before anything is opened: the error says what to install
    for warning in path_warnings(settings):
        log.warning("%s", warning)
    wake = threading.Event()  # the store rings it when a write is queued; the sampler thread answers
    store = Store(settings.db, memory_limit=settings.db_memory_limit, threads=settings.db_threads,
                  notify=wake.set)
    for leftover in remove_leftovers(settings.db):  # the file is ours now (locked): no export of it is running
        log.info("removed %s, left by an export or backup that a crash interrupted", leftover)
    requests = RequestStats()
    try:
        install_file_rows(store, grid, file_rows)
        sources = build_sources(settings, nvml=nvml)
        try:
            sampler, comparisons, grid_feed = build_sampler(settings, store, sources, grid, requests,
                                                            clocks or Clocks(), wake)
        except Exception:
            close_sources(sources)
            raise
    except Exception:
        store.close()
        raise
    return Service(settings=settings, store=store, sources=sources, sampler=sampler, comparisons=comparisons,
                   grid=grid, grid_feed=grid_feed, requests=requests)


def open_store(path: str) -> Store:
    """A store of its own for the command line's tools (``tsstats synth``)."""
    return Store(path)
