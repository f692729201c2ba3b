"""Prove the NVML reader on real hardware: read utilization, memory, power and the energy counter idle and
under a matrix-multiply load, and compare the energy counter's delta with the integral of power.

    python3 benchmarks/gpu_check.py [--idle 3] [--load 20] [--service]

The load runs in a child process with whatever GPU library is installed (PyTorch, else CuPy). Over the
loaded interval the NVML energy counter's delta and the time integral of NVML power should agree within 5%.
With --service it also starts `tsstats serve` on a temporary database and prints the stats it serves
while the GPU is loaded (needs tsstats' dependencies installed).

Then (unless --no-processes) the per-process share: two load processes at once, one busy all the time and one a
quarter of the time, read through the reader's per-process use once a second as attribution reads it; the
busy one's share of the GPU should be the larger (printed with the method: NVML utilization samples, or GPU
memory held where the driver gives none).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tsstats.sources.nvml import NvmlReader

from tsstats.sampling.meter import GpuEnergy

LOAD = r"""
import sys, time
seconds = float(sys.argv[1])
duty = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0  # share of the time spent multiplying
try:
    import torch
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    sync, matmul, library = torch.cuda.synchronize, torch.matmul, "torch " + torch.__version__
except ImportError:
    import cupy
    a = cupy.random.rand(8192, 8192, dtype=cupy.float32)
    b = cupy.random.rand(8192, 8192, dtype=cupy.float32)
    sync, matmul, library = cupy.cuda.Device().synchronize, cupy.matmul, "cupy " + cupy.__version__
print("load library:", library, flush=True)
end = time.monotonic() + seconds
count = 0
while time.monotonic() < end:
    began = time.monotonic()
    for _ in range(10):
        c = matmul(a, b)
    sync()
    count += 10
    if duty < 1.0:
        time.sleep((time.monotonic() - began) * (1.0 - duty) / duty)
