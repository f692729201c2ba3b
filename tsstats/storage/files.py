"""Files the store writes besides its own: what is left of one being written is removed."""

from __future__ import annotations

import glob
import os


def scratch_prefix(database_path: str) -> str:
    """The name every scratch file of the service holding ``database_path`` starts with: the database's own
    name in it, so that only the service holding that file (it is locked) ever removes them."""
    return f".tsstats-out-{os.path.basename(database_path)}-"


def remove_leftovers(database_path: str) -> list[str]:
    """Remove the scratch files (exports, backups) a crash left beside the database; the paths removed."""
    pattern = os.path.join(os.path.dirname(os.path.abspath(database_path)),
                           glob.escape(scratch_prefix(database_path)) + "*")
    removed = []
    for path in glob.glob(pattern):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def remove_partial(path: str) -> None:
    """Remove a file being written, and the WAL beside it if it was a database."""
    for leftover in (path, path + ".wal"):
        if os.path.exists(leftover):
            os.unlink(leftover)
