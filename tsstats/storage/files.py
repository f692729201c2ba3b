"""Files the store writes besides its own: what is left of one being written is removed."""

from __future__ import annotations

import os


def remove_partial(path: str) -> None:
    """Remove a file being written, and the WAL beside it if it was a database."""
    for leftover in (path, path + ".wal"):
        if os.path.exists(leftover):
            os.unlink(leftover)
