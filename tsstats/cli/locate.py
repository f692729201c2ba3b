"""Which database a client command (``export``, ``backup``) reads, and whether through a service.

The rules, in order (docs/cli.md):

1. ``--url``, or ``--port``/``--host`` (flag or environment) without ``--db``: the service there, and the
   database it holds. Nothing answering there is an error, never a fall-back to a file.
2. ``--db`` with ``--url``/``--port``: the service there, which must hold that file (checked through
   ``/healthz``); another file is an error naming both.
3. ``--db`` alone (or the default database): the file itself when no process holds it; when a service holds
   it, the service its runtime file names (``<db>.service.json``). A file held by a process that left no
   runtime file is an error naming the holder's pid.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from tsstats.client.holder import drop_stale_holder, holder_path, read_holder
from tsstats.client.service import ServiceClient, ServiceRefused, ServiceUnreachable, listening_url
from tsstats.core.settings import Settings
from tsstats.storage.errors import StoreLocked
from tsstats.storage.sql import Connection


class LocateError(ValueError):
    """The database named cannot be reached as asked; the message names the file, the holder and its URL."""


@dataclass
class Source:
    """Where the data comes from: an open read-only connection to the file, or a service's URL."""

    db: str
    connection: Connection | None = None
    url: str | None = None


def named(args: argparse.Namespace, name: str) -> bool:
    """Whether the user named a setting on the command line or in the environment (not its default)."""
    return getattr(args, name, None) is not None or f"TSSTATS_{name.upper()}" in os.environ


def same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def through_service(url: str, settings: Settings, db: str | None, pid: int | None = None) -> Source:
    try:
        held = ServiceClient(url, settings.token).database_path()
    except ServiceUnreachable as error:
        raise ServiceRefused(0, f"no tsstats service answers at {url}: {error}") from None
    if pid is None and held is not None:  # the runtime file beside the file it holds names its process
        found = read_holder(held)
        pid = found.pid if found is not None else None
    holder = f" (pid {pid})" if pid is not None else ""
    if db is not None and held is not None and not same_file(held, db):
        raise LocateError(f"the service at {url}{holder} holds {held}, not {db}; pass the --db it holds, or the "
                          f"--url or --port of the service that holds {db}")
    if db is not None and held is None:
        raise LocateError(f"cannot tell which database the service at {url}{holder} holds (its /healthz needs the "
                          f"token: pass --token)")
    return Source(db=held or db or "", url=url)


def locate(settings: Settings, args: argparse.Namespace, open_file) -> Source:
    """The source of a client command's data, by the rules above. ``open_file(path)`` opens the file read-only
    (``StoreLocked`` when held)."""
    db_named = named(args, "db")
    if args.url or named(args, "port") or named(args, "host"):
        url = args.url or listening_url(settings.host, settings.port)
        return through_service(url.rstrip("/"), settings, settings.db if db_named else None)
    db = settings.db
    try:
        connection = open_file(db)
    except StoreLocked as locked:
        holder = read_holder(db)
        if holder is None:
            who = f"process {locked.pid}" if locked.pid is not None else "another process"
            raise LocateError(f"{db} is held by {who}, which left no runtime file ({holder_path(db)}) naming its "
                              f"URL (a service still starting writes it once it listens); pass --url or --port of "
                              f"the service that holds it") from None
        try:
            return through_service(holder.url, settings, db, holder.pid)
        except (ServiceRefused, ServiceUnreachable) as error:
            raise LocateError(f"{db} is held by tsstats pid {holder.pid}, which does not answer at {holder.url} "
                              f"({error})") from None
    drop_stale_holder(db)  # no process holds the file: a runtime file beside it is left from a kill
    return Source(db=db, connection=connection)
