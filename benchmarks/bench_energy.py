"""What energy measurement costs: the power readers per tick, the refresh of the energy figures over
24 h of stored 10 Hz samples, and per-process attribution with 0, 1 and 10 tracked process trees of 20
processes each (real processes, read once a second), each printed against the cost of a tick without them.

    python benchmarks/bench_energy.py [--hours 24] [--repeat 2000] [--trees 10] [--tree-size 20]

The RAPL reader runs on a fake powercap tree (two packages with dram) and NVML on a stand-in module with
two GPUs, so the figures are the readers' own cost, not the kernel's or the driver's.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tsstats.sources.cpu_model import match_tdp
from tsstats.sources.nvml import NvmlReader
from tsstats.sources.rapl import RaplReader

from tsstats.comparisons.attributor import Attributor
from tsstats.figures.energy import Totals
from tsstats.sampling.energy import EnergyLedger, MachineEnergy
from tsstats.sampling.meter import PowerMeter, PowerSample
from tsstats.sampling.ring import Ring
from tsstats.sources.host import ProcfsHostReader
from tsstats.sources.processes import ProcfsTrees
from tsstats.storage.rows import HOST_ROW, empty_columns
from tsstats.storage.store import Store


def per_call_us(function, repeat: int) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - start) / repeat * 1e6


def fake_powercap(root: str) -> None:
    for entry, name in (("intel-rapl:0", "package-0"), ("intel-rapl:1", "package-1"),
                        ("intel-rapl:0:2", "dram"), ("intel-rapl:1:2", "dram"), ("intel-rapl:0:0", "core")):
        path = os.path.join(root, entry)
        os.makedirs(path)
        for file, value in (("name", name), ("max_energy_range_uj", "262143328850"), ("energy_uj", "12345")):
            with open(os.path.join(path, file), "w") as handle:
                handle.write(value + "\n")


def fake_nvml(gpus: int) -> types.SimpleNamespace:
    handles = list(range(gpus))
    return types.SimpleNamespace(
        NVML_ERROR_NOT_SUPPORTED=3, NVML_TEMPERATURE_GPU=0,
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlSystemGetDriverVersion=lambda: "0",
        nvmlDeviceGetCount=lambda: gpus, nvmlDeviceGetHandleByIndex=lambda i: handles[i],
        nvmlDeviceGetName=lambda h: "stand-in",
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=50),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=1 << 30, total=8 << 30),
        nvmlDeviceGetPowerUsage=lambda h: 150_000,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: int(time.monotonic() * 150_000),
        nvmlDeviceGetTemperature=lambda h, s: 60)


def stored_day(store: Store, hours: float, hz: float = 10.0) -> int:
    rows = int(hours * 3600 * hz)
    now_ms = time.time() * 1000.0
    ts = now_ms - (rows - np.arange(rows)) * (1000.0 / hz)
    rng = np.random.default_rng(1)
    cpu = np.clip(rng.normal(30, 10, rows), 0, 100)
    columns = empty_columns(HOST_ROW, rows)
    columns.update(ts_ms=ts, interval_s=np.full(rows, 1 / hz), cpu_pct=cpu, cpu_j=(20 + cpu) / hz,
                   mem_j=np.full(rows, 1.0), gpu_j=np.full(rows, 15.0),
                   gpu_idle_j=np.full(rows, 5.0), methods=np.ones(rows))
    chunk = 200_000
    for start in range(0, rows, chunk):
        part = {name: values[start:start + chunk] for name, values in columns.items()}
        store.transaction(lambda con, part=part: store.insert_rows(HOST_ROW, part))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--trees", type=int, default=10)
    parser.add_argument("--tree-size", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-energy-")

    host = ProcfsHostReader()
    tick_us = per_call_us(host.read_fast, args.repeat)
    print(f"tick without power readers (procfs CPU counters): {tick_us:8.1f} us")

    model = PowerMeter(RaplReader(os.path.join(tmp, "none")).discover(), match_tdp("AMD EPYC 7763", 128), None,
                       has_gpu=False)
    powercap = os.path.join(tmp, "powercap")
    fake_powercap(powercap)
    rapl = PowerMeter(RaplReader(powercap).discover(), match_tdp("", 1), None, has_gpu=False)
    nvml = NvmlReader(fake_nvml(2))
    nvml.start()
    gpu_meter = PowerMeter(RaplReader(os.path.join(tmp, "none")).discover(), match_tdp("", 1), None, has_gpu=True)
    readers = {
        "TDP and DIMM models": lambda: model.measure(0.1, 40.0, []),
        "RAPL, 2 packages + 2 dram": lambda: rapl.measure(0.1, 40.0, []),
        "NVML read, 2 GPUs (stand-in)": nvml.read,
        "GPU energy from NVML, 2 GPUs": lambda: gpu_meter.measure(0.1, 40.0, nvml.read()),
    }
    for name, function in readers.items():
        cost = per_call_us(function, args.repeat)
        print(f"  + {name:32s} {cost:8.1f} us per tick  ({cost / tick_us:5.2f} x the tick)")

    store = Store(os.path.join(tmp, "bench.duckdb"))
    started = time.perf_counter()
    rows = stored_day(store, args.hours)
    print(f"stored {rows:,} samples ({args.hours:g} h at 10 Hz) in {time.perf_counter() - started:.1f} s")
    ledger = EnergyLedger(Ring(HOST_ROW.names, 64), args.hours * 3600 * 1000)
    con = store.writer
    now_ms = time.time() * 1000.0
    load_us = per_call_us(lambda: ledger.load(con, now_ms, Totals()), 5)
    print(f"energy window, full scan at start-up:      {load_us / 1000:8.2f} ms  "
          f"({load_us / tick_us:8.0f} x the tick)")
    cadence_s = min(max(args.hours * 3600 / 2000, 5.0), 60.0)  # as the sampler refreshes
    step = [0.0]

    def advance() -> None:
        step[0] += cadence_s * 1000.0
        ledger.advance(con, now_ms + step[0])

    ledger.load(con, now_ms, Totals())
    advance_us = per_call_us(advance, 50)
    print(f"energy window, refresh (every {cadence_s:g} s):     {advance_us / 1000:8.2f} ms  "
          f"({advance_us / tick_us:8.0f} x the tick)")
    per_second = advance_us / cadence_s
    print(f"refresh cost per second of sampling: {per_second:.1f} us = {per_second / (tick_us * 10):.3f} x the "
          f"10 ticks of that second")
    store.close()
    host.close()
    attribution_costs(tick_us, args.trees, args.tree_size)
    return 0


def process_tree(size: int) -> subprocess.Popen:
    """A shell with ``size - 1`` sleeping children: ``size`` processes."""
    return subprocess.Popen(["sh", "-c", " ".join(["sleep 600 &"] * (size - 1)) + " wait"],
                            start_new_session=True)


def attribution_costs(tick_us: float, most: int, size: int) -> None:
    """Per tick (adding the tick's energy to the machine's sum) and per second (reading the named trees and
    sharing)."""
    nvml = NvmlReader(fake_nvml(0))
    trees = [process_tree(size) for _ in range(most)]
    try:
        time.sleep(1.0)  # let every child start
        counted = [len(ProcfsTrees().tree((tree.pid,)).members) for tree in trees]
        print(f"per-process attribution, trees of {min(counted)} to {max(counted)} processes:")
        meter = PowerMeter(RaplReader("/nonexistent").discover(), match_tdp("", 4), 2, has_gpu=False)
        energy = MachineEnergy(meter, nvml, time.monotonic)
        sample = PowerSample(40.0, 4.0, float("nan"), 0.0, 0.0, 3.0, 0.3, 0)
        for tracked in sorted({0, 1, most}):
            attributor = Attributor(ProcfsTrees(), nvml, lambda ts: 400.0, energy.now, energy.at_last_tick)
            for number, tree in enumerate(trees[:tracked]):
                attributor.track(number, (tree.pid,))
            tick = per_call_us(lambda e=energy: e.ticked(time.monotonic(), 50.0, sample), 20000)
            second = per_call_us(lambda a=attributor: a.attribute(0.0), 200)
            per_tick = tick + second / 10.0  # at 10 Hz, one attribution a second
            print(f"  {tracked:2d} trees: {tick:6.2f} us a tick + {second:8.1f} us a second = {per_tick:7.1f} us "
                  f"per tick at 10 Hz ({per_tick / tick_us:5.2f} x the tick)")
    finally:
        for tree in trees:
            os.killpg(tree.pid, signal.SIGKILL)
            tree.wait()


if __name__ == "__main__":
    sys.exit(main())
