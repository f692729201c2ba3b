"""A soak of the running service: many pollers, stream clients coming and going, a writer walking comparisons
through their life cycle and two writers creating comparisons back to back, all at once for a given time.

    python benchmarks/bench_soak.py [--minutes 10] [--pollers 200] [--streams 50]

Prints requests and errors, comparisons lost (created and acknowledged but not found afterwards), samples
stored against expected, the p99 latency of the stats route, the sampler's tick jitter (from the stored
intervals) and USS at start and end. Targets: no errors, nothing lost, samples stored >= 99 % of expected,
memory growth under 5 %. Every request goes to 127.0.0.1; the loops stop by themselves.
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
from servers import free_port


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
        self.uss_warm = float("nan")
        self.uss_trace: list[float] = []

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


async def read_warm_uss(pid: int, after_s: float, tally: Tally, deadline: float) -> None:
    """USS once the load has run a while: the code paths it uses are paged in by then, so growth after this is
    what the soak itself adds. Then every 30 s, for the trace printed at the end."""
    await asyncio.sleep(after_s)
    tally.uss_warm = uss_mb(pid)
    while time.monotonic() + 30 < deadline:
        await asyncio.sleep(30)
        tally.uss_trace.append(uss_mb(pid))


async def soak(url: str, seconds: float, pollers: int, streams: int, tally: Tally, pid: int) -> None:
    deadline = time.monotonic() + seconds
    warm = asyncio.create_task(read_warm_uss(pid, min(60.0, seconds / 5), tally, deadline))
    limits = httpx.Limits(max_connections=pollers + streams + 10)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(poller(client, tally, deadline) for _ in range(pollers)),
                             *(streamer(client, tally, deadline) for _ in range(streams)),
                             life_cycle_writer(client, tally, deadline),
                             back_to_back_writer(client, tally, deadline), back_to_back_writer(client, tally, deadline))
    await warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--pollers", type=int, default=200)
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench-soak-")
    db = os.path.join(work, "soak.duckdb")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    service = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", "--port", str(port), "--db", db,
                                "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    time.sleep(5)
    uss_start = uss_mb(service.pid)
    started_ms = time.time() * 1000
    tally = Tally()
    print(f"soaking {url} for {args.minutes:g} min: {args.pollers} pollers, {args.streams} stream clients, "
          "a life-cycle writer and two back-to-back writers ...", flush=True)
    asyncio.run(soak(url, args.minutes * 60, args.pollers, args.streams, tally, service.pid))
    ended_ms = time.time() * 1000
    time.sleep(2)
    uss_end = uss_mb(service.pid)
    found = set()
    with httpx.Client(base_url=url, timeout=30) as client:
        before = None
        while True:
            page = client.get("/api/comparisons", params={"limit": 500, **({"before": before} if before else {})})
            body = page.json()
            found |= {item["id"] for item in body["items"]}
            before = body["next"]
            if before is None:
                break
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
    print(f"USS {uss_start:.1f} MB before the load, {tally.uss_warm:.1f} MB once warm, {uss_end:.1f} MB at the end: "
          f"{100 * (uss_end / tally.uss_warm - 1):+.2f} % from warm (target < 5 %)")
    print("USS every 30 s after warm:", " ".join(f"{value:.1f}" for value in tally.uss_trace))
    print(f"service exit status {service.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
