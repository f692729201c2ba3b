"""The runtime file beside a served database: which process holds the file and where it answers.

``tsstats serve --db data/a.duckdb`` writes ``data/a.duckdb.service.json`` (its pid, URL, the database's
absolute path and when it started) once it listens, and removes it when it stops. A client command given only
``--db`` reads it to reach the service that holds that file; ``tsstats run``, ``compare`` and ``track`` given no
URL read the one beside ``TSSTATS_DB`` or the default database (``local_service_url``), so a service on another
port is found. A file whose process has gone (a kill -9) is stale and is ignored and removed. Standard library
only.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass

SUFFIX = ".service.json"


@dataclass(frozen=True)
class Holder:
    pid: int
    url: str
    db: str
    started_at: str


def holder_path(db: str) -> str:
    return os.path.abspath(db) + SUFFIX


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def write_holder(db: str, url: str, pid: int | None = None) -> str:
    """Write the runtime file (whole, by a rename) and return its path."""
    path = holder_path(db)
    record = {"pid": pid if pid is not None else os.getpid(), "url": url, "db": os.path.abspath(db),
              "startedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    temporary = f"{path}.{os.getpid()}.partial"
    with open(temporary, "w") as handle:
        json.dump(record, handle)
        handle.write("\n")
    os.replace(temporary, path)
    return path


def remove_holder(db: str, pid: int | None = None) -> None:
    """Remove the runtime file if it still names this process (a later service may have replaced it)."""
    found = read_holder(db, drop_stale=False)
    if found is not None and found.pid == (pid if pid is not None else os.getpid()):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(holder_path(db))


def default_database(env: dict[str, str] | None = None) -> str:
    """The database ``tsstats serve`` uses by default: $XDG_DATA_HOME/tsstats/tsstats.duckdb (the rule of the
    setting ``db``, core.settings.default_db_path, which this layer cannot import)."""
    env = dict(os.environ if env is None else env)
    data_home = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser(env.get("HOME") or "~"), ".local", "share")
    return os.path.join(data_home, "tsstats", "tsstats.duckdb")


def local_service_url(env: dict[str, str] | None = None) -> str | None:
    """The URL of the live service holding ``TSSTATS_DB`` (or the default database), from its runtime file; None
    when none holds it."""
    env = dict(os.environ if env is None else env)
    found = read_holder(env.get("TSSTATS_DB") or default_database(env), drop_stale=False)
    return found.url if found is not None else None


def drop_stale_holder(db: str) -> None:
    """Remove the runtime file beside ``db`` once the file is known to be unheld (it was opened): whatever it
    says is stale."""
    with contextlib.suppress(OSError):
        os.unlink(holder_path(db))


def read_holder(db: str, drop_stale: bool = True) -> Holder | None:
    """The live holder named beside ``db``, or None when there is no file, it cannot be parsed, or its process
    has gone (then the stale file is removed when ``drop_stale``)."""
    path = holder_path(db)
    try:
        with open(path) as handle:
            record = json.load(handle)
        holder = Holder(int(record["pid"]), str(record["url"]), str(record["db"]), str(record.get("startedAt", "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not process_alive(holder.pid):
        if drop_stale:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return None
    return holder
