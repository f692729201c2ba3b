"""A sampler over canned procfs, fake NVML and powercap, and a fake clock, driven tick by tick by a test, with
a real DuckDB file."""

from __future__ import annotations

import json
import threading

from support.nvml import fake_nvml
from support.procfs import write_stat
from tsstats.api.router import RequestStats
from tsstats.assembly import build_sampler, build_sources, close_sources, load_grid
from tsstats.core.settings import Settings, load_settings
from tsstats.sampling.clocks import Clocks
from tsstats.sampling.reading import Sources
from tsstats.sampling.sampler import Sampler
from tsstats.storage.store import Store

START_WALL = 1_800_000_000.0


class FakeClock:
    def __init__(self):
        self.mono = 1000.0
        self.wall = START_WALL
        self.process_cpu = 0.0  # the service's own CPU seconds

    def advance(self, seconds: float, wall: float | None = None) -> None:
        self.mono += seconds
        self.wall = self.wall + seconds if wall is None else wall

    def clocks(self) -> Clocks:
        return Clocks(monotonic=lambda: self.mono, wall=lambda: self.wall, process_cpu=lambda: self.process_cpu)


def make_sampler(settings: Settings, store: Store, sources: Sources, clocks: Clocks) -> Sampler:
    """The sampler as the assembly builds it, over these readers and clocks."""
    sampler, _, _ = build_sampler(settings, store, sources, load_grid(settings), RequestStats(), clocks,
                                  threading.Event())
    return sampler


class Rig:
    """A sampler over fakes that the test drives tick by tick."""

    def __init__(self, tmp_path, proc_root, nvml=None, powercap=None, **settings):
        self.proc_root = proc_root
        self.clock = FakeClock()
        flags = {"proc_root": str(proc_root), "db": str(tmp_path / "rig.duckdb"),
                 "powercap_root": str(powercap or tmp_path / "no-powercap")}
        flags.update({key: str(value) for key, value in settings.items()})
        self.settings = load_settings(flags, env={"HOME": str(tmp_path)})
        self.busy = 0
        self.idle = 0
        write_stat(proc_root, 0, 0)
        self.nvml = nvml if nvml is not None else fake_nvml(None, init_fails=True)
        self.open()

    def open(self):
        self.store = Store(self.settings.db)
        self.sources = build_sources(self.settings, nvml=self.nvml, sys_root=str(self.proc_root.parent / "sys"))
        self.sampler = make_sampler(self.settings, self.store, self.sources, self.clock.clocks())
        self.sampler.prepare()

    def close(self):
        self.sampler.parts.flusher.flush()
        close_sources(self.sources)
        self.store.close()

    def tick(self, cpu_pct: float = 0.0, seconds: float = 0.1, wall: float | None = None):
        self.clock.advance(seconds, wall)
        busy = int(round(cpu_pct))
        self.busy += busy
        self.idle += 100 - busy
        write_stat(self.proc_root, self.busy, self.idle)
        self.sampler.tick()

    def stats(self) -> dict:
        return json.loads(self.sampler.parts.publisher.build().body)
