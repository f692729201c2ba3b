"""What can go wrong with the database file, as the errors the rest of tsstats catches."""

from __future__ import annotations

import os
import re

import duckdb


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


class StoreLocked(StoreError):
    """Another process holds the database file; ``pid`` is that process where DuckDB names it."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


class StoreUnavailable(StoreError):
    """The database cannot be written for now (a full disk, or a failure that invalidated it and is being
    repaired by reopening it); nothing of the refused work was written. Retry after ``retry_after_s``."""

    def __init__(self, reason: str, retry_after_s: int = 10):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class ReadsBusy(StoreError):
    """As many heavy reads as may be at once are running or waiting (answered 503 with ``Retry-After``)."""

    retry_after_s = 1


class InsufficientStorage(StoreError):
    """A write that would not fit: the space it needs and the space there is (answered with 507)."""

    def __init__(self, message: str, needed_bytes: int, free_bytes: int):
        super().__init__(message)
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes


_FULL_DISK = ("no space left on device", "disk quota exceeded", "file too large")


def storage_failure(path: str, error: BaseException) -> tuple[str, bool] | None:
    """What ``error`` says of the storage under ``path``: (the reason writes fail, whether DuckDB has
    invalidated the database so that it must be reopened), or None for an error of the work itself."""
    text = str(error)
    lowered = text.lower()
    invalidated = isinstance(error, duckdb.FatalException) or "database has been invalidated" in lowered
    directory = os.path.dirname(os.path.abspath(path))
    if any(words in lowered for words in _FULL_DISK):
        return f"the file system holding {directory} is full ({_first_line(text)})", invalidated
    if invalidated:
        return f"the database failed and is being reopened ({_first_line(text)})", True
    if isinstance(error, duckdb.IOException) or "could not write" in lowered or "read-only file system" in lowered:
        return f"the database file {path} cannot be written ({_first_line(text)})", False
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"


def lock_holder_pid(error: Exception) -> int | None:
    """The process DuckDB's lock error names as holding the file (``... (PID 1234) ...``)."""
    found = re.search(r"\(PID (\d+)\)", str(error))
    return int(found.group(1)) if found else None


def lock_message(path: str, error: Exception) -> str:
    text = str(error)
    holder = re.search(r"Conflicting lock is held in (.+?)(?:\.\s|$)", text)
    who = f" by {holder.group(1).strip()}" if holder else ""
    return (f"database file {path} is in use{who}; another tsstats may be serving it. "
            f"Stop it, or pass --db with another file.")