print(f"load ran {count} 8192x8192 matrix products", flush=True)
"""


def fmt(value: float, unit: str, digits: int = 1) -> str:
    return f"{value:.{digits}f} {unit}" if math.isfinite(value) else "n/a"


def sample(reader: NvmlReader, seconds: float, hz: float = 10.0):
    """Readings every 1/hz s for ``seconds``: (monotonic time, readings) pairs."""
    rows = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rows.append((time.monotonic(), reader.read()))
        time.sleep(1.0 / hz)
    return rows


def summarize(name: str, rows, reader: NvmlReader) -> None:
    print(f"-- {name}: {len(rows)} readings over {rows[-1][0] - rows[0][0]:.1f} s")
    for info in reader.gpus:
        util = [r[info.index].utilization_pct for _, r in rows]
        power = [r[info.index].power_w for _, r in rows]
        memory = [r[info.index].memory_used_bytes for _, r in rows]
        ok = sum(r[info.index].ok for _, r in rows)
        print(f"GPU {info.index} {info.name}: utilization mean {fmt(sum(util) / len(util), '%')} "
              f"max {fmt(max(util), '%')}, power mean {fmt(sum(power) / len(power), 'W')} max {fmt(max(power), 'W')}, "
              f"memory used {fmt(max(memory) / 2**30, 'GiB', 2)}, readings ok {ok}/{len(rows)}, "
              f"energy counter {fmt(rows[-1][1][info.index].energy_counter_j, 'J')}")


def compare_energy(rows, reader: NvmlReader) -> None:
    counter_meter = GpuEnergy()
    print("-- energy over the loaded interval: NVML energy counter delta vs integral of NVML power")
    for info in reader.gpus:
        first, last = rows[0][1][info.index], rows[-1][1][info.index]
        counter_j = last.energy_counter_j - first.energy_counter_j
        integral_j = 0.0
        for (t0, r0), (t1, r1) in zip(rows, rows[1:], strict=False):
            p0, p1 = r0[info.index].power_w, r1[info.index].power_w
            if math.isfinite(p0) and math.isfinite(p1):
                integral_j += (p0 + p1) / 2.0 * (t1 - t0)
        difference = 100.0 * (integral_j - counter_j) / counter_j if counter_j > 0 else float("nan")
        verdict = "agree within 5%" if abs(difference) <= 5.0 else "DIFFER by more than 5%"
        print(f"GPU {info.index}: counter {fmt(counter_j, 'J')}, power integral {fmt(integral_j, 'J')}, "
              f"difference {fmt(difference, '%', 2)} -> {verdict}")
    total = 0.0
    methods = 0
    for (t0, _), (t1, readings) in zip(rows, rows[1:], strict=False):
        _, joules, _, _, bits = counter_meter.measure(readings, t1 - t0)
        total += joules
        methods |= bits
    print(f"tsstats GpuEnergy over the same readings: {fmt(total, 'J')} (method bits {methods}: "
          f"{'energy counter' if methods & 2 else ''}{' power x time' if methods & 4 else ''})")


def service_check(load_seconds: float) -> None:
    tmp = tempfile.mkdtemp(prefix="gpu-check-")
    port = 18765
    server = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", "--port", str(port), "--db",
                               os.path.join(tmp, "gpu.duckdb")], cwd=os.path.join(os.path.dirname(__file__), ".."),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        load = subprocess.Popen([sys.executable, "-c", LOAD, str(load_seconds)])
        time.sleep(min(load_seconds / 2, 8))
        with urllib.request.urlopen(url + "/api/dashboard/stats", timeout=5) as response:
            stats = json.load(response)
        load.wait()
        with urllib.request.urlopen(url + f"/api/energy?from=-{int(load_seconds) + 5}s", timeout=5) as response:
            energy = json.load(response)
        print("-- tsstats serve under load")
        print("systemMetrics:", json.dumps(stats["systemMetrics"]))
        print("meta.sources.gpu:", stats["meta"]["sources"]["gpu"], "gpuPower:", stats["meta"]["sources"]["gpuPower"])
        print("meta.gpus:", json.dumps(stats["meta"]["gpus"]))
        print("meta.unavailable:", stats["meta"]["unavailable"], "meta.estimated:", stats["meta"]["estimated"])
        print("/api/energy:", json.dumps(energy))
    finally:
        server.terminate()
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
        print(f"tsstats serve exited {server.returncode}; last log lines:")
        print("\n".join(output.strip().splitlines()[-4:]))


def process_share_check(reader: NvmlReader, seconds: float) -> bool:
    busy = subprocess.Popen([sys.executable, "-c", LOAD, str(seconds + 4), "1.0"])
    light = subprocess.Popen([sys.executable, "-c", LOAD, str(seconds + 4), "0.25"])
    time.sleep(3.0)
    totals: dict[int, float] = {}
    methods = set()
    reader.process_use(0)  # from now on
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1.0)
        use = reader.process_use(0)
        if use is None:
            continue
        methods.add(use.method)
        for pid, value in use.by_pid.items():
            totals[pid] = totals.get(pid, 0.0) + value
    busy.wait()
    light.wait()
    whole = sum(totals.values()) or 1.0
    busy_share, light_share = totals.get(busy.pid, 0.0) / whole, totals.get(light.pid, 0.0) / whole
    passed = busy_share > light_share > 0.0
    print(f"-- per-process share of GPU 0 over {seconds:g} s ({', '.join(sorted(methods)) or 'no method'}): "
          f"busy {busy_share * 100:.1f} %, a quarter busy {light_share * 100:.1f} %, "
          f"others {(1 - busy_share - light_share) * 100:.1f} %: {'PASS' if passed else 'FAIL'}")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle readings")
    parser.add_argument("--load", type=float, default=20.0, help="seconds of readings under load")
    parser.add_argument("--service", action="store_true", help="also run tsstats serve under load")
    parser.add_argument("--no-processes", action="store_true", help="skip the per-process share check")
    args = parser.parse_args()
    reader = NvmlReader()
    if not reader.start():
        print(f"no GPU: {reader.error}")
        return 1
    print(f"NVML driver {reader.driver_version}, {len(reader.gpus)} GPU(s)")
    reader.read()
    for info in reader.gpus:
        print(f"GPU {info.index}: {info.name}; unsupported fields: {sorted(info.unsupported) or 'none'}")
    summarize("idle", sample(reader, args.idle), reader)
    load = subprocess.Popen([sys.executable, "-c", LOAD, str(args.load + 4)])
    time.sleep(3.0)  # let the clocks and the power draw ramp up
    loaded = sample(reader, args.load)
    load.wait()
    summarize("under load", loaded, reader)
    compare_energy(loaded, reader)
    shares_ok = True if args.no_processes else process_share_check(reader, min(args.load, 10.0))
    reader.stop()
    if args.service:
        service_check(args.load)
    return 0 if shares_ok else 1


if __name__ == "__main__":
    sys.exit(main())
