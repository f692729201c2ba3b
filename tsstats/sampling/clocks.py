"""The clocks: the ones the sampler reads (``Clocks``: a monotonic clock that counts suspend, the wall clock,
this process's CPU time), this boot's identity, and the steps of the wall clock, found against the monotonic
clock and undone in the stored timeline and in what the sampler holds (``StepMover``). Sampler thread.

Samples are stamped with the wall clock. Between two ticks, the wall clock minus the monotonic one (CLOCK_BOOTTIME,
which also runs through suspend) stays put but for drift; when it moves by more than ``STEP_MS`` the wall clock
has been stepped. A step forward starts a new *segment*: samples from there on are stamped with the new offset
(and the gap between is no outage: intervals come from the monotonic clock). A step back by Δ means the current
segment's rows were stamped Δ ahead of the clock now in force: they are moved back by Δ, onto the times they
were taken in the new clock's terms, with everything stamped alongside them (per-GPU samples, outages, the times
of comparisons and offsets), and the rollup buckets from the first moved minute are rebuilt. New samples then
follow the wall clock at once, and rows stay in time order with no duplicate.

Smaller steps back (under ``STEP_MS``) are absorbed: a timestamp never goes below the previous one.

The segment (its first sample's time, its offset and the boot it belongs to) is kept in ``schema_meta``, so a
restart on the same boot finds a step made while the service was stopped; after a reboot the monotonic clock
starts again and only the rows stamped in the future can be seen: they are moved to end before the first
new sample.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from tsstats.core.inputs import rfc3339_ms
from tsstats.core.units import HOUR_MS, MINUTE_MS
from tsstats.sampling.flushing import Availability, Flusher
from tsstats.sampling.ring import Ring
from tsstats.storage.rollups import Rollups, TierState
from tsstats.storage.rows import newest_sample_ms
from tsstats.storage.sql import Connection, first
from tsstats.storage.store import Store

log = logging.getLogger("tsstats.sampler")
STEP_MS = 1000.0
SEGMENT_KEY = "clock_segment"


def boot_clock() -> Callable[[], float]:
    """A monotonic clock that also counts time suspended (Linux's CLOCK_BOOTTIME), else Python's monotonic:
    a machine asleep is an outage, a step of the wall clock is none."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    return lambda: time.clock_gettime(boottime)


@dataclass
class Clocks:
    """The clocks the sampler reads: monotonic for intervals, wall for timestamps."""

    monotonic: Callable[[], float] = field(default_factory=boot_clock)
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    process_cpu: Callable[[], float] = time.process_time  # this service's own CPU seconds, every thread


def boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str:
    """This boot's identity (Linux), or "" where there is none: a monotonic offset is only comparable within a
    boot."""
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Segment:
    """Samples stamped with one offset of the wall clock from the monotonic clock."""

    since_ms: float  # the first sample stamped with it
    offset_ms: float  # wall - monotonic, in ms
    boot_id: str = ""


@dataclass(frozen=True)
class StepBack:
    """The rows stamped at or after ``since_ms`` are to move by ``shift_ms`` (negative)."""

    since_ms: float
    shift_ms: float


class ClockWatch:
    """Follows the offset of the wall clock from the monotonic clock, tick by tick (sampler thread)."""

    def __init__(self, boot: Callable[[], str] = boot_id):
        self.segment: Segment | None = None
        self.boot = boot()
        self.changed = False  # the segment changed since it was last saved

    def resume(self, saved: Segment | None) -> None:
        if saved is not None and saved.boot_id == self.boot:
            self.segment = saved

    def observe(self, wall_ms: float, mono_s: float, last_ts_ms: float | None) -> StepBack | None:
        """Take this tick's clocks; returns the move a step back calls for (before the tick is stamped)."""
        offset = wall_ms - mono_s * 1000.0
        segment = self.segment
        if segment is None or offset > segment.offset_ms + STEP_MS:  # the first tick, or a step forward
            self._set(Segment(wall_ms, offset, self.boot))
            return None
        if offset < segment.offset_ms - STEP_MS:
            if last_ts_ms is None or last_ts_ms < segment.since_ms:
                self._set(Segment(wall_ms, offset, self.boot))  # nothing stamped with the old offset is held
                return None
            return StepBack(segment.since_ms, offset - segment.offset_ms)
        self.segment = Segment(segment.since_ms, offset, segment.boot_id)  # drift: follow it, no save needed
        return None

    def moved(self, step: StepBack, offset_ms: float) -> None:
        """The rows have moved: the segment now starts where its first row went, with the new offset."""
        self._set(Segment(step.since_ms + step.shift_ms, offset_ms, self.boot))

    def _set(self, segment: Segment) -> None:
        self.segment = segment
        self.changed = True

    def unsaved(self) -> tuple[str, str] | None:
        """The ``schema_meta`` row to write if the segment changed since it was last saved."""
        if not self.changed or self.segment is None:
            return None
        return SEGMENT_KEY, json.dumps(asdict(self.segment))

    def saved(self, row: tuple[str, str]) -> None:
        """``row`` (from ``unsaved``) has been committed."""
        if self.segment is not None and row[1] == json.dumps(asdict(self.segment)):
            self.changed = False


def load_segment(con: Connection) -> Segment | None:
    row = first(con.execute("SELECT value FROM schema_meta WHERE key = ?", [SEGMENT_KEY]).fetchall())
    if row is None:
        return None
    try:
        return Segment(**json.loads(row[0]))
    except (ValueError, TypeError):
        return None


def step_at_start(newest_ms: float | None, now_ms: float, mono_s: float, saved: Segment | None,
                  boot: str, period_ms: float) -> StepBack | None:
    """A step back made while the service was stopped: the newest stored row is ahead of the wall clock. On the
    same boot the saved segment's offset gives the step; otherwise the rows in the future move to end one sample
    period before now."""
    if newest_ms is None or newest_ms <= now_ms + STEP_MS:
        return None
    if saved is not None and saved.boot_id == boot and boot:
        shift = (now_ms - mono_s * 1000.0) - saved.offset_ms
        if shift < -STEP_MS and newest_ms + shift < now_ms:
            return StepBack(saved.since_ms, shift)
    since = saved.since_ms if saved is not None and saved.since_ms <= newest_ms else now_ms
    return StepBack(max(since, now_ms), now_ms - period_ms - newest_ms)


def move_rows(con: Connection, step: StepBack, tiers: TierState) -> TierState:
    """Move the rows stamped at or after ``step.since_ms`` by ``step.shift_ms`` (in the caller's transaction), drop
    the rollup buckets from the first moved minute on, and return the tier state to rebuild them from."""
    since, shift = int(step.since_ms), int(round(step.shift_ms))
    for table in ("samples", "gpu_samples"):
        con.execute(f"UPDATE {table} SET ts_ms = ts_ms + ? WHERE ts_ms >= ?", [shift, since])

    def moved(column: str) -> str:
        return f"{column} = CASE WHEN {column} >= $since THEN {column} + $shift ELSE {column} END"

    values = {"since": since, "shift": shift}
    con.execute(f"UPDATE outages SET {moved('start_ms')}, {moved('end_ms')} WHERE end_ms >= $since", values)
    con.execute(f"UPDATE comparisons SET {moved('created_ms')}, {moved('started_ms')}, {moved('finished_ms')} "
                "WHERE greatest(created_ms, coalesce(started_ms, 0), coalesce(finished_ms, 0)) >= $since", values)
    con.execute(f"UPDATE offsets SET {moved('created_ms')} WHERE created_ms >= $since", values)
    first_sample = first(con.execute("SELECT value FROM schema_meta WHERE key = 'first_sample_ms'").fetchall())
    if first_sample is not None and float(first_sample[0]) >= since:
        con.execute("UPDATE schema_meta SET value = ? WHERE key = 'first_sample_ms'",
                    [repr(float(first_sample[0]) + shift)])
    minute = (since + shift) // MINUTE_MS * MINUTE_MS
    if tiers.minutes_until is None or minute >= tiers.minutes_until:
        return tiers
    hour = min(minute // HOUR_MS * HOUR_MS, tiers.hours_until if tiers.hours_until is not None else minute)
    for table in ("rollup_1m", "gpu_rollup_1m"):
        con.execute(f"DELETE FROM {table} WHERE bucket_ms >= ?", [minute])
    for table in ("rollup_1h", "gpu_rollup_1h"):
        con.execute(f"DELETE FROM {table} WHERE bucket_ms >= ?", [hour])
    return TierState(minute, hour)



class StepMover:
    def __init__(self, store: Store, rollups: Rollups, rings: tuple[Ring, ...], availability: Availability,
                 flusher: Flusher, watch: ClockWatch, period_ms: float,
                 reload: Callable[[Connection], None] = lambda con: None):
        """``reload(connection)`` reloads what was computed from the moved rows (after a step while sampling;
        the sampler sets it)."""
        self.store = store
        self.rollups = rollups
        self.rings = rings
        self.availability = availability
        self.flusher = flusher
        self.watch = watch
        self.period_ms = period_ms
        self.reload = reload
        self._failure = ""  # why rows stamped ahead could not be moved, once said

    def undo_while_stopped(self, con: Connection, now_ms: float, mono_s: float) -> None:
        """Rows stamped ahead of the wall clock (it stepped back while the service was stopped) are moved back;
        else the saved clock segment carries on if this is the same boot."""
        saved = load_segment(con)
        step = step_at_start(newest_sample_ms(con), now_ms, mono_s, saved,
                                        self.watch.boot, self.period_ms)
        if step is None:
            self.watch.resume(saved)
        elif self.move(step, reload=False):
            self.watch.moved(step, now_ms - mono_s * 1000.0)

    def step_back(self, step: StepBack) -> bool:
        """The wall clock stepped back while sampling: move what was stamped ahead (a tick's callback)."""
        return self.move(step, reload=True)

    def move(self, step: StepBack, reload: bool) -> bool:
        try:
            tiers = self.store.transaction(lambda con: move_rows(con, step, self.rollups.state))
        except Exception as error:
            if str(error) != self._failure:  # said once, not every tick it is tried again
                log.error("the wall clock stepped back %.3f s; moving the rows stamped since %s failed (tried "
                          "again every tick): %s", -step.shift_ms / 1000.0, rfc3339_ms(int(step.since_ms)), error)
            self._failure = str(error)
            return False
        self._failure = ""
        log.warning("the wall clock stepped back %.3f s: moved the rows stamped since %s by that much",
                    -step.shift_ms / 1000.0, rfc3339_ms(int(step.since_ms)))
        self.rollups.commit(tiers)
        for ring in self.rings:
            ring.shift_times(step.since_ms, step.shift_ms)
        self.availability.shift_times(step.since_ms, step.shift_ms)
        last = self.flusher.last_flushed_ms
        if last is not None and last >= step.since_ms:
            self.flusher.last_flushed_ms = last + step.shift_ms
        if reload:
            self.reload(self.store.writer)
        return True
