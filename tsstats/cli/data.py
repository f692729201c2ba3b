"""``tsstats export`` and ``tsstats backup``: from the database file when no service holds it, else through
the running service (``GET /api/export``, ``GET /api/backup``), which owns the file. Either way the
destination appears only once complete.

Which database a client command reads, and whether through a service (``locate``), by these rules in order
(docs/cli.md):

1. ``--url``, or ``--port``/``--host`` (flag or environment) without ``--db``: the service there, and the
   database it holds. Nothing answering there is an error, never a fall-back to a file.
2. ``--db`` with ``--url``/``--port``: the service there, which must hold that file (checked through
   ``/healthz``); another file is an error naming both.
3. ``--db`` alone (or the default database): the file itself when no process holds it; when a service holds
   it, the service its runtime file names (``<db>.service.json``). A file held by a process that left no
   runtime file is an error naming the holder's pid.

Files the command line writes (here and ``tsstats synth``'s): the destination is checked first and appears only
once complete (``atomic_output``, ``check_destination``, ``check_directory``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tsstats.cli.runtime import EXIT_FAILURE, EXIT_USAGE
from tsstats.client.service import (
    DestinationFailed,
    ServiceClient,
    ServiceRefused,
    ServiceUnauthorized,
    ServiceUnreachable,
    drop_stale_holder,
    holder_path,
    listening_url,
    read_holder,
    with_query,
)
from tsstats.comparisons.export import parse_comparisons_export, write_comparisons
from tsstats.core.inputs import InputError
from tsstats.core.settings import Settings
from tsstats.storage.export import copy_database, parse_export_query, remove_partial, write_export
from tsstats.storage.history import gpu_indexes
from tsstats.storage.sql import Connection, DatabaseError, StoreError, StoreLocked, connect_read_only


def open_read_only(path: str) -> Connection:
    """The database file, read-only; ``StoreLocked`` when a running service holds it."""
    if not os.path.exists(path):
        raise OutputError(f"no database at {path}; pass --db, or start tsstats serve first")
    try:
        con = connect_read_only(path)
    except StoreLocked:
        raise
    except StoreError as error:
        raise OutputError(str(error)) from None
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_meta'"
                       ).fetchall()[0][0]:
        con.close()
        raise OutputError(f"{path} is not a tsstats database (it has no schema_meta table)")
    return con


def shown_out(path: str) -> str:
    return "standard output" if path == STDOUT else path


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"tsstats: {message}", file=sys.stderr)
    return code


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    try:
        args.format = output_format(args.format, args.out)
    except OutputError as error:
        return _fail(str(error), EXIT_USAGE)
    if args.comparisons:
        return run_comparisons_export(settings, args)
    values = {"from": args.from_, "to": args.to, "metrics": args.metrics, "tier": args.tier, "format": args.format}
    values = {key: value for key, value in values.items() if value is not None}

    def from_file(con: Connection, temporary: str) -> str:
        query = parse_export_query(values, time.time(), set(gpu_indexes(con)))
        if sys.stdout.isatty() and args.out != STDOUT:  # DuckDB draws its own progress bar on the terminal
            con.execute("SET enable_progress_bar = true")
            con.execute("SET progress_bar_time = 500")
        rows = write_export(con, query, temporary)
        return f"wrote {rows:,} rows ({query.tier}, {query.format}) from {settings.db} to {shown_out(args.out)}"

    return _write_out("export", settings, args, from_file, "/api/export", values)


def run_comparisons_export(settings: Settings, args: argparse.Namespace) -> int:
    if args.metrics or args.tier != "raw":
        return _fail("--comparisons exports comparisons, not metrics: drop --metrics and --tier", EXIT_USAGE)
    values = {key: value for key, value in {"from": args.from_, "to": args.to, "format": args.format}.items()
              if value is not None}

    def from_file(con: Connection, temporary: str) -> str:
        query = parse_comparisons_export(values, time.time(), settings.host_name or None)
        rows = write_comparisons(con, query, temporary)
        return (f"wrote {rows:,} comparisons ({query.format}, host {query.host}) from {settings.db} to "
                f"{shown_out(args.out)}")

    return _write_out("export", settings, args, from_file, "/api/export/comparisons", values)


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    if args.out == STDOUT:
        return _fail("a backup is a database file: name one with --out (standard output is for exports)",
                     EXIT_USAGE)
    def from_file(con: Connection, temporary: str) -> str:
        copy_database(con, temporary)
        return f"backed up {settings.db} to {args.out}"

    return _write_out("backup", settings, args, from_file, "/api/backup", {})


def _write_out(what: str, settings: Settings, args: argparse.Namespace, from_file: Callable[[Connection, str], str],
               path: str, values: dict[str, str]) -> int:
    """Write ``args.out`` from the database file, or through the service when one holds the file (or ``--url``
    names it); every failure is one clear line and a non-zero exit, with nothing left under the name."""
    try:
        source = locate(settings, args, open_read_only)
        if source.url:
            progress = ByteProgress(what)
            with atomic_output(args.out, args.force) as temporary:
                size = ServiceClient(source.url, settings.token).download(with_query(path, values), temporary,
                                                                          progress)
            progress.finish()
            message = f"{what}: wrote {size:,} bytes to {shown_out(args.out)} through the service at {source.url} " \
                      f"(database {source.db})"
        else:
            con = source.connection
            assert con is not None  # opened by locate: no service holds the file
            try:
                with atomic_output(args.out, args.force) as temporary:
                    message = from_file(con, temporary)
            finally:
                con.close()
    except LocateError as error:
        return _fail(str(error))
    except InputError as error:
        named = not error.field or error.message.startswith(error.field)  # most messages name their field
        return _fail(error.message if named else f"{error.field}: {error.message}", EXIT_USAGE)
    except OutputError as error:
        return _fail(str(error), EXIT_USAGE)
    except (DatabaseError, OSError) as error:
        return _fail(f"the {what} to {args.out} failed, nothing written: {error}")
    except ServiceRefused as error:
        if error.status == 400:  # the same words as the same mistake made against the file
            return _fail(error.message, EXIT_USAGE)
        return _fail(f"the service answered {error.status}: {error.message}")
    except ServiceUnauthorized as error:
        return _fail(str(error))
    except (ServiceUnreachable, DestinationFailed) as error:
        return _fail(f"the {what} to {args.out} failed, nothing written: {error}")
    print(message, file=sys.stderr if args.out == STDOUT else sys.stdout)  # stdout holds the data then
    return 0


class ByteProgress:
    """A byte counter redrawn in place on a terminal; silent on a pipe."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.active = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.active:
            return
        if total:
            width = 30
            filled = int(width * done / total)
            self.stream.write(f"\r{self.label} [{'#' * filled}{'-' * (width - filled)}] {done / 1e6:8.1f} of "
                              f"{total / 1e6:.1f} MB")
        else:
            self.stream.write(f"\r{self.label} {done / 1e6:8.1f} MB")
        self.stream.flush()

    def finish(self) -> None:
        if self.active:
            self.stream.write("\n")
            self.stream.flush()


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
    held = ServiceClient(url, settings.token).database_path()  # ServiceUnreachable when nothing answers
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
        try:
            return through_service(url.rstrip("/"), settings, settings.db if db_named else None)
        except ServiceUnreachable as error:  # named by the user: an error, never a fall-back to a file
            raise LocateError(str(error)) from None
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


