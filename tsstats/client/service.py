"""The one HTTP client of a running tsstats service, for the Python client (``track``, ``compare``) and the
command line (``run``, ``compare``, ``export``, ``backup``): JSON calls with the token, downloads into a file,
the database a service holds; a short connection timeout (a script is never slowed by a service that is down)
and the service's own error messages. A redirect is followed only to the same scheme, host and port (the token
never travels to another host). Standard library only; runs on the caller's thread.

The runtime file beside a served database (``Holder``): which process holds the file and where it answers.

``tsstats serve --db data/a.duckdb`` writes ``data/a.duckdb.service.json`` (its pid, URL, the database's
absolute path and when it started) once it listens, and removes it when it stops. A client command given only
``--db`` reads it to reach the service that holds that file; ``tsstats run``, ``compare`` and ``track`` given no
URL read the one beside ``TSSTATS_DB`` or the default database (``local_service_url``), so a service on another
port is found. A file whose process has gone (a kill -9) is stale and is ignored and removed. Standard library
only.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
CONNECT_TIMEOUT_S = 0.25  # a service that is not there costs a script at most this, twice
ANSWER_TIMEOUT_S = 30.0  # a service that is there answers a write once it has committed
DOWNLOAD_TIMEOUT_S = 600.0  # an export or a backup is written whole before its first byte comes
CHUNK_BYTES = 256 * 1024
MAX_REDIRECTS = 5


def listening_url(host: str, port: int, scheme: str = "http") -> str:
    """Where a client reaches a service listening on ``host``:``port`` (a wildcard address through loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{scheme}://{shown}:{port}"


def say(line: str) -> None:
    """A line on this process's stderr, never anywhere else: with stderr closed (``2>&-``), Python has no
    sys.stderr and print would fall back to stdout, which may be a command's own stream or a report."""
    if sys.stderr is not None:
        print(line, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """A warning of the client's on stderr, ``tsstats: ...``."""
    say(f"tsstats: {message}")


class ServiceUnreachable(ConnectionError):
    """No service answered at the URL."""


class ServiceUnauthorized(ServiceUnreachable):
    """The service refused the token (401): for a script, as good as no service (it runs unmeasured)."""


class DestinationFailed(RuntimeError):
    """A download's file could not be written (a full disk, a folder gone): nothing to do with the service."""


class ServiceRefused(RuntimeError):
    """The service answered with an error: ``status``, its ``message`` and the ``field`` it names."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(f"tsstats answered {status}: {message}" + (f" (field {field})" if field else ""))
        self.status = status
        self.message = message
        self.field = field


def token_in_file(path: str) -> str:
    """The bearer token a file holds (its first line, trimmed); ValueError saying why there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the token file {path}: {error}") from None
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


@dataclass(frozen=True)
class ServiceClient:
    """Where the service is (``TSSTATS_URL``, default http://127.0.0.1:8000) and its token."""

    url: str = DEFAULT_URL
    token: str = ""

    @classmethod
    def from_environment(cls, url: str | None = None, token: str | None = None,
                         token_file: str | None = None) -> ServiceClient:
        """The URL: ``url``, else ``TSSTATS_URL``, else the service holding ``TSSTATS_DB`` or the default database
        (its runtime file, as ``tsstats export`` finds it), else http://127.0.0.1:8000. The token: ``token``, else
        the file ``token_file``, else ``TSSTATS_TOKEN``, else the file
        ``TSSTATS_TOKEN_FILE`` (a file keeps it off the command line, which every local user can read); a file
        that cannot be read is a ValueError saying why."""
        if token is None and token_file:
            token = token_in_file(token_file)
        if token is None:
            token = os.environ.get("TSSTATS_TOKEN") or None
        if token is None and os.environ.get("TSSTATS_TOKEN_FILE"):
            token = token_in_file(os.environ["TSSTATS_TOKEN_FILE"])
        return cls(url or os.environ.get("TSSTATS_URL") or local_service_url() or DEFAULT_URL, token or "")

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the decoded JSON answer (None for an empty one). ServiceUnreachable when nothing
        answers within the connection timeout; ServiceRefused for an error answer."""
        payload = None if body is None else json.dumps(body).encode()
        status, data = self._exchange(method, path, payload, lambda answer: answer.read())
        if status >= 400:
            raise _refused(status, data)
        return json.loads(data) if data else None

    def download(self, path: str, destination: str, progress: Callable[[int, int], None] | None = None) -> int:
        """GET ``path`` into the file ``destination``; the bytes written. ``progress(done, total)`` as chunks
        arrive. ServiceRefused for an error answer or a short one; ServiceUnreachable when nothing answers;
        DestinationFailed when the file cannot be written."""
        def save(answer: http.client.HTTPResponse) -> bytes:
            if answer.status >= 300:
                return answer.read()
            total, done = int(answer.headers.get("Content-Length") or 0), 0
            try:
                out = open(destination, "wb")
            except OSError as error:
                raise DestinationFailed(f"cannot write {destination}: {error}") from None
            with out:
                while chunk := answer.read(CHUNK_BYTES):
                    try:
                        out.write(chunk)
                    except OSError as error:
                        raise DestinationFailed(f"cannot write {destination}: {error}") from None
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
            if total and done != total:
                raise ServiceRefused(answer.status, f"the service sent {done} of {total} bytes")
            return str(done).encode()

        status, data = self._exchange("GET", path, None, save, DOWNLOAD_TIMEOUT_S)
        if status >= 300:  # an error, or a redirect without a place to go
            raise _refused(status, data)
        return int(data)

    def database_path(self) -> str | None:
        """The database file this service holds, from ``GET /healthz`` (None when it does not say: a token is
        needed to see it); ServiceUnreachable when nothing answers."""
        _, data = self._exchange("GET", "/healthz", None, lambda answer: answer.read())  # 503 still says
        try:
            path = json.loads(data)["database"]["path"]
        except (ValueError, KeyError, TypeError):
            return None
        return path if isinstance(path, str) else None

    def _exchange(self, method: str, path: str, payload: bytes | None,
                  take: Callable[[http.client.HTTPResponse], bytes],
                  answer_timeout_s: float = ANSWER_TIMEOUT_S) -> tuple[int, bytes]:
        """Send one request (following a redirect to the same scheme, host and port) and ``take`` its answer:
        (status, what ``take`` returned). A 401 is ServiceUnauthorized."""
        url = self.url.rstrip("/") + path
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"TSSTATS_URL must be http://host:port or https://host:port, not {self.url!r}")
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            connection = kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
            headers: dict[str, str | bytes] = {"Accept": "application/json", **bearer(self.token)}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            try:
                try:
                    connection.connect()
                except (TimeoutError, OSError) as error:
                    raise ServiceUnreachable(f"no tsstats service answers at {self.url}: {error}") from None
                if connection.sock is not None:
                    connection.sock.settimeout(answer_timeout_s)
                try:
                    target = parts.path + (f"?{parts.query}" if parts.query else "")
                    connection.request(method, target, body=payload, headers=headers)
                    answer = connection.getresponse()
                    location = answer.headers.get("Location")
                    if answer.status in (301, 302, 303, 307, 308) and location:
                        answer.read()
                        url = self._same_service(url, urllib.parse.urljoin(url, location), answer.status)
                        continue
                    data = take(answer)
                except (OSError, http.client.HTTPException) as error:
                    raise ServiceUnreachable(f"tsstats at {self.url} stopped answering: {error}") from None
            finally:
                connection.close()
            if answer.status == 401:
                raise ServiceUnauthorized(f"tsstats at {self.url} refused the token (401: "
                                          f"{_refused(401, data).message}); set TSSTATS_TOKEN or TSSTATS_TOKEN_FILE "
                                          f"to the service's token")
            return answer.status, data
        raise ServiceRefused(310, f"more than {MAX_REDIRECTS} redirects from {self.url}{path}")

    @staticmethod
    def _same_service(old: str, new: str, status: int) -> str:
        before, after = urllib.parse.urlsplit(old), urllib.parse.urlsplit(new)
        if (before.scheme, before.hostname, before.port) != (after.scheme, after.hostname, after.port):
            raise ServiceRefused(status, f"the service at {old} redirected to {new}, another host; not following "
                                         f"it (the token would go with it)")
        return new


def with_query(path: str, values: Mapping[str, str | None]) -> str:
    """``path`` with the values that are not None as its query."""
    query = urllib.parse.urlencode({key: value for key, value in values.items() if value is not None})
    return path + (f"?{query}" if query else "")


def bearer(token: str) -> dict[str, bytes]:
    """The Authorization header of ``token``, as UTF-8 bytes (http.client would send a text value as Latin-1 and
    refuse other characters; the service compares the bytes); none without a token."""
    return {"Authorization": b"Bearer " + token.encode("utf-8", "surrogateescape")} if token else {}


def _refused(status: int, data: bytes) -> ServiceRefused:
    try:
        error = json.loads(data)["error"]
        return ServiceRefused(status, str(error["message"]), error.get("field"))
    except (ValueError, KeyError, TypeError):
        return ServiceRefused(status, data[:200].decode("utf-8", "replace") or "no message")


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
