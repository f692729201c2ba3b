"""Running a job of the sampler thread that may fail: the failure is logged and the thread goes on."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tsstats.storage.store import Store

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
