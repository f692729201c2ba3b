"""The suite's fixtures; the helpers they use live in the ``support`` package."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from support.inprocess import InProcessService
from support.procfs import FIXTURES
from support.server import ServerProcess


@pytest.fixture
def proc_root(tmp_path) -> Path:
    root = tmp_path / "proc"
    shutil.copytree(FIXTURES / "proc", root)
    return root


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


def pytest_addoption(parser):
    parser.addoption("--quiet-tests", choices=("all", "skip", "only"), default="all",
                     help="the tests marked quiet (statistics of measured trials, which other load sways): run them "
                          "with the rest (all), leave them out (skip) or run only them (only); scripts/test.sh runs "
                          "the rest in parallel, then these alone")


def pytest_collection_modifyitems(config, items):
    mode = config.getoption("--quiet-tests")
    if mode == "all":
        return
    kept = [item for item in items if (item.get_closest_marker("quiet") is not None) == (mode == "only")]
    left = [item for item in items if item not in kept]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
