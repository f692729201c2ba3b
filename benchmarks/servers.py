"""What the benchmarks share: a free port, a tsstats started and timed to its first answer, a graceful stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

STATS = "/api/dashboard/stats"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, path: str, timeout: float = 30.0) -> None:
    """Return once ``url + path`` answers 200; RuntimeError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}{path} did not answer 200 within {timeout:g} s")


def start_timed(command: list[str], db: str, env: dict[str, str], cwd: str | None = None,
                extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, float, int]:
    """``command serve`` on a free port; (process, seconds from exec to the first answer of the stats route,
    that answer's status)."""
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen([*command, "serve", "--port", str(port), "--db", db, *extra], env=env, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with httpx.Client(timeout=30) as client:
        while process.poll() is None:
            try:
                status = client.get(f"http://127.0.0.1:{port}{STATS}").status_code
            except httpx.TransportError:
                time.sleep(0.002)
                continue
            return process, time.perf_counter() - started, status
    raise RuntimeError(f"{command[0]} exited with {process.returncode} before answering")


def stop(process: subprocess.Popen, label: str = "tsstats") -> None:
    """SIGTERM (never lost, even during start-up: docs/operations.md), SIGKILL if it is not handled within 20 s."""
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        print(f"  {label}: SIGTERM not handled within 20 s; killed")
        process.kill()
        process.wait()


def venv_with(packages: list[str], venv: str | None, tmp: str, probe: str) -> str:
    """A virtual environment holding ``packages`` (another tool measured beside tsstats, never a dependency of
    it): ``venv`` when it already has ``bin/<probe>``, else a new one under ``tmp``. Returns its directory."""
    if venv and os.path.exists(os.path.join(venv, "bin", probe)):
        return venv
    venv = venv or os.path.join(tmp, "venv-" + "-".join(packages))
    print(f"installing {', '.join(packages)} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check", *packages],
                   check=True)
    return venv
