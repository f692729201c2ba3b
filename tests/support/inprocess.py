"""The real Sanic app over a real service (DuckDB file, sampler thread) on fake hardware, called in process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support.nvml import FakeGpu, fake_nvml
from support.procfs import FIXTURES


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

        headers = {"Host": "localhost:8000", **self.headers, **(kwargs.pop("headers", None) or {})}
        call = getattr(self.app.asgi_client, method.lower())
        try:
            _, response = asyncio.run(call(path, headers=headers, **kwargs))
        except SystemError as error:
            # the ASGI client starts the app on each call, and Sanic compiles its router with ast.parse, which on
            # CPython 3.11 can raise a spurious "AST constructor recursion depth mismatch" in a threaded process
            # (python/cpython#106905; seen once in a clean clone's run): the same call once more, nothing of it
            # having reached a handler
            if "AST constructor recursion depth mismatch" not in str(error):
                raise
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
    """A started service on canned procfs, a fake NVML and a fake (or no) powercap tree, with its app.

    It samples at the full rate throughout (``idle_sample_hz`` equal to ``sample_hz``) unless a test names its own
    idle rate: these tests are about what the service does while someone looks at it; the idle rate has tests of
    its own (``test_the_full_rate_only_while_something_needs_it``, ``test_unpolled_it_samples_at_the_idle_rate``)."""

    def __init__(self, root: Path, gpus: list[FakeGpu] | None = None, powercap: Path | None = None,
                 **settings: str):
        from sanic import Sanic

        from tsstats.assembly import open_service
        from tsstats.core.settings import load_settings

        Sanic.test_mode = True
        proc = root / "proc"
        if not proc.exists():
            shutil.copytree(FIXTURES / "proc", proc)
        flags = {"db": str(root / "service.duckdb"), "proc_root": str(proc),
                 "powercap_root": str(powercap or root / "no-powercap"), **settings}
        flags.setdefault("idle_sample_hz", flags.get("sample_hz", "10"))
        self.settings = load_settings(flags, env={"HOME": str(root)})
        self.service = open_service(self.settings, nvml=fake_nvml(gpus, init_fails=not gpus))
        self.service.start()
        InProcessService.apps += 1
        self.app = self.service.app(name=f"inprocess{InProcessService.apps}")

    apps = 0

    def client(self, token: str | None = None) -> InProcessClient:
        return InProcessClient(self.app, {"Authorization": f"Bearer {token}"} if token else None)

    def close(self) -> None:
        self.service.stop()