class OutputError(ValueError):
    """The destination cannot be written; the message says which and why."""


def check_destination(path: str, force: bool) -> None:
    if os.path.isdir(path):
        raise OutputError(f"{path} is a directory; name a file")
    if os.path.exists(path) and not force:
        raise OutputError(f"{path} exists; pass --force to replace it")
    check_directory(path)


def check_directory(path: str) -> None:
    """The one rule of export, backup and synth: a file goes into a directory that exists and is writable
    (none of them creates directories)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise OutputError(f"the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise OutputError(f"the directory {directory} is not writable")


STDOUT = "-"  # --out - : standard output, as other tools take it
FORMATS_BY_EXTENSION = {".csv": "csv", ".parquet": "parquet"}


def output_format(given: str | None, path: str) -> str:
    """The export's format: ``--format``, else the destination's extension (CSV for standard output); a
    contradiction between them is refused."""
    extension = os.path.splitext(path)[1].lower() if path != STDOUT else ""
    implied = FORMATS_BY_EXTENSION.get(extension)
    if given and implied and given != implied:
        raise OutputError(f"--format {given} contradicts --out {path} (a {implied} file name); drop one of them")
    if given:
        return given
    if path == STDOUT:
        return "csv"
    if implied is None:
        raise OutputError(f"cannot tell the format of {path} from its name: pass --format csv or --format parquet, "
                          f"or name it .csv or .parquet")
    return implied


@contextmanager
def to_stdout() -> Iterator[str]:
    """A temporary path in a private directory; once the block succeeds its bytes go to standard output, and
    it is removed whatever happens."""
    directory = tempfile.mkdtemp(prefix="tsstats-out-")
    temporary = os.path.join(directory, "out")
    try:
        yield temporary
        with open(temporary, "rb") as source:
            shutil.copyfileobj(source, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def atomic_output(path: str, force: bool = False) -> Iterator[str]:
    """A temporary path beside ``path``, renamed to it when the block succeeds and removed when it fails: no
    partial file is ever left under the destination's name. ``-`` is standard output (``to_stdout``)."""
    if path == STDOUT:
        with to_stdout() as temporary:
            yield temporary
        return
    check_destination(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    os.close(handle)
    os.unlink(temporary)  # DuckDB and downloads create it afresh
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        remove_partial(temporary)
        raise
