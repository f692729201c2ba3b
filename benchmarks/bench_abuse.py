"""Every abuse at once against one service for a minute, while a client polls the stats every second.

    python benchmarks/bench_abuse.py [--seconds 60] [--idle 1100] [--slow 200] [--held 300] [--heavy 8]
                                     [--skip grid,exports,trees]

The service runs on its defaults over a day of synthetic history (``tsstats synth``). At the same time:
grid floods (10,000-row CSV feeds back to back, and 60,000-row ones that must be refused), exports aborted
by their client, idle connections (``--idle``, never a byte), slow ones (a header line every 2 s),
connections holding back the last byte of a 1 MiB body, comparisons naming process trees up to
``max_tracked_trees`` and beyond (plus 500 naming pid 1), and heavy history (7 days, 16 metrics, 4
aggregates). A new client connects every 2 s and asks for ``/healthz``; it and the stats poller run in a process
of their own, as the dashboard does.

Prints samples kept (% of the sample rate over the window), the stats route's p99 (from the 1 s poller),
peak RSS (VmHWM), the most descriptors in use, temporary files left, answers with status 500, and the new
clients answered. Targets: >= 95 % of samples, p99 under 50 ms, RSS peak under 300 MB, 0 files left, 0 x 500,
every new client answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import duckdb
import httpx
from servers import free_port, wait_ready

SAMPLE_HZ = 10.0
RAMP_S = 5.0  # the attacks' first seconds, when 1,600 connections and 300 MiB of bodies arrive at once


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.stats_latency: list[float] = []
        self.stats_at: list[float] = []  # when each poll ended, seconds before the end of the attack (negative)
        self.new_clients = [0, 0]  # tried, answered 200

    def record(self, what: str, status: int | str) -> None:
        self.statuses[f"{what} {status}"] += 1

    @property
    def server_errors(self) -> int:
        return sum(count for key, count in self.statuses.items() if key.endswith(" 500"))


async def poll_stats(url: str, deadline: float) -> list[tuple[float, float, int | str]]:
    """(latency s, seconds before ``deadline`` when it ended, status) of one stats poll a second."""
    polls: list[tuple[float, float, int | str]] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status: int | str = (await client.get("/api/dashboard/stats")).status_code
            except httpx.HTTPError as error:
                status = type(error).__name__
            polls.append((time.perf_counter() - started, time.monotonic() - deadline, status))
            await asyncio.sleep(1.0)
    return polls


async def new_clients(url: str, deadline: float) -> list[bool]:
    """Whether each new client, one every 2 s, was answered 200 by ``/healthz``."""
    answered: list[bool] = []
    while time.monotonic() < deadline:
        try:
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                answered.append((await client.get("/healthz")).status_code == 200)
        except httpx.HTTPError:
            answered.append(False)
        await asyncio.sleep(2.0)
    return answered


async def watch_clients(url: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    polls, answered = await asyncio.gather(poll_stats(url, deadline), new_clients(url, deadline))
    return {"polls": polls, "answered": answered}


def start_watcher(url: str, seconds: float) -> subprocess.Popen:
    """The stats poller and the new clients, in a process of their own as the dashboard is: measured in the
    attackers' event loop, a poll's latency would include that loop's own delays."""
    return subprocess.Popen([sys.executable, __file__, "--watch", url, "--seconds", str(seconds)],
                            stdout=subprocess.PIPE, text=True)


def collect_watcher(watcher: subprocess.Popen, tally: Tally) -> None:
    found = json.loads(watcher.communicate(timeout=60)[0])
    for latency, at, status in found["polls"]:
        tally.stats_latency.append(latency)
        tally.stats_at.append(at)
        tally.record("stats", status)
    tally.new_clients = [len(found["answered"]), sum(found["answered"])]


