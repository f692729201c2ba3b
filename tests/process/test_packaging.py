"""The package as users install it (not the editable checkout): every module, the schema and the data."""

from __future__ import annotations

import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
from support.server import fake_hardware_env, free_port

ROOT = Path(__file__).parents[2]


def test_the_wheel_carries_every_module_and_data_file(tmp_path):
    # from a copy: a build/ folder left in the checkout would hand setuptools last build's files
    source_tree = tmp_path / "src"
    shutil.copytree(ROOT, source_tree, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "*.duckdb*"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                            str(source_tree)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("tsstats-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {str(path.relative_to(ROOT)) for path in (ROOT / "tsstats").rglob("*")
              if path.is_file() and path.suffix in (".py", ".csv", ".sql", ".js", ".css", ".html")
              and "__pycache__" not in path.parts}
    assert source and source <= names, sorted(source - names)


def test_the_wheel_installs_and_serves_without_the_repository(tmp_path):
    """README's install without a clone: the wheel into a fresh environment, run from a directory that is not
    the checkout (its dependencies taken from this environment, as an index would give them)."""
    source_tree = tmp_path / "src"
    shutil.copytree(ROOT, source_tree, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "*.duckdb*"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheels"),
                            str(source_tree)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    shutil.rmtree(source_tree)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies from this environment (not tsstats itself: the editable checkout must not be seen)
    here = [path for path in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if "site-packages" in path]
    Path(purelib, "dependencies.pth").write_text("\n".join(here) + "\n")
    wheel = next((tmp_path / "wheels").glob("tsstats-*.whl"))
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TSSTATS_") and k != "PYTHONPATH"},
           **fake_hardware_env(), "XDG_DATA_HOME": str(elsewhere), "PYTHONFAULTHANDLER": "1"}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import tsstats; print(tsstats.__file__)"],
                           capture_output=True, text=True, cwd=elsewhere, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel's copy, not the checkout's
    port = free_port()
    server = subprocess.Popen([str(venv / "bin" / "tsstats"), "serve", "--port", str(port)], cwd=elsewhere,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/dashboard/stats", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stdout.read() if server.stdout else ""
            time.sleep(0.2)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler dumps every thread on SIGABRT
            server.send_signal(signal.SIGABRT)
            output = server.communicate(timeout=30)[0]
            raise AssertionError(f"SIGTERM not handled within 30 s; the service said:\n{output}") from None
    assert (elsewhere / "tsstats" / "tsstats.duckdb").exists()
