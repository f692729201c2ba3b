"""Shared helpers: canned procfs trees, a fake NVML module, a fake powercap tree, and the real server."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import httpx
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
FAKE_MODULES = Path(__file__).parent / "fakes"  # a pynvml driven by FAKE_NVML_GPUS, for processes
NOT_SUPPORTED = 3
UNKNOWN_ERROR = 999


# -- canned procfs --------------------------------------------------------------------------------------
@pytest.fixture
def proc_root(tmp_path) -> Path:
    root = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", root)
    return root


def write_stat(root: Path, busy: int, idle: int, cpus: int = 4) -> None:
    """An aggregate /proc/stat line with ``busy`` user ticks and ``idle`` idle ticks."""
    lines = [f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0"]
    lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(cpus)]
    (root / "stat").write_text("\n".join(lines) + "\n")


# -- fake NVML ----------------------------------------------------------------------------------------
class FakeNVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeGpu:
    def __init__(self, name="Fake GPU", util=50, mem_used=1 << 30, mem_total=8 << 30, power_mw=100_000,
                 energy_mj=0, temperature=60, failing=False, unsupported=(), processes=None):
        """``processes``: {pid: (SM utilization %, GPU memory bytes)} running on this GPU."""
        self.processes = dict(processes or {})
        self.name = name
        self.util = util
        self.mem_used = mem_used
        self.mem_total = mem_total
        self.power_mw = power_mw
        self.energy_mj = energy_mj
        self.temperature = temperature
        self.failing = failing
        self.unsupported = set(unsupported)
        self.calls = {}

    def value(self, field, value):
        self.calls[field] = self.calls.get(field, 0) + 1
        if self.failing:
            raise FakeNVMLError(UNKNOWN_ERROR)
        if field in self.unsupported:
            raise FakeNVMLError(NOT_SUPPORTED)
        return value


def fake_nvml(gpus: list[FakeGpu] | None, init_fails: bool = False) -> types.SimpleNamespace:
    """A stand-in for the pynvml module over ``gpus`` (None or init_fails: no driver)."""
    gpus = gpus or []

    def init():
        if init_fails:
            raise FakeNVMLError(9)  # NVML_ERROR_DRIVER_NOT_LOADED

    return types.SimpleNamespace(
        NVML_ERROR_NOT_SUPPORTED=NOT_SUPPORTED,
        NVML_TEMPERATURE_GPU=0,
        NVMLError=FakeNVMLError,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: "999.99",
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: gpus[i],
        nvmlDeviceGetName=lambda g: g.name,
        nvmlDeviceGetUtilizationRates=lambda g: types.SimpleNamespace(gpu=g.value("utilization", g.util), memory=0),
        nvmlDeviceGetMemoryInfo=lambda g: g.value(
            "memory", types.SimpleNamespace(used=g.mem_used, total=g.mem_total, free=g.mem_total - g.mem_used)),
        nvmlDeviceGetPowerUsage=lambda g: g.value("power", g.power_mw),
        nvmlDeviceGetTotalEnergyConsumption=lambda g: g.value("energy", g.energy_mj),
        nvmlDeviceGetTemperature=lambda g, sensor: g.value("temperature", g.temperature),
        NVML_ERROR_NOT_FOUND=6,
        nvmlDeviceGetProcessUtilization=lambda g, since: g.value("process_utilization", [
            types.SimpleNamespace(pid=pid, smUtil=sm, memUtil=0, timeStamp=since + 1)
            for pid, (sm, _) in g.processes.items()]),
        nvmlDeviceGetComputeRunningProcesses=lambda g: [
            types.SimpleNamespace(pid=pid, usedGpuMemory=memory) for pid, (_, memory) in g.processes.items()],
        nvmlDeviceGetGraphicsRunningProcesses=lambda g: [],
    )


# -- fake powercap --------------------------------------------------------------------------------------
class FakePowercap:
    """A powercap tree: package domains with core/uncore/dram subdomains, counters set by the test."""

    def __init__(self, root: Path, packages: int = 2, max_range_uj: int = 262143328850, dram: bool = True):
        self.root = root
        self.max_range_uj = max_range_uj
        self.domains: dict[str, Path] = {}
        for package in range(packages):
            self._domain(f"intel-rapl:{package}", f"package-{package}")
            self._domain(f"intel-rapl:{package}:0", "core")
            self._domain(f"intel-rapl:{package}:1", "uncore")
            if dram:
                self._domain(f"intel-rapl:{package}:2", "dram")
        self._domain("intel-rapl:9", "psys")
        self._domain("intel-rapl-mmio:0", "package-0")

    def _domain(self, entry: str, name: str) -> None:
        path = self.root / entry
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{self.max_range_uj}\n")
        (path / "energy_uj").write_text("0\n")
        self.domains[entry] = path

    def set(self, entry: str, microjoules: int) -> None:
        (self.domains[entry] / "energy_uj").write_text(f"{microjoules % self.max_range_uj}\n")

    def get(self, entry: str) -> int:
        return int((self.domains[entry] / "energy_uj").read_text())

    def make_unreadable(self, entry: str) -> None:
        """A counter that cannot be read, as for a non-root user since 2020 (a directory raises on open)."""
        path = self.domains[entry] / "energy_uj"
        path.unlink()
        path.mkdir()


# -- the real server ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_hardware_env(gpus: list[dict] | None = None) -> dict[str, str]:
    """Environment for a process that must see the fake pynvml (``gpus``, default none) instead of the host's."""
    path = os.pathsep.join(filter(None, [str(FAKE_MODULES), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "FAKE_NVML_GPUS": json.dumps(gpus or [])}


class ServerProcess:
    """``python -m tsstats serve`` on a free port with a real DuckDB file.

    By default it sees fake hardware, so that tests hold on any host: no GPU (the fake pynvml, or the GPUs in
    ``gpus``) and no RAPL counters (an empty powercap root). ``host_hardware=True`` lets it read the host's."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None,
                 gpus: list[dict] | None = None, host_hardware: bool = False):
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["--db", str(db), "--port", str(self.port), *args]
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

    def auth_headers(self) -> dict[str, str]:
        token = self.env.get("TSSTATS_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, headers=self.auth_headers())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
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


@pytest.fixture
def server_factory(tmp_path):
    started: list[ServerProcess] = []

    def make(*args: str, db: Path | None = None, env: dict[str, str] | None = None, start: bool = True,
             **options):
        server = ServerProcess(db or tmp_path / "tsstats.duckdb", *args, env=env, **options)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop(signal.SIGKILL)


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str):
    """A tmpfs of ``size`` mounted at ``mount`` (needs root, as CI runs; skips otherwise)."""
    mount.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill_up(directory: Path) -> Path:
    """Write zeros into ``directory`` until its file system is full; returns the file (remove it to free)."""
    filler = directory / "filler"
    with open(filler, "wb") as out:
        block = bytes(1 << 16)
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError:
            pass
    return filler


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def dumps(value) -> str:
    return json.dumps(value)


# -- the app in process -------------------------------------------------------------------------------------
class Answer:
    """A response of the in-process client, read as an httpx.Response is."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.content
        self.text = response.text

    def json(self):
        return json.loads(self.content)


class InProcessClient:
    """The real Sanic app over a real service (DuckDB file, sampler thread) on fake hardware, called in process
    through sanic-testing's ASGI client; its calls are httpx.Client's."""

    def __init__(self, app, headers: dict[str, str] | None = None):
        self.app = app
        self.headers = headers or {}

    def request(self, method: str, path: str, **kwargs) -> Answer:
        import asyncio

        headers = {**self.headers, **(kwargs.pop("headers", None) or {})}
        call = getattr(self.app.asgi_client, method.lower())
        _, response = asyncio.run(call(path, headers=headers, **kwargs))
        return Answer(response)

    def get(self, path: str, **kwargs) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Answer:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs) -> Answer:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs) -> Answer:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> Answer:
        return self.request("DELETE", path, **kwargs)

    def options(self, path: str, **kwargs) -> Answer:
        return self.request("OPTIONS", path, **kwargs)


