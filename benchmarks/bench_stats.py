"""Throughput and p99 latency of GET /api/dashboard/stats against a plain Sanic app serving a static copy of
the contract's example JSON, measured in the same run; and the time from exec to the first 200.

    python benchmarks/bench_stats.py [--rounds 15] [--seconds 8] [--connections 32] [--starts 5]

Load comes from wrk when it is installed, else from a keep-alive load generator in this script. The two
servers are driven alternately, round after round (15 of 8 s by default: single rounds of a busy 2-core
machine swing by 20 % either way), with the same load; medians are compared, and so are the ratios taken
within each round (both servers back to back). Targets:
throughput ratio >= 0.95, p99 ratio <= 1.10. Start-up: ``--starts`` fresh services, each polled from the
moment of exec; every answer must be a 200 (the service listens only once its first stats exist).
Idle CPU and memory are measured by ``bench_idle.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from servers import free_port, start_timed, stop, wait_ready

EXAMPLE = (b'{"systemMetrics":{"cpuUsage":74.79,"gpuUsage":86.42,"memoryUsage":79.38,"networkLatency":35.22,'
           b'"activeConnections":14},"liveStats":{"activeComparisons":12,"queueLength":5,"systemLoad":67,'
           b'"carbonFootprint":2.4,"energyConsumption":45.2,"uptime":99.8,"responseTime":245,"errorRate":0.2},'
           b'"sustainability":{"totalCarbonSaved":12.8,"greenScore":87,"energyEfficiency":92,'
           b'"renewableEnergyUsage":78,"carbonOffset":8.5},"comparisonStats":{"totalComparisons":1247,'
           b'"modelsCompared":45,"averageAccuracy":89.2,"averageSpeed":85.5},'
           b'"meta":{"generatedAt":"2026-11-26T01:52:27.123Z"}}')
PATH = "/api/dashboard/stats"


def run_baseline(port: int) -> None:
    """The baseline: a plain Sanic app returning the example JSON, run as this script's child."""
    from sanic import Sanic
    from sanic.response import raw

    app = Sanic("baseline")

    @app.get(PATH)
    async def stats(request):
        return raw(EXAMPLE, content_type="application/json", headers={"Cache-Control": "no-store"})

    app.run(host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False)


def load_with_wrk(url: str, seconds: float, connections: int) -> tuple[float, float]:
    output = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url + PATH],
                            capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99_ms


async def _own_load(host: str, port: int, seconds: float, connections: int) -> tuple[float, float]:
    request = f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000.0


def load(url: str, port: int, seconds: float, connections: int, use_wrk: bool) -> tuple[float, float]:
    if use_wrk:
        return load_with_wrk(url, seconds, connections)
    return asyncio.run(_own_load("127.0.0.1", port, seconds, connections))


def time_to_first_answer(env: dict[str, str], tmp: str, number: int) -> tuple[float, int]:
    """Seconds from exec to the first answer of the stats route on a fresh database, and that answer's status."""
    db = os.path.join(tmp, f"start-{number}.duckdb")
    process, seconds, status = start_timed([sys.executable, "-m", "tsstats"], db, env, extra=("--log-level", "warning"))
    stop(process, f"start {number}")
    return seconds, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--starts", type=int, default=5, help="fresh starts timed to the first 200 (default 5)")
    parser.add_argument("--no-wrk", action="store_true", help="use the script's own load generator")
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        run_baseline(args.baseline_server)
        return 0

    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    tmp = tempfile.mkdtemp(prefix="bench-stats-")
    base_port, service_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    baseline = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(base_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", "--port", str(service_port),
                                "--db", os.path.join(tmp, "bench.duckdb"), "--log-level", "warning"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    targets = {"baseline": (f"http://127.0.0.1:{base_port}", base_port),
               "tsstats": (f"http://127.0.0.1:{service_port}", service_port)}
    try:
        for url, _ in targets.values():
            wait_ready(url, PATH)
        print(f"load: {'wrk -t1' if use_wrk else 'own keep-alive generator'}, {args.connections} connections, "
              f"{args.seconds:g} s per run, {args.rounds} alternating rounds")
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
        for round_number in range(args.rounds):
            order = list(targets) if round_number % 2 == 0 else list(targets)[::-1]
            for name in order:
                url, port = targets[name]
                rate, p99 = load(url, port, args.seconds, args.connections, use_wrk)
                results[name].append((rate, p99))
                print(f"  round {round_number + 1} {name:8s} {rate:10.0f} req/s  p99 {p99:7.2f} ms")
        summary = {name: (statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs))
                   for name, runs in results.items()}
        (base_rate, base_p99), (rate, p99) = summary["baseline"], summary["tsstats"]
        print(f"baseline  {base_rate:10.0f} req/s  p99 {base_p99:7.2f} ms (median of rounds)")
        print(f"tsstats   {rate:10.0f} req/s  p99 {p99:7.2f} ms (median of rounds)")
        # each round measures both back to back, so its ratio is spared the machine's slower drifts
        pairs = list(zip(results["tsstats"], results["baseline"], strict=True))
        rate_ratios = [t[0] / b[0] for t, b in pairs]
        p99_ratios = [t[1] / b[1] for t, b in pairs]
        print("per-round throughput ratios: " + " ".join(f"{r:.2f}" for r in rate_ratios))
        print("per-round p99 ratios:        " + " ".join(f"{r:.2f}" for r in p99_ratios))
        print(f"throughput ratio {statistics.median(rate_ratios):.3f} (median of rounds; target >= 0.95)")
        print(f"p99 ratio        {statistics.median(p99_ratios):.3f} (median of rounds; target <= 1.10)")

        baseline.terminate()
        service.terminate()
        starts = [time_to_first_answer(env, tmp, number) for number in range(args.starts)]
        times_ms = sorted(1000.0 * seconds for seconds, _ in starts)
        statuses = [status for _, status in starts]
        print("exec to first answer: " + " ".join(f"{ms:.0f}" for ms in times_ms) + " ms; median "
              f"{statistics.median(times_ms):.0f} ms; first statuses {statuses} "
              f"({'all 200' if set(statuses) == {200} else 'NOT all 200'})")
    finally:
        for process in (baseline, service):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
