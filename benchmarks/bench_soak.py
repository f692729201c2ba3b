"""A soak of the running service in bursts: three bursts of load with rests between. Each burst runs many
pollers of the stats route, stream clients coming and going, a writer walking comparisons through their life
cycle and two writers creating comparisons back to back, all at once; each rest runs nothing.

    python benchmarks/bench_soak.py [--bursts 3] [--burst-minutes 2.5] [--rest-minutes 1]
                                    [--pollers 200] [--streams 50] [--db-memory-limit 64MB] [--db-threads 1]

Prints requests and errors, comparisons lost (created and acknowledged but not found afterwards), samples
stored against expected, the p99 latency of the stats route, the sampler's tick jitter (from the stored
intervals), and the memory: USS of the service and what DuckDB holds (``tsstats_database_memory_bytes`` from
/metrics), every 30 s as a table. Targets: no errors, nothing lost, samples stored >= 99 % of expected, USS at
the end of each rest within 3 % of the first rest's (no leak), the peak under load at most 40 MB above idle
(the end of the rest before the first burst). Every request goes to 127.0.0.1; the loops stop by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb
import httpx
from servers import free_port, wait_ready


def uss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        values = {line.split(":")[0]: int(line.split()[1]) for line in handle if line.split()[1:2] and
                  line.split()[1].isdigit()}
    return (values["Private_Clean"] + values["Private_Dirty"]) / 1024


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.errors: list[str] = []
        self.stats_latency: list[float] = []
        self.acknowledged: set[int] = set()

    def record(self, response: httpx.Response | None, what: str, expected: tuple[int, ...] = (200,)) -> None:
        self.requests += 1
        if response is None or response.status_code not in expected:
            self.errors.append(f"{what}: {response.status_code if response is not None else 'no answer'}")


async def poller(client: httpx.AsyncClient, tally: Tally, deadline: float) -> None:
    await asyncio.sleep(random.uniform(0, 3))
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            response = await client.get("/api/dashboard/stats")
        except httpx.HTTPError:
            response = None
        tally.stats_latency.append(time.perf_counter() - started)
        tally.record(response, "stats")
        await asyncio.sleep(3.0)


async def streamer(client: httpx.AsyncClient, tally: Tally, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            async with client.stream("GET", "/api/dashboard/stream") as response:
                tally.record(response, "stream")
                stay = time.monotonic() + random.uniform(2, 10)
                async for _ in response.aiter_lines():
                    if time.monotonic() > min(stay, deadline):
                        break
        except httpx.HTTPError as error:
            tally.errors.append(f"stream: {error!r}")
        await asyncio.sleep(random.uniform(0, 2))


async def life_cycle_writer(client: httpx.AsyncClient, tally: Tally, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            created = await client.post("/api/comparisons", json={"models": ["soak-a", "soak-b"], "status": "running"})
            tally.record(created, "create", (201,))
            if created.status_code == 201:
                number = created.json()["id"]
                tally.acknowledged.add(number)
                await asyncio.sleep(0.2)
                done = await client.patch(f"/api/comparisons/{number}", json={
                    "status": random.choice(["completed", "failed"]), "accuracy": 80.0, "speed": 30.0,
                    "latencyMs": 120.0})
                tally.record(done, "finish")
        except httpx.HTTPError as error:
            tally.errors.append(f"writer: {error!r}")
        await asyncio.sleep(0.3)


async def back_to_back_writer(client: httpx.AsyncClient, tally: Tally, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            created = await client.post("/api/comparisons", json={"models": ["burst"]})
            tally.record(created, "burst", (201,))
            if created.status_code == 201:
                tally.acknowledged.add(created.json()["id"])
        except httpx.HTTPError as error:
            tally.errors.append(f"burst: {error!r}")


class MemoryTrace:
    """USS and DuckDB's memory every few seconds, each point labelled with the phase it was read in."""

    def __init__(self, pid: int, url: str):
        self.pid, self.url = pid, url
        self.points: list[tuple[float, str, float, float]] = []  # (seconds from start, phase, USS MB, DuckDB MB)
        self.phase = "idle"
        self.started = time.monotonic()

    def read(self) -> tuple[float, str, float, float]:
        try:
            text = httpx.get(self.url + "/metrics", timeout=10).text
            duckdb_mb = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                            if line.startswith("tsstats_database_memory_bytes{")) / 2 ** 20
        except httpx.HTTPError:
            duckdb_mb = float("nan")
        point = (time.monotonic() - self.started, self.phase, uss_mb(self.pid), duckdb_mb)
        self.points.append(point)
        return point

    async def follow(self, every_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.read)
            try:
                await asyncio.wait_for(stop.wait(), every_s)
            except TimeoutError:
                pass

    def peak(self, phase_prefix: str) -> float:
        return max(uss for _, phase, uss, _ in self.points if phase.startswith(phase_prefix))


async def burst(url: str, seconds: float, pollers: int, streams: int, tally: Tally) -> None:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=pollers + streams + 10)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(poller(client, tally, deadline) for _ in range(pollers)),
                             *(streamer(client, tally, deadline) for _ in range(streams)),
                             life_cycle_writer(client, tally, deadline),
                             back_to_back_writer(client, tally, deadline), back_to_back_writer(client, tally, deadline))


