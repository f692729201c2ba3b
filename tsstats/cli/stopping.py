"""Stop signals (SIGTERM, SIGINT, SIGHUP), none of them lost however early they come.

The signals are blocked from the first moment of ``serve`` in the main thread, so in every thread started after
it, and one thread takes them with ``sigwait``. A blocked signal is queued, never dropped: not while the server
starts, and not in the instant when Sanic sets SIGTERM and SIGINT to "ignore" before installing its own
handlers (a signal delivered then would be lost). A stop asked for before the server runs is carried out as
soon as it does.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
log = logging.getLogger("tsstats")


class StopSignals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop: Callable[[], None] | None = None
        self._requested: signal.Signals | None = None

    def hold(self) -> None:
        """Block the stop signals and start the thread that takes them (main thread, before any other starts)."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
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
