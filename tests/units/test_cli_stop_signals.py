"""The stop signals stay with tsstats' signal thread as Sanic's server starts: Sanic's setting of SIG_IGN, which
would discard a SIGTERM still pending (a stop sent as the first answer left), is skipped for them."""

from __future__ import annotations

import signal

from sanic.server import runners

from tsstats.cli.serve import keep_pending


def test_sanic_starting_its_server_leaves_the_stop_signals_as_they_were(monkeypatch):
    monkeypatch.setenv("SANIC_WORKER_PROCESS", "")  # set by the call below; put back after the test
    monkeypatch.setattr(runners, "signal_func", runners.signal_func)  # put back after the test
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    keep_pending()
    keep_pending()  # once is enough: a second call wraps nothing again
    assert getattr(runners.signal_func, "keeps_stop_signals", False)
    runners._setup_system_signals(None, False, False, None)  # what Sanic runs as its server starts
    assert {number: signal.getsignal(number) for number in before} == before
    assert signal.SIG_IGN not in before.values()
