"""Data out of the running service, which owns the database file: exports and consistent backups, each
made into a temporary file beside the database (once the room it needs is checked: 507 beyond) and
streamed."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Callable

from sanic import Request
from sanic.exceptions import SanicException

from tsstats.api.bodies import NO_STORE, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.comparisons.export import estimated_bytes as comparisons_bytes
from tsstats.comparisons.export import parse_comparisons_export, write_comparisons
from tsstats.storage.export import (
    CONTENT_TYPES,
    backup_bytes,
    check_room,
    copy_database,
    parse_export_query,
    remove_partial,
    scratch_prefix,
    write_export,
)
from tsstats.storage.export import estimated_bytes as export_bytes
from tsstats.storage.history import gpu_indexes
from tsstats.storage.sql import Connection, ReadsBusy, StoreUnavailable

CHUNK_BYTES = 256 * 1024


async def write_scratch(view: ServiceView, work, path: str, what: str) -> None:
    """Write ``path`` on the read pool. A client gone before it is written (the handler cancelled) leaves the
    pool thread writing on: whichever of the two ends last, the thread or the cancelled handler, removes the
    file (decided under a lock, so exactly one does); the service's stop removes whatever is left once the pool
    has finished, and start-up what a crash left."""
    lock = threading.Lock()
    ended = {"abandoned": False, "written": False}

    def write(con: Connection, target: str) -> object:
        try:
            return work(con, target)
        finally:
            with lock:
                ended["written"] = True
                gone = ended["abandoned"]
            if gone:
                remove_partial(target)

    writing = asyncio.ensure_future(view.heavy_read(write, path))
    try:
        await asyncio.shield(writing)
    except asyncio.CancelledError:
        with lock:
            ended["abandoned"] = True
            written = ended["written"]
        if written:
            remove_partial(path)
        writing.add_done_callback(lambda done: done.cancelled() or done.exception())  # its outcome taken: no log
        raise
    except (StoreUnavailable, ReadsBusy):  # for now: 503 with Retry-After
        remove_partial(path)
        raise
    except Exception as error:  # not a matter of waiting: a 500 that says why, in one line
        remove_partial(path)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SanicException(f"the {what} could not be written: {reason}", status_code=500) from None


def add_routes(router: Router, view: ServiceView) -> None:
    directory = view.database_directory
    prefix = scratch_prefix(view.database_path)

    def scratch_path(suffix: str) -> str:
        handle, path = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
        os.close(handle)
        os.unlink(path)  # DuckDB creates it
        return path

    async def stream_file(request: Request, path: str, content_type: str, filename: str) -> None:
        loop = asyncio.get_running_loop()
        headers = {**NO_STORE, **router.answer_headers(request), "Content-Length": str(os.path.getsize(path)),
                   "Content-Disposition": f'attachment; filename="{filename}"'}
        response = await request.respond(content_type=content_type, headers=headers)
        with open(path, "rb") as handle:
            while chunk := await loop.run_in_executor(None, handle.read, CHUNK_BYTES):
                await response.send(chunk)
        await response.eof()

    async def serve_written(request: Request, write: Callable[[Connection, str], object], file_format: str,
                            filename: str, estimate: Callable[[Connection], int]) -> None:
        """Write an export into a scratch file on the read pool (if it fits), stream it, and remove it whatever
        happens."""
        check_room(directory, await view.read(estimate), "the export")
        path = scratch_path(f".{file_format}")
        await write_scratch(view, write, path, "export")
        try:
            await stream_file(request, path, CONTENT_TYPES[file_format], filename)
        finally:
            remove_partial(path)

    @router.route("/api/export", ("GET",), accounted=False)
    async def export(request: Request):
        known = set(await view.read(gpu_indexes)) | view.gpus_present()
        query = parse_export_query(query_values(request, ("metrics", "from", "to", "tier", "format")),
                                   time.time(), known)
        await serve_written(request, lambda con, target: write_export(con, query, target), query.format,
                            f"tsstats-{query.tier}.{query.format}", lambda con: export_bytes(con, query))

    @router.route("/api/export/comparisons", ("GET",), accounted=False)
    async def export_comparisons(request: Request):
        query = parse_comparisons_export(query_values(request, ("from", "to", "format")), time.time())
        await serve_written(request, lambda con, target: write_comparisons(con, query, target), query.format,
                            f"tsstats-comparisons.{query.format}", lambda con: comparisons_bytes(con, query))

    @router.route("/api/backup", ("GET",), accounted=False)
    async def backup(request: Request):
        query_values(request, ())
        check_room(directory, backup_bytes(view.database_path), "the backup")
        path = scratch_path(".duckdb")
        await write_scratch(view, copy_database, path, "backup")
        try:
            await stream_file(request, path, "application/vnd.duckdb", "tsstats-backup.duckdb")
        finally:
            remove_partial(path)
