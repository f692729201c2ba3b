"""Operations: the Prometheus exposition, health and the OpenAPI document (``add_routes``); data out of the running
service (``add_data_routes``), which owns the database file: exports and consistent backups, each made into a
temporary file beside the database (once the room it needs is checked: 507 beyond) and streamed.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from collections.abc import Callable

from sanic import Request
from sanic.exceptions import SanicException
from sanic.response import json as json_response
from sanic.response import raw

from tsstats.api.bodies import NO_STORE, query_values
from tsstats.api.dashboard_json import render_footprint
from tsstats.api.openapi import openapi_document
from tsstats.api.prometheus import CONTENT_TYPE, render_metrics
from tsstats.api.router import Router
from tsstats.api.routes.dashboard import snapshot_source
from tsstats.api.view import ServiceView
from tsstats.comparisons.export import estimated_bytes as comparisons_bytes
from tsstats.comparisons.export import parse_comparisons_export, write_comparisons
from tsstats.sampling.publishing import FAILED_BUILDS_UNHEALTHY
from tsstats.sampling.sampler import HOLD_S
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


def add_routes(router: Router, view: ServiceView) -> None:
    _, current_snapshot = snapshot_source(view)
    document = openapi_document(token_set=router.token is not None)

    @router.route("/openapi.json", ("GET",))
    async def openapi(request: Request):
        return json_response(document)

    @router.route("/metrics", ("GET",))
    async def metrics(request: Request):
        snapshot = await current_snapshot()
        if snapshot is None:
            return raw(b"", content_type=CONTENT_TYPE, status=503, headers=NO_STORE)
        scrape = await view.read(view.full_scrape, snapshot)
        body = await asyncio.get_running_loop().run_in_executor(None, render_metrics, scrape)  # off the loop
        return raw(body, content_type=CONTENT_TYPE, headers=NO_STORE)

    @router.route("/healthz", ("GET",), public=True)
    async def healthz(request: Request):
        health = view.health()
        problems = []
        if health.stalled:
            problems.append("the sampler has not sampled for more than 5 s")
        if health.snapshot is None:
            problems.append("the first stats are not ready yet")
        if health.build_failures >= FAILED_BUILDS_UNHEALTHY:
            problems.append(f"building the stats has failed {health.build_failures} times in a row "
                            f"({health.build_error}); the stats served are "
                            f"{round(health.snapshot_age_s or 0.0)} s old")
        if not health.writable:
            problems.append(f"the database cannot be written: {health.last_error}; {health.samples_held} samples "
                            f"are held in memory (up to {HOLD_S:g} s of them) and written once it can")
        age = None if health.last_sample_age_s is None else round(health.last_sample_age_s, 3)
        body = {
            "status": "ok" if not problems else "unhealthy",
            "lastSampleAgeS": age,
            "database": {"path": health.database_path, "writable": health.writable,
                         "lastError": health.last_error or None, "flushes": health.flushes,
                         "reopens": health.reopens},
            "samplesHeld": health.samples_held,
            "samplesLost": health.samples_lost,
            "footprint": render_footprint(view.footprint()),
            "sampleRateHz": view.rate().hz,
            "stats": None if health.snapshot is None else {
                "builds": health.snapshot.version, "ageS": round(health.snapshot_age_s or 0.0, 3),
                "failedBuilds": health.build_failures, "lastError": health.build_error or None},
            "problems": problems,
        }
        if not router.authorized(request):  # with a token set, a caller without it learns up or down, no more
            body = {"status": body["status"]}
        return json_response(body, status=200 if not problems else 503, headers=NO_STORE)


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


def add_data_routes(router: Router, view: ServiceView) -> None:
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
        query = parse_comparisons_export(query_values(request, ("from", "to", "format")), time.time(),
                                         view.settings.host_name or None)
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
