"""``python -m support.stop_at PHASE serve ARGS...``: ``tsstats serve`` that sends itself SIGTERM at one chosen
moment of its start-up, so that a test stops it at each moment deterministically (not by a race it may or may
not win). The phases, in order:

- ``open``: while the service is being opened (the database, the readers), before any server exists;
- ``before_start``: in a ``before_server_start`` listener;
- ``after_start``: in an ``after_server_start`` listener that runs before tsstats' own;
- ``arming``: just before the stop is armed (the iteration that ends the start-up hooks' run of the loop);
- ``armed``: just after it is armed;
- ``serving``: 0.2 s into the server's own run of the loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import tsstats.cli.serve as serve
from tsstats.cli import main
from tsstats.cli.serve import StopSignals

PHASES = ("open", "before_start", "after_start", "arming", "armed", "serving")


def terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def install(phase: str) -> None:
    opened = serve.open_service

    def open_service(*args, **kwargs):
        service = opened(*args, **kwargs)
        if phase == "open":
            terminate()
        make_app = service.app

        def app(*app_args, **app_kwargs):
            built = make_app(*app_args, **app_kwargs)
            if phase == "before_start":
                built.before_server_start(lambda app: terminate())
            if phase == "after_start":
                built.after_server_start(lambda app: terminate())
            if phase == "serving":
                built.after_server_start(lambda app: asyncio.get_running_loop().call_later(0.2, terminate))
            return built

        service.app = app
        return service

    serve.open_service = open_service
    serving = StopSignals.serving

    def patched(self, stop, early):
        if phase == "arming":
            terminate()
        serving(self, stop, early)
        if phase == "armed":
            terminate()

    StopSignals.serving = patched  # type: ignore[method-assign]


if __name__ == "__main__":
    chosen = sys.argv[1]
    if chosen not in PHASES:
        raise SystemExit(f"phase must be one of {', '.join(PHASES)}")
    install(chosen)
    sys.exit(main(sys.argv[2:]))
