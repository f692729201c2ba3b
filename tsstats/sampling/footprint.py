"""tsstats' own footprint: what the measurer costs, kept beside what it measures (sampler thread; any thread
reads ``view()``).

- **CPU time by part** of the sampler thread's work, as the thread's own clock (``time.thread_time``) measures
  it around each job: ``ticks`` (reading the machine, less the conditions), ``conditions`` (the once-a-second
  readings of temperatures, clocks, pressure, disks), ``flush`` (samples written, less the rollups),
  ``rollups`` (the minute and hour buckets closed), ``stats`` (the stats built on demand), ``writes`` (the API's
  writes), ``housekeeping`` (retention, checkpoints, the energy window, attribution to processes); and
  ``other``: the process' CPU time less all of those (the HTTP event loop, the latency thread). Counted from
  the moment the sampler was built: the imports and the opening of the file before it are not.
- **Resident memory**: the process' RSS, read with the once-a-second readings.
- **Energy**, by the same attribution as a run's processes get (``comparisons.attributor``): each tick, the
  CPU energy x (this process' CPU time / the machine's busy CPU time) plus the memory energy x (its resident
  memory / the memory in use); nothing of the GPUs' (tsstats uses none). Joules before PUE, since start. The
  machine's energy counters carry it (``MachineJoules.service_j``), so a run's window gets the service's energy
  over its own edges as it gets the machine's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

from tsstats.figures.energy import share
from tsstats.figures.moment import FootprintNow
from tsstats.sampling.energy import finite_or_zero
from tsstats.sampling.reading import Tick

PARTS = ("ticks", "conditions", "flush", "rollups", "stats", "writes", "housekeeping")
T = TypeVar("T")


class Footprint:
    def __init__(self, process_cpu: Callable[[], float], monotonic: Callable[[], float],
                 conditions_cpu: Callable[[], float] = lambda: 0.0, rollups_cpu: Callable[[], float] = lambda: 0.0,
                 thread_time: Callable[[], float] = time.thread_time):
        """``process_cpu()``: this process' CPU seconds (every thread); ``conditions_cpu()``, ``rollups_cpu()``:
        the thread CPU seconds spent on the conditions' readings (inside ticks) and on rollups (inside flushes),
        counted where they run."""
        self.process_cpu = process_cpu
        self.monotonic = monotonic
        self.conditions_cpu = conditions_cpu
        self.rollups_cpu = rollups_cpu
        self.thread_time = thread_time
        self.started_mono = monotonic()
        self.started_cpu_s = process_cpu()
        self._cpu_s = dict.fromkeys(PARTS, 0.0)
        self._last_own_cpu_s: float | None = None
        self.energy_j = 0.0
        self.resident_bytes = math.nan

    def timed(self, part: str, job: Callable[[], T]) -> T:
        """Run ``job`` on the sampler thread, its thread CPU time counted to ``part``."""
        started = self.thread_time()
        try:
            return job()
        finally:
            self._cpu_s[part] += self.thread_time() - started

    def ticked(self, tick: Tick) -> float:
        """This tick's energy used by the service itself (joules before PUE), by a run's attribution."""
        own, interval = tick.own_cpu_s, tick.host["interval_s"]
        busy_s = tick.host["cpu_pct"] / 100.0 * tick.host["logical_cpus"] * interval
        cpu_share = share(own - self._last_own_cpu_s, busy_s) if self._last_own_cpu_s is not None else 0.0
        self._last_own_cpu_s = own
        if math.isfinite(tick.own_resident_bytes):
            self.resident_bytes = tick.own_resident_bytes
        memory_share = share(tick.own_resident_bytes, tick.memory_used_bytes)
        power = tick.power
        joules = finite_or_zero(power.cpu_j) * cpu_share + finite_or_zero(power.mem_j) * memory_share
        self.energy_j += joules
        return joules

    def view(self) -> FootprintNow:
        """The footprint since start (any thread: a copy)."""
        parts = dict(self._cpu_s)
        conditions, rollups = self.conditions_cpu(), self.rollups_cpu()
        parts["ticks"] = max(parts["ticks"] - conditions, 0.0)
        parts["conditions"] = conditions
        parts["flush"] = max(parts["flush"] - rollups, 0.0)
        parts["rollups"] = rollups
        total = max(self.process_cpu() - self.started_cpu_s, 0.0)
        parts["other"] = max(total - sum(parts.values()), 0.0)
        return FootprintNow(seconds=max(self.monotonic() - self.started_mono, 0.0), cpu_s=total,
                            cpu_by_part_s=tuple(parts.items()), resident_bytes=self.resident_bytes,
                            energy_j=self.energy_j)

