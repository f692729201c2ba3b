"""Any bytes in any header get a 4xx from the real server, never a 500; no request writes more than one line of
log; a token may hold any character, and the clients send it so that it matches."""

from __future__ import annotations

import socket

import pytest
from support.server import ServerProcess

from tsstats.client.service import ServiceClient, ServiceUnauthorized

TOKEN = "tøken-✓-秘密"
HOSTILE = [b"\xff", b"Bearer \xff", b"Bearer \xc3\x28", b"Bearer \xed\xa0\x80", b"\x00", b"Bearer " + b"\xfe" * 300,
           "Bearer tøken".encode("latin-1"), b"Bearer " + TOKEN.encode("utf-8") + b"\x80", b"\x7f\x01\x02",
           b"=?utf-8?b?w7g=?=", b"Bearer %ff"]
HEADERS = [b"Authorization", b"Host", b"Origin", b"Content-Type", b"Accept", b"Accept-Encoding", b"Cookie",
           b"If-None-Match", b"Range", b"X-Forwarded-For", b"Last-Event-ID", b"User-Agent", b"X-\xff"]
ROUTES = [(b"GET", b"/api/comparisons"), (b"GET", b"/api/dashboard/stats"), (b"POST", b"/api/comparisons"),
          (b"GET", b"/metrics"), (b"GET", b"/healthz")]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = ServerProcess(tmp_path_factory.mktemp("headers") / "tsstats.duckdb", env={"TSSTATS_TOKEN": TOKEN})
    running.start()
    yield running
    running.stop()


def send(port: int, method: bytes, path: bytes, name: bytes, value: bytes) -> int:
    """One raw request with the header ``name: value`` (and the right token unless the header is Authorization);
    the answer's status."""
    auth = b"" if name == b"Authorization" else b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    host = b"" if name == b"Host" else b"Host: 127.0.0.1\r\n"
    body = b'{"models": ["a"]}' if method == b"POST" else b""
    head = (method + b" " + path + b" HTTP/1.1\r\n" + host + auth + name + b": " + value + b"\r\n"
            + (b"Content-Type: application/json\r\n" if method == b"POST" and name != b"Content-Type" else b"")
            + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_no_header_makes_a_500_nor_more_than_a_line_of_log(server):
    statuses = {}
    for method, path in ROUTES:
        for name in HEADERS:
            for value in HOSTILE:
                statuses[(method, path, name, value)] = send(server.port, method, path, name, value)
    errors = {key: status for key, status in statuses.items() if status >= 500}
    assert not errors, list(errors.items())[:5]
    assert {status for (_, _, name, _), status in statuses.items() if name == b"Authorization"} == {401}
    with server.client() as client:
        stats = client.get("/api/dashboard/stats").json()
    assert stats["meta"]["service"]["serverErrorPct"] == 0  # nobody drove the health figures
    server.stop()
    lines = server.output.splitlines()
    assert "Traceback" not in server.output
    assert len(lines) < 40, server.output[-3000:]  # the start, the stop: nothing per request


def test_a_token_of_any_characters_works_through_the_client(server):
    if server.process.poll() is not None:
        server.start()
    assert ServiceClient(server.url, TOKEN).call("GET", "/api/comparisons")["next"] is not None  # more than a page
    with pytest.raises(ServiceUnauthorized) as refused:  # for a script, as good as no service
        ServiceClient(server.url, TOKEN + "x").call("GET", "/api/comparisons")
    assert "refused the token (401" in str(refused.value)
