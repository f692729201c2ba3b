"""The real service as a process: ``python -m tsstats serve`` on a free port with a real DuckDB file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

FAKE_MODULES = Path(__file__).parent / "fake_modules"  # a pynvml driven by FAKE_NVML_GPUS, for processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_hardware_env(gpus: list[dict] | None = None) -> dict[str, str]:
    """Environment for a process that must see the fake pynvml (``gpus``, default none) and a fake AMD SMI with
    no GPU instead of the host's."""
    tests = str(FAKE_MODULES.parents[1])  # the fake module is support.nvml's
    path = os.pathsep.join(filter(None, [str(FAKE_MODULES), tests, os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "FAKE_NVML_GPUS": json.dumps(gpus or []), "FAKE_AMDSMI_GPUS": "[]"}


def clean_env(env: dict[str, str] | None = None, gpus: list[dict] | None = None,
              host_hardware: bool = False) -> dict[str, str]:
    """This process's environment without any ``TSSTATS_*`` variable (a developer's own would change what a test
    sees), on the fake hardware unless ``host_hardware``, with ``env`` on top."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    return {**inherited, **({} if host_hardware else fake_hardware_env(gpus)), **(env or {})}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300, gpus: list[dict] | None = None,
            host_hardware: bool = False, **options) -> subprocess.CompletedProcess[str]:
    """``python -m tsstats ARGS`` as a user runs it, to its end: its output captured as text, in ``clean_env``."""
    return subprocess.run([sys.executable, "-m", "tsstats", *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(env, gpus, host_hardware), **options)


class ServerProcess:
    """``python -m tsstats serve`` on a free port with a real DuckDB file.

    By default it sees fake hardware, so that tests hold on any host: no GPU (the fake pynvml, or the GPUs in
    ``gpus``) and no RAPL counters (an empty powercap root). ``host_hardware=True`` lets it read the host's.
    It samples at the full rate throughout (``--idle-sample-hz`` equal to ``--sample-hz``) unless a test names its
    own idle rate, as ``InProcessService`` does and for the same reason."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None,
                 gpus: list[dict] | None = None, host_hardware: bool = False):
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--db", str(db), "--port", str(self.port), *args]
        if "--idle-sample-hz" not in args:
            self.args += ["--idle-sample-hz", args[args.index("--sample-hz") + 1] if "--sample-hz" in args else "10"]
        inherited = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
        hardware = {}
        if not host_hardware:
            hardware = fake_hardware_env(gpus)
            if "--powercap-root" not in args:
                self.args += ["--powercap-root", str(db.parent / "no-powercap")]
        self.env = {**inherited, "PYTHONUNBUFFERED": "1", **hardware, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.output = ""

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServerProcess:
        self.process = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", *self.args], env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.output = self.process.stdout.read()
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output}")
            try:
                response = httpx.get(self.url + "/healthz", timeout=1.0)
                if response.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def auth_headers(self) -> dict[str, bytes]:
        """The token's header as its UTF-8 bytes, as the clients send it."""
        token = self.env.get("TSSTATS_TOKEN")
        return {"Authorization": b"Bearer " + token.encode()} if token else {}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, headers=self.auth_headers())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output = self.process.stdout.read()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