async def soak(url: str, args: argparse.Namespace, tally: Tally, trace: MemoryTrace) -> list[float]:
    """Idle, then bursts with rests; USS at the end of the idle and of each rest."""
    stop = asyncio.Event()
    follower = asyncio.create_task(trace.follow(5.0, stop))
    after_rests = []
    await asyncio.sleep(args.rest_minutes * 60)
    after_rests.append((await asyncio.to_thread(trace.read))[2])
    for number in range(1, args.bursts + 1):
        trace.phase = f"burst {number}"
        print(f"  burst {number} ...", flush=True)
        await burst(url, args.burst_minutes * 60, args.pollers, args.streams, tally)
        trace.phase = f"rest {number}"
        await asyncio.sleep(args.rest_minutes * 60)
        after_rests.append((await asyncio.to_thread(trace.read))[2])
    stop.set()
    await follower
    return after_rests


def start_service(db: str, memory_limit: str | None, threads: int | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    extra = (["--db-memory-limit", memory_limit] if memory_limit else []) + \
        (["--db-threads", str(threads)] if threads else [])
    service = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", "--port", str(port), "--db", db,
                                "--log-level", "warning", *extra], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # an unread pipe would stall it once full
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, "/healthz")
    return service, url


def comparisons_found(url: str) -> set[int]:
    found: set[int] = set()
    with httpx.Client(base_url=url, timeout=30) as client:
        before = None
        while True:
            page = client.get("/api/comparisons", params={"limit": 500, **({"before": before} if before else {})})
            body = page.json()
            found |= {item["id"] for item in body["items"]}
            before = body["next"]
            if before is None:
                return found


def print_memory(trace: MemoryTrace, after_rests: list[float]) -> None:
    print("memory every 30 s (s, phase, USS MB, DuckDB MB):")
    shown = -30.0
    for at, phase, uss, duck in trace.points:
        if at - shown >= 30 or at == trace.points[-1][0]:
            print(f"  {at:6.0f}  {phase:8}  {uss:7.1f}  {duck:6.1f}")
            shown = at
    idle, first_rest = after_rests[0], after_rests[1]
    print(f"USS idle {idle:.1f} MB; after each rest: " + ", ".join(f"{value:.1f}" for value in after_rests[1:]) +
          " MB; from the first rest's: " + ", ".join(f"{100 * (value / first_rest - 1):+.2f} %"
                                                       for value in after_rests[2:]) + " (target within 3 %)")
    peak = trace.peak("burst")
    print(f"USS peak under load {peak:.1f} MB: {peak - idle:+.1f} MB above idle (target at most +40 MB); "
          f"DuckDB peak {max(point[3] for point in trace.points):.1f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst-minutes", type=float, default=2.5)
    parser.add_argument("--rest-minutes", type=float, default=1.0)
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--db-memory-limit", help="the service's db_memory_limit (default: its own default)")
    parser.add_argument("--db-threads", type=int, help="the service's db_threads (default: its own default)")
    args = parser.parse_args()
    if args.bursts < 2:
        parser.error("--bursts must be at least 2: the rests after the bursts are compared with each other")
    work = tempfile.mkdtemp(prefix="bench-soak-")
    db = os.path.join(work, "soak.duckdb")
    service, url = start_service(db, args.db_memory_limit, args.db_threads)
    trace = MemoryTrace(service.pid, url)
    tally = Tally()
    print(f"soaking {url}: {args.bursts} bursts of {args.burst_minutes:g} min ({args.pollers} pollers, "
          f"{args.streams} stream clients, a life-cycle writer and two back-to-back writers), "
          f"{args.rest_minutes:g} min rests ...", flush=True)
    started_ms = time.time() * 1000
    after_rests = asyncio.run(soak(url, args, tally, trace))
    ended_ms = time.time() * 1000
    found = comparisons_found(url)
    service.terminate()
    service.wait(60)
    con = duckdb.connect(db, read_only=True)
    stored, intervals = con.execute("SELECT count(*), list(interval_ms) FROM samples WHERE ts_ms BETWEEN ? AND ?",
                                    [int(started_ms), int(ended_ms)]).fetchall()[0]
    con.close()
    expected = (ended_ms - started_ms) / 100.0
    jitter = [abs(interval - 100) for interval in intervals or []]
    latency = sorted(tally.stats_latency)
    print(f"requests {tally.requests:,}; errors {len(tally.errors)}" +
          (f" (first: {tally.errors[:3]})" if tally.errors else ""))
    print(f"comparisons acknowledged {len(tally.acknowledged):,}; lost {len(tally.acknowledged - found)}")
    print(f"samples stored {stored:,} of {expected:,.0f} expected: {100 * stored / expected:.2f} % (target >= 99 %)")
    if latency:
        print(f"stats route p99 {1000 * latency[int(0.99 * (len(latency) - 1))]:.1f} ms over {len(latency):,} polls")
    if jitter:
        p99 = sorted(jitter)[int(0.99 * (len(jitter) - 1))]
        print(f"tick jitter: median {statistics.median(jitter):.1f} ms, p99 {p99} ms, max {max(jitter)} ms")
    print_memory(trace, after_rests)
    print(f"service exit status {service.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
