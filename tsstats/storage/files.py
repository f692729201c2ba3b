"""Files the store writes besides its own: the room they need is checked first, and what is left of one being
written is removed."""

from __future__ import annotations

import glob
import os

from tsstats.core.units import MIB
from tsstats.storage.errors import InsufficientStorage

SPACE_KEPT_BYTES = 16 * MIB  # left free for the database's own writes (WAL, checkpoints) when a file is made


def free_bytes(directory: str) -> int:
    """What an unprivileged writer may still write on the file system holding ``directory``."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def check_room(directory: str, needed_bytes: int, what: str) -> None:
    """Refuse (``InsufficientStorage``) a file of about ``needed_bytes`` that would leave less than
    ``SPACE_KEPT_BYTES`` free beside the database."""
    free = free_bytes(directory)
    if needed_bytes + SPACE_KEPT_BYTES > free:
        raise InsufficientStorage(
            f"{what} would take about {needed_bytes / MIB:.1f} MiB and {free / MIB:.1f} MiB are free in {directory}, "
            f"of which {SPACE_KEPT_BYTES / MIB:.0f} MiB stay for the database; free some space or ask for less "
            f"(a shorter range, fewer metrics, a coarser tier, parquet)", needed_bytes, free)


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
    """Remove a file being written, the WAL beside it if it was a database, and its parts (``<path>.part<N>.*``,
    written by chunked exports and backups); what is gone already is no error."""
    for leftover in (path, path + ".wal", *glob.glob(glob.escape(path) + ".part*")):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass
