"""History is current to the last tick: the rows still in the sampler's ring are served with the stored
ones, in the same buckets and aggregates, and a row stored meanwhile is counted once."""

from __future__ import annotations

from support.nvml import FakeGpu, fake_nvml
from support.sampler_rig import Rig

from tsstats.storage.history import parse_history_query, run_history
from tsstats.storage.history_ring import PendingRows
from tsstats.storage.rows import GPU_ROW, HOST_ROW


def pending(rig: Rig) -> PendingRows:
    return PendingRows(host=HOST_ROW.to_stored(rig.sampler.pending_columns()),
                       gpu=GPU_ROW.to_stored(rig.sampler.pending_gpu_columns()))


def history(rig: Rig, rows: PendingRows | None) -> dict:
    query = parse_history_query({"metrics": ["cpuUsage,gpu0Usage,energy"], "from": ["-8s"], "step": ["1s"],
                                 "agg": ["avg,min,max,last"]}, now_s=rig.clock.wall, known_gpus={0})
    rollups = rig.sampler.parts.flusher.rollups
    return rig.store.read_now(run_history, query, rollups.minutes_until, rollups.hours_until, rows)


def test_the_last_seconds_come_from_the_ring_as_they_will_from_the_table(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root, nvml=fake_nvml([FakeGpu(util=40)]))
    for i in range(80):  # 8 s at 10 Hz, none of it flushed
        rig.tick(cpu_pct=10 + i % 7)
    assert len(rig.sampler.pending_columns()["ts_ms"]) >= 70
    stored_only = history(rig, None)
    live = history(rig, pending(rig))
    counts = [v for v in live["series"]["cpuUsage"]["avg"][-4:]]
    assert all(value is not None for value in counts)  # the last seconds have their values now
    assert sum(v is not None for v in stored_only["series"]["cpuUsage"]["avg"][-4:]) < 4
    assert all(value is not None for value in live["series"]["gpu0Usage"]["max"][-4:])
    rig.sampler.parts.flusher.flush()
    flushed = history(rig, pending(rig))  # nothing pending now: all from the table
    assert flushed["series"] == live["series"] and flushed["timestamps"] == live["timestamps"]
    rig.close()


def test_rows_stored_since_the_ring_was_copied_are_counted_once(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for i in range(40):
        rig.tick(cpu_pct=20 + i % 5)
    copied = pending(rig)  # what a read thread copied, just before a flush committed
    rig.sampler.parts.flusher.flush()
    twice = history(rig, copied)
    once = history(rig, None)
    assert twice["series"] == once["series"]
    rig.close()