async def grid_flood(url: str, tally: Tally, deadline: float) -> None:
    start = int(time.time()) - 86_400  # from a day back: the rows reach into the report window
    feed = "".join(f"{start + 60 * i},{i % 9},1\n" for i in range(10_000)).encode()
    huge = "".join(f"{start + 60 * i},{i % 9},1\n" for i in range(60_000)).encode()
    async with httpx.AsyncClient(base_url=url, timeout=30, headers={"Content-Type": "text/csv"}) as client:
        while time.monotonic() < deadline:
            for body, what in ((feed, "grid feed"), (huge, "grid 60k")):
                try:
                    tally.record(what, (await client.post("/api/grid", content=body)).status_code)
                except httpx.HTTPError as error:
                    tally.record(what, type(error).__name__)


async def aborted_exports(url: str, tally: Tally, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            try:
                async with asyncio.timeout(0.5):
                    async with client.stream("GET", "/api/export", params={"from": "-8d", "format": "csv"}) as answer:
                        tally.record("export", answer.status_code)
                        async for _ in answer.aiter_bytes():
                            pass
            except TimeoutError:
                tally.record("export", "aborted")
            except httpx.HTTPError as error:
                tally.record("export", type(error).__name__)


async def hold(port: int, first: bytes, drip: bytes | None, every_s: float, deadline: float, what: str,
               tally: Tally, retry_s: float = 1.0) -> None:
    """One connection that sends ``first`` and then ``drip`` every ``every_s`` (None: nothing more), opened
    again ``retry_s`` after the service closes it (as a client's retry loop would)."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if first:
                writer.write(first)
            while time.monotonic() < deadline:
                try:
                    answer = await asyncio.wait_for(reader.read(64), every_s)
                except TimeoutError:
                    if drip:
                        writer.write(drip)
                    continue
                tally.record(what, answer[9:12].decode(errors="replace") if answer else "closed")
                break
            writer.close()
            await asyncio.sleep(retry_s)
        except OSError as error:
            tally.record(what, type(error).__name__)
            await asyncio.sleep(0.5)


async def heavy_history(url: str, names: list[str], tally: Tally, deadline: float) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        params = {"metrics": ",".join(names), "from": "-7d", "agg": "avg,min,max,last", "points": "11000"}
        while time.monotonic() < deadline:
            try:
                answer = await client.get("/api/history", params=params)
                tally.record("history", answer.status_code)
                if answer.status_code == 503:
                    await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            except httpx.HTTPError as error:
                tally.record("history", type(error).__name__)


async def trees(url: str, tally: Tally, sleepers: list[int]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        # one tree each (those beyond max_tracked_trees are refused), then 500 comparisons of one tree
        for pids, what in [([pid], "tree") for pid in sleepers] + [([1], "pid 1")] * 500:
            try:
                answer = await client.post("/api/comparisons", json={"models": ["m"], "status": "running",
                                                                     "pids": pids})
                tally.record(what, answer.status_code)
            except httpx.HTTPError as error:
                tally.record(what, type(error).__name__)


async def attack(url: str, port: int, args: argparse.Namespace, tally: Tally, sleepers: list[int]) -> float:
    deadline = time.monotonic() + args.seconds
    body_head = (b"POST /api/comparisons HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1048576\r\n\r\n" + b" " * (1024 * 1024 - 1))
    tasks = []
    optional = {"grid": lambda: grid_flood(url, tally, deadline),
                "exports": lambda: aborted_exports(url, tally, deadline), "trees": lambda: trees(url, tally, sleepers)}
    tasks += [make() for name, make in optional.items() if name not in args.skip]
    tasks += [hold(port, b"", None, 5.0, deadline, "idle", tally) for _ in range(args.idle)]
    tasks += [hold(port, b"GET /api/comparisons HTTP/1.1\r\nHost: localhost\r\n", b"X-Slow: 1\r\n", 2.0, deadline,
                   "slow", tally) for _ in range(args.slow)]
    tasks += [hold(port, body_head, None, 5.0, deadline, "held body", tally, retry_s=5.0) for _ in range(args.held)]
    names = [m["name"] for m in httpx.get(url + "/api/metrics").json() if m["kind"] != "counter"][:16]
    tasks += [heavy_history(url, names, tally, deadline) for _ in range(args.heavy)]
    started = time.time()
    await asyncio.gather(*tasks)
    return started


def percentile(ordered: list[float], share: float) -> float:
    """In ms, of latencies in seconds, sorted."""
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)] * 1000 if ordered else float("nan")


def watch(pid: int, stop_at: float) -> tuple[int, int]:
    """(the most descriptors open, the peak RSS in MB) of ``pid`` until ``stop_at`` (monotonic)."""
    most_fds = 0
    while time.monotonic() < stop_at:
        try:
            most_fds = max(most_fds, len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            break
        time.sleep(0.5)
    try:
        with open(f"/proc/{pid}/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    except OSError:
        peak = -1024  # the service is gone
    return most_fds, peak // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--held", type=int, default=300)
    parser.add_argument("--heavy", type=int, default=8)
    parser.add_argument("--skip", default="", help="comma-separated attacks left out: grid, exports, trees")
    parser.add_argument("--watch", metavar="URL", help=argparse.SUPPRESS)  # the watcher process (start_watcher)
    args = parser.parse_args()
    if args.watch:
        print(json.dumps(asyncio.run(watch_clients(args.watch, args.seconds))))
        return 0
    args.skip = set(filter(None, args.skip.split(",")))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this client opens thousands itself
    workdir = Path(tempfile.mkdtemp(prefix="tsstats-abuse-"))
    db = workdir / "abuse.duckdb"
    subprocess.run([sys.executable, "-m", "tsstats", "synth", "--days", "1", "--hz", "1", "--db", str(db)],
                   check=True, capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", "--db", str(db), "--port", str(port),
                                "--powercap-root", str(workdir / "none")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(40)]
    tally = Tally()
    try:
        wait_ready(url, "/healthz")
        import threading

        measured: list[tuple[int, int]] = []
        watcher = threading.Thread(target=lambda: measured.append(watch(service.pid, time.monotonic()
                                                                        + args.seconds + 5)))
        watcher.start()
        clients = start_watcher(url, args.seconds)
        started = asyncio.run(attack(url, port, args, tally, [p.pid for p in sleepers]))
        ended = time.time()
        collect_watcher(clients, tally)
        watcher.join()
    finally:
        for sleeper in sleepers:
            sleeper.kill()
        service.terminate()
        service.wait(60)
    with duckdb.connect(str(db), read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM samples WHERE ts_ms >= ? AND ts_ms < ?",
                           [int(started * 1000), int(ended * 1000)]).fetchall()[0][0]
    left = [name for name in os.listdir(workdir) if name.startswith(".tsstats-out-")]
    expected = (ended - started) * SAMPLE_HZ
    latencies = sorted(tally.stats_latency)
    p99 = percentile(latencies, 0.99)
    steady = percentile(sorted(latency for latency, at in zip(tally.stats_latency, tally.stats_at, strict=True)
                               if args.seconds + at > RAMP_S), 0.99)
    most_fds, peak_mb = measured[0] if measured else (0, 0)
    print(f"window {ended - started:.0f} s; answers: " + ", ".join(f"{key} x{count}" for key, count in
                                                                    sorted(tally.statuses.items())))
    print(f"samples kept      {kept} of {expected:.0f} expected = {100 * kept / expected:.1f} % (target >= 95 %)")
    print(f"stats p99         {p99:.1f} ms over {len(latencies)} polls, {steady:.1f} ms after the first {RAMP_S:g} s "
          f"(the attacks opening their connections), median {statistics.median(latencies) * 1000:.1f} ms "
          "(target < 50 ms)")
    slowest = sorted(zip(tally.stats_latency, tally.stats_at, strict=True), reverse=True)[:3]
    print("slowest polls     " + ", ".join(f"{latency * 1000:.0f} ms at {args.seconds + at:.0f} s"
                                            for latency, at in slowest))
    print(f"RSS peak          {peak_mb} MB (target < 300 MB)")
    print(f"descriptors       at most {most_fds} open")
    print(f"files left        {len(left)} (target 0)")
    print(f"status 500        {tally.server_errors} (target 0)")
    print(f"new clients       {tally.new_clients[1]} of {tally.new_clients[0]} answered (target all)")
    met = (kept >= 0.95 * expected and p99 < 50 and peak_mb < 300 and not left and not tally.server_errors
           and tally.new_clients[0] == tally.new_clients[1])
    print("targets met" if met else "targets NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
