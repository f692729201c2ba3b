"""What the sampler thread calls of code it does not own: the comparisons it does not know, through the one
interface between the sampler and ``comparisons.lifecycle``, which implements it (``ComparisonHooks``); and any
job that may fail, whose failure is logged while the thread goes on (``run_guarded``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from tsstats.figures.moment import ComparisonFigures
from tsstats.storage.sql import Connection
from tsstats.storage.store import Store


class ComparisonHooks(Protocol):
    """Called on the sampler thread only."""

    @property
    def follows_processes(self) -> bool:
        """Whether a running comparison names processes (else nothing is attributed, nothing is read)."""
        ...

    @property
    def waiting(self) -> bool:
        """Whether a running comparison's processes have exited and its report is waited for."""
        ...

    @property
    def measuring(self) -> bool:
        """Whether a run is being measured now (the sampler keeps its full rate)."""
        ...

    def load(self, con: Connection, now_ms: float) -> None:
        """At start: follow the running comparisons that name processes again."""

    def attribute(self, now_ms: float) -> list[int]:
        """Once a second: share the energy since the last read among the processes followed; returns the running
        comparisons none of whose processes is running any more."""
        ...

    def overdue(self, now_ms: float) -> list[int]:
        """The comparisons whose report has not come within ``report_grace`` of their processes' exit."""
        ...

    def settle(self, con: Connection, exited: list[int], now_ms: float) -> None:
        """In a transaction of its own: close the windows of the comparisons whose processes have all exited, and
        fail the overdue ones."""

    def save(self, con: Connection) -> None:
        """With each flush, in its own transaction: keep what has been attributed so far."""

    def changed(self) -> None:
        """A clock step moved stamped times: what the stats show of comparisons is counted afresh."""

    def committed(self) -> None:
        """A write committed: what it changed of comparisons counts from now on."""

    def rolled_back(self) -> None:
        """A write rolled back: nothing of it counts (nothing of it was counted yet)."""

    def refresh(self, con: Connection, now_ms: float) -> None:
        """Bring what the stats show up to now (the activity window slides; counted afresh after a clock step)."""

    def shown(self) -> ComparisonFigures:
        """What the stats show of comparisons, as last loaded."""


log = logging.getLogger("tsstats.sampler")


def run_guarded(store: Store, job: Callable[[], object], what: str) -> None:
    """Run ``job``; a failure is logged in full, or in one line while the store has said why it cannot be used
    (the job runs again once it recovers)."""
    try:
        job()
    except Exception as error:
        if store.failure is not None:
            log.warning("%s failed while the database cannot be used: %s", what, str(error).splitlines()[0])
        else:
            log.exception("%s failed", what)
