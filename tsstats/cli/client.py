"""The command line's client of a running service (it owns the database file): downloads of exports and
backups into a destination that appears only once complete. Standard library only."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from tsstats.client.service import bearer

CHUNK_BYTES = 256 * 1024


class ServiceError(RuntimeError):
    """The service refused or could not be reached; the message says which and why. ``status`` is the HTTP
    status of a refusal (400: the request's own mistake, as the command line's usage errors)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def service_url(host: str, port: int, scheme: str = "http") -> str:
    """Where a client reaches a service listening on ``host``:``port`` (a wildcard address through loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{shown}:{port}"


def service_database(url: str, token: str) -> str | None:
    """The database file the service at ``url`` holds, from ``GET /healthz`` (None when it does not say: a
    token is needed to see it). ``ServiceError`` when nothing answers there."""
    request = urllib.request.Request(f"{url}/healthz", headers=bearer(token))  # type: ignore[arg-type]
    try:
        with OPENER.open(request, timeout=10) as answer:
            body = answer.read()
    except urllib.error.HTTPError as error:  # 503: unhealthy, the body still says which file
        body = error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise ServiceError(f"no tsstats service answers at {url}: {reason}") from None
    try:
        path = json.loads(body)["database"]["path"]
    except (ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) else None


class SameServiceRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the same scheme, host and port: the token never travels to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            raise ServiceError(f"the service at {req.full_url} redirected to {newurl}, another host; not "
                               f"following it (the token would go with it)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


OPENER = urllib.request.build_opener(SameServiceRedirects)


def download(url: str, token: str, destination: str, progress=None) -> int:
    """GET ``url`` into ``destination`` (a temporary path); returns the bytes written. ``progress(done,
    total)`` is called as chunks arrive."""
    request = urllib.request.Request(url, headers=bearer(token))  # type: ignore[arg-type]
    try:
        with OPENER.open(request, timeout=600) as answer, open(destination, "wb") as out:
            total = int(answer.headers.get("Content-Length") or 0)
            done = 0
            while chunk := answer.read(CHUNK_BYTES):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as error:
        if error.code == 400:  # the same words as the same mistake made against the file
            raise ServiceError(_message(error), 400) from None
        raise ServiceError(f"the service answered {error.code}: {_message(error)}", error.code) from None
    except urllib.error.URLError as error:
        raise ServiceError(f"cannot reach the service at {url}: {error.reason}") from None
    if total and done != total:
        raise ServiceError(f"the service sent {done} of {total} bytes")
    return done


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return error.reason


def with_query(url: str, path: str, values: dict[str, str]) -> str:
    query = urllib.parse.urlencode({key: value for key, value in values.items() if value is not None})
    return f"{url}{path}" + (f"?{query}" if query else "")


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
