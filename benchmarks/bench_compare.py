"""The same two commands under hyperfine and ``tsstats compare``, in one run: both time estimates side by side
(they must agree within their intervals), and the energy figures hyperfine cannot give.

    python benchmarks/bench_compare.py [--runs 10] [--work 2000000]

Installs Debian's hyperfine if it is missing (the benchmark's own need, not the project's), starts a tsstats
service on a new database, and compares ``python -c 'sum of squares to N'`` with the same for 2N: hyperfine
``--warmup 1 --runs R --export-json``, then ``tsstats compare --warmup 1 --runs R --allow-unfair --export-json``.
Prints, for each command, hyperfine's mean ± σ and its own interval (mean ± t·σ/√n), tsstats' mean ± σ and 95 %
interval, whether the two intervals overlap, and the ratio of the means by each; then tsstats' energy per run
and its ratio with a verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from servers import free_port, wait_ready  # noqa: E402

from tsstats.client.statistics import describe  # noqa: E402


def hyperfine() -> str:
    found = shutil.which("hyperfine")
    if found:
        return found
    print("installing Debian's hyperfine ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "hyperfine"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("hyperfine") or "hyperfine"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--work", type=int, default=2_000_000, help="N: the first command sums N squares")
    args = parser.parse_args()
    work = "import sys; sum(i * i for i in range(int(sys.argv[1])))"
    commands = [[sys.executable, "-c", work, str(args.work)], [sys.executable, "-c", work, str(2 * args.work)]]
    names = ["single", "double"]
    directory = tempfile.mkdtemp(prefix="bench-compare-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", "--db", os.path.join(directory, "c.duckdb"),
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, "/healthz")
        hyper_json = os.path.join(directory, "hyperfine.json")
        quoted = [shlex.join(command) for command in commands]
        subprocess.run([hyperfine(), "--warmup", "1", "--runs", str(args.runs), "--export-json", hyper_json, *quoted],
                       check=True, stdout=subprocess.DEVNULL)
        ours_json = os.path.join(directory, "tsstats.json")
        separated = [word for command in commands for word in ["--", *command]]
        subprocess.run([sys.executable, "-m", "tsstats", "compare", "--url", url, "--warmup", "1", "--runs",
                        str(args.runs), "--allow-unfair", "--seed", "1", "--name", names[0], "--name", names[1],
                        "--export-json", ours_json, *separated], check=True, stdout=subprocess.DEVNULL)
    finally:
        service.terminate()
        service.wait(30)
    theirs = json.load(open(hyper_json))["results"]
    ours = json.load(open(ours_json))
    print(f"{'command':8s} {'hyperfine mean ± σ [95 % CI]':38s} {'tsstats compare mean ± σ [95 % CI]':38s} overlap")
    means = {}
    for name, hyper, mine in zip(names, theirs, ours["commands"], strict=True):
        theirs_described = describe(hyper["times"])
        ours_described = mine["time"]
        overlap = theirs_described.ci_low <= ours_described["ci_high"] and \
            ours_described["ci_low"] <= theirs_described.ci_high
        means[name] = (theirs_described.mean, ours_described["mean"])
        print(f"{name:8s} {hyper['mean']:.4f} ± {hyper['stddev']:.4f} s "
              f"[{theirs_described.ci_low:.4f}, {theirs_described.ci_high:.4f}]      "
              f"{ours_described['mean']:.4f} ± {ours_described['stdev']:.4f} s "
              f"[{ours_described['ci_low']:.4f}, {ours_described['ci_high']:.4f}]      {'yes' if overlap else 'NO'}")
    print(f"time ratio double/single: hyperfine {means['double'][0] / means['single'][0]:.2f}, "
          f"tsstats compare {means['double'][1] / means['single'][1]:.2f}")
    energy = ours["ratios"]["energy"]
    for mine in ours["commands"]:
        if mine["energy"]:
            print(f"{mine['name']:8s} energy per run {mine['energy']['mean']:.4g} J ± {mine['energy']['stdev']:.2g} "
                  f"[95 % CI {mine['energy']['ci_low']:.4g}, {mine['energy']['ci_high']:.4g}] (hyperfine: none)")
    if energy:
        found = energy[0]
        print(f"energy ratio {found['other']}/{found['base']}: {found['value']:.2f} ± {found['spread']:.2f} "
              f"(95 % CI {found['ci_low']:.2f}-{found['ci_high']:.2f}; "
              f"{'significant' if found['significant'] else 'not significant'}, p = {found['p']:.2g})")
    shutil.rmtree(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
