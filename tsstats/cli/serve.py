"""``tsstats serve``: sample this machine and serve the HTTP API until SIGTERM, SIGINT or SIGHUP; flushed and
checkpointed on the way out.

Stop signals (SIGTERM, SIGINT, SIGHUP), none of them lost however early they come (``StopSignals``).

The signals are blocked from the first moment of ``serve`` in the main thread, so in every thread started after
it, and one thread takes them with ``sigwait``. A blocked signal is queued, never dropped: not while the server
starts, and not in the instant when Sanic sets SIGTERM and SIGINT to "ignore" before installing its own
handlers (a signal delivered then would be lost). A stop asked for before the server runs is carried out as
soon as it does.

Sanic stops by stopping the event loop, and it runs its start-up hooks on the same loop with
``run_until_complete`` before it runs it for good: a stop that lands inside a hook's run ends that run, not the
server's, and is lost. So the stop is armed by a callback that the last start-up hook schedules, which runs in the
very iteration that ends the hooks' run: every stop from then on (and one asked for before) is queued after it,
for the server's own run; and a stop that has not taken effect is asked again (``STOP_AGAIN_S``) until the server
begins to stop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from sanic import Sanic

from tsstats.api.exposure import tls_context
from tsstats.assembly import StartupError, connection_protocol, open_service
from tsstats.cli.runtime import EXIT_FAILURE
from tsstats.client.service import listening_url, remove_holder, write_holder
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
                debug=False, motd=False, ssl=tls, protocol=protocol, backlog=1024, register_sys_signals=False)
    except OSError as error:
        print(f"tsstats: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        remove_holder(settings.db)
        service.stop()  # idempotent: after_server_stop has usually done it
    return EXIT_FAILURE if service.unwritten else 0


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
STOP_AGAIN_S = 0.5  # a stop that has not ended the server by then is asked again
log = logging.getLogger("tsstats")


class StopSignals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None
        self._requested: signal.Signals | None = None

    def hold(self) -> None:
        """Block the stop signals and start the thread that takes them (main thread, before any other starts);
        keep Sanic from ignoring them as its server starts (``keep_pending``)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        keep_pending()
        threading.Thread(target=self._take, name="tsstats-signals", daemon=True).start()

    def serving(self, stop: Callable[[], None], early: Callable[[], object]) -> None:
        """The server runs: ``stop()`` (callable from any thread) stops it; ``early()`` is called instead if a
        signal came before."""
        with self._lock:
            self._stop = stop
            requested = self._requested
        if requested is not None:
            early()

    def _take(self) -> None:
        while True:
            number = signal.Signals(signal.sigwait(STOP_SIGNALS))
            if number == signal.SIGHUP:
                log.warning("SIGHUP: stopping as on SIGTERM (flush, checkpoint, exit 0); restart to apply new "
                            "settings")
            else:
                log.info("%s: stopping (flush, checkpoint, exit 0)", number.name)
            with self._lock:
                self._requested = self._requested or number
                stop = self._stop
            if stop is not None:
                stop()


def keep_pending() -> None:
    """Sanic sets SIGINT and SIGTERM to SIG_IGN as its server starts (``sanic.server.runners``, before it installs
    handlers of its own), and setting SIG_IGN discards a signal already pending (POSIX): a SIGTERM sent as the
    first answer left, not yet taken by the signal thread on a busy machine, was lost and the service went on
    serving (1 start in 10 beside three CPU burners). Here the stop signals are blocked and taken by the signal
    thread alone, so Sanic's calls for them are skipped (and ``app.run`` registers no handlers of its own)."""
    from sanic.server import runners

    if getattr(runners.signal_func, "keeps_stop_signals", False):
        return
    original = runners.signal_func

    def signal_func(number: int, handler: Any) -> Any:
        if number in STOP_SIGNALS:
            return None
        return original(number, handler)

    signal_func.keeps_stop_signals = True  # type: ignore[attr-defined]
    runners.signal_func = signal_func  # type: ignore[assignment]


def stop_on_signals(app: Sanic, signals: StopSignals, started: Callable[[], None] = lambda: None) -> None:
    """Register on ``app`` (after every other listener) what makes a stop signal end the server, whenever it
    comes: SIGTERM, SIGINT and SIGHUP stop it (flushed and checkpointed, exit 0); ``started()`` runs once it
    serves, before the stop is armed."""
    stopping = threading.Event()  # the server has begun to stop: no more asking

    @app.after_server_start
    async def arm_stop(app: Sanic) -> None:
        loop = asyncio.get_running_loop()

        def stop_now() -> None:
            if stopping.is_set():
                return
            app.stop(False)
            loop.call_later(STOP_AGAIN_S, stop_now)

        def stop() -> None:  # from the signal thread
            try:
                loop.call_soon_threadsafe(stop_now)
            except RuntimeError:  # the loop has already closed: it is stopping anyway
                pass

        def arm() -> None:  # runs in the iteration that ends the start-up hooks' run of the loop
            signals.serving(stop, early=lambda: loop.call_soon(stop_now))

        started()
        loop.call_soon(arm)  # last: nothing of this hook may run the loop after it

    @app.before_server_stop
    async def stop_began(app: Sanic) -> None:
        stopping.set()
