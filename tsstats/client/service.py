"""Calls to a running tsstats service: JSON over HTTP with the token, a short connection timeout (a script is
never slowed by a service that is down) and the service's own error messages."""

from __future__ import annotations

import http.client
import json
import os
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tsstats.client.holder import local_service_url

DEFAULT_URL = "http://127.0.0.1:8000"
CONNECT_TIMEOUT_S = 0.25  # a service that is not there costs a script at most this, twice
ANSWER_TIMEOUT_S = 30.0  # a service that is there answers a write once it has committed


def say(line: str) -> None:
    """A line on this process's stderr, never anywhere else: with stderr closed (``2>&-``), Python has no
    sys.stderr and print would fall back to stdout, which may be a command's own stream or a report."""
    if sys.stderr is not None:
        print(line, file=sys.stderr, flush=True)


class ServiceUnreachable(ConnectionError):
    """No service answered at the URL."""


class ServiceUnauthorized(ServiceUnreachable):
    """The service refused the token (401): for a script, as good as no service (it runs unmeasured)."""


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
class Service:
    """Where the service is (``TSSTATS_URL``, default http://127.0.0.1:8000) and its token."""

    url: str = DEFAULT_URL
    token: str = ""

    @classmethod
    def from_environment(cls, url: str | None = None, token: str | None = None,
                         token_file: str | None = None) -> Service:
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
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"TSSTATS_URL must be http://host:port or https://host:port, not {self.url!r}")
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
        headers: dict[str, str | bytes] = {"Accept": "application/json", **bearer(self.token)}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            try:
                connection.connect()
            except (TimeoutError, OSError) as error:
                raise ServiceUnreachable(f"no tsstats at {self.url}: {error}") from None
            if connection.sock is not None:
                connection.sock.settimeout(ANSWER_TIMEOUT_S)
            try:
                connection.request(method, parts.path.rstrip("/") + path, body=payload, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as error:
                raise ServiceUnreachable(f"tsstats at {self.url} stopped answering: {error}") from None
        finally:
            connection.close()
        if answer.status == 401:
            raise ServiceUnauthorized(f"tsstats at {self.url} refused the token (401: {_refused(401, data).message}); "
                                      f"set TSSTATS_TOKEN or TSSTATS_TOKEN_FILE to the service's token")
        if answer.status >= 400:
            raise _refused(answer.status, data)
        return json.loads(data) if data else None


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