class InProcessService:
    """A started service on canned procfs, a fake NVML and a fake (or no) powercap tree, with its app."""

    def __init__(self, root: Path, gpus: list[FakeGpu] | None = None, powercap: Path | None = None,
                 **settings: str):
        from sanic import Sanic

        from tsstats.config import load_settings
        from tsstats.server import create_app
        from tsstats.service import open_service

        Sanic.test_mode = True
        proc = root / "proc"
        if not proc.exists():
            shutil.copytree(FIXTURES / "proc", proc)
        flags = {"db": str(root / "service.duckdb"), "proc_root": str(proc),
                 "powercap_root": str(powercap or root / "no-powercap"), **settings}
        self.settings = load_settings(flags, env={"HOME": str(root)})
        self.service = open_service(self.settings, nvml=fake_nvml(gpus, init_fails=not gpus))
        self.service.start()
        InProcessService.apps += 1
        self.app = create_app(self.service.view(), name=f"inprocess{InProcessService.apps}")

    apps = 0

    def client(self, token: str | None = None) -> InProcessClient:
        return InProcessClient(self.app, {"Authorization": f"Bearer {token}"} if token else None)

    def close(self) -> None:
        self.service.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A module's in-process service without GPU or RAPL, and a client for it."""
    running = InProcessService(tmp_path_factory.mktemp("api"))
    yield running.client()
    running.close()


@pytest.fixture
def inprocess(tmp_path):
    """Start in-process services with the fakes a test chooses; all are stopped after it."""
    started: list[InProcessService] = []

    def make(**options) -> InProcessService:
        service = InProcessService(tmp_path / f"service{len(started)}", **options)
        started.append(service)
        return service

    yield make
    for service in started:
        service.close()


# hypothesis: the default profile in the test command; `pytest --hypothesis-profile=deep` for a longer search
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("deep", max_examples=3000, deadline=None)
except ImportError:  # pragma: no cover - hypothesis comes with the test extras
    pass
