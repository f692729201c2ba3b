"""``tsstats serve``: sample this machine and serve the HTTP API until SIGTERM, SIGINT or SIGHUP; flushed and
checkpointed on the way out."""

from __future__ import annotations

import gc
import logging
import sys

from sanic import Sanic

from tsstats.api.exposure import tls_context
from tsstats.assembly import StartupError, connection_protocol, open_service
from tsstats.cli.exits import EXIT_FAILURE
from tsstats.cli.stopping import StopSignals, stop_on_signals
from tsstats.client.holder import remove_holder, write_holder
from tsstats.client.service import listening_url
from tsstats.core.settings import Settings
from tsstats.storage.sql import StoreError


def announce(settings: Settings, tls: bool) -> None:
    """Write the runtime file by which a client command given only ``--db`` finds this service."""
    try:
        write_holder(settings.db, listening_url(settings.host, settings.port, "https" if tls else "http"))
    except OSError as error:
        logging.getLogger("tsstats").warning("cannot write the runtime file beside %s (clients given only --db "
                                             "will not find this service): %s", settings.db, error)


def run_serve(settings: Settings) -> int:
    log = logging.getLogger("tsstats")
    signals = StopSignals()
    signals.hold()  # first: every thread started from here on leaves the stop signals to the signal thread
    if settings.value_source("token") == "flag --token":
        log.warning("--token puts the token on the command line, which every local user can read (ps, "
                    "/proc/PID/cmdline); give it in a file instead: token_file (--token-file, TSSTATS_TOKEN_FILE)")
    try:
        tls = tls_context(settings)
        service = open_service(settings)
    except (StartupError, StoreError) as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    app = service.app()
    protocol = connection_protocol(settings)

    @app.before_server_start
    async def start_sampling(app: Sanic) -> None:
        service.start()
        # Everything loaded so far lives as long as the process: keep it out of the collector's full passes,
        # which would otherwise walk every module's objects and show up as latency spikes.
        gc.collect()
        gc.freeze()
        log.info("sampling at %g Hz into %s; serving on %s://%s:%d", settings.sample_hz, settings.db,
                 "https" if tls else "http", settings.host, settings.port)

    @app.after_server_stop
    async def stop_sampling(app: Sanic) -> None:
        remove_holder(settings.db)
        if service.stop():
            log.error("stopped; %d samples could not be written to %s (see the errors above)", service.unwritten,
                      settings.db)
        else:
            log.info("stopped; samples flushed and checkpointed to %s", settings.db)

    stop_on_signals(app, signals, lambda: announce(settings, tls is not None))  # after the other listeners
    try:
        app.run(host=settings.host, port=settings.port, single_process=True, access_log=False,
                debug=False, motd=False, ssl=tls, protocol=protocol, backlog=1024)
    except OSError as error:
        print(f"tsstats: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        remove_holder(settings.db)
        service.stop()  # idempotent: after_server_stop has usually done it
    return EXIT_FAILURE if service.unwritten else 0
