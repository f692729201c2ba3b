"""Connections that cannot lock others out, against the real service: a head trickled in byte by byte, idle
and held connections beyond max_connections, bodies held back, and the token checked before a body."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from support.server import ServerProcess

LIMIT = 40  # max_connections in these tests


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def answer_of(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """The first bytes answered, or b"" once the connection is closed without an answer."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except (ConnectionResetError, TimeoutError):
        return b""


@pytest.fixture
def server(tmp_path):
    with ServerProcess(tmp_path / "c.duckdb", "--max-connections", str(LIMIT), "--request-timeout", "3",
                       env={"TSSTATS_TOKEN": "s3cret"}) as started:
        yield started


def test_a_head_sent_a_line_every_second_ends_at_the_request_timeout(server):
    sock = connect(server)
    started = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
    answered = b""
    for _ in range(15):  # Sanic's own timeout restarts with every byte: this would go on for good
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
        sock.settimeout(1.0)
        try:
            answered = sock.recv(4096)
            break
        except TimeoutError:
            continue
    elapsed = time.monotonic() - started
    answered = answered or answer_of(sock, 2.0)
    assert answered.startswith(b"HTTP/1.1 408"), answered
    assert elapsed < 8.0, elapsed  # request_timeout 3 s, with the second of the last sleep and a busy machine


def test_idle_and_trickling_connections_beyond_the_limit_give_way_to_a_new_client(server):
    idle = [connect(server) for _ in range(LIMIT * 3)]  # open, never a byte: the 1,100 idle connections
    trickling = []
    for _ in range(LIMIT):
        sock = connect(server)
        sock.sendall(b"GET /api/comparisons HTTP/1.1\r\nHost: localhost\r\n")  # a head never finished
        trickling.append(sock)
    time.sleep(1.5)  # the heads are slow by now
    with httpx.Client(base_url=server.url, headers=server.auth_headers(), timeout=5.0) as client:
        for path in ("/healthz", "/api/dashboard/stats", "/api/comparisons?limit=1"):
            assert client.get(path).status_code == 200, path
    closed = sum(1 for sock in idle if answer_of(sock, 0.05) == b"")
    assert closed > 0  # idle ones gave way
    for sock in idle + trickling:
        sock.close()


def test_the_token_is_checked_before_the_body_is_read(server):
    sock = connect(server)
    sock.sendall(b"POST /api/comparisons HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1048576\r\n\r\n{")  # 1 MiB announced, one byte sent
    answered = answer_of(sock, 5.0)
    assert answered.startswith(b"HTTP/1.1 401"), answered  # answered without waiting for the body
    sock.close()


def test_bodies_held_back_share_one_budget_and_the_rest_are_answered_503(server):
    body = b"x" * (1024 * 1024 - 1)
    held = []
    for _ in range(LIMIT - 4):  # 36 MiB announced against a budget of 32
        sock = connect(server)
        sock.sendall(b"POST /api/grid HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer s3cret\r\n"
                     b"Content-Type: text/csv\r\nContent-Length: 1048576\r\n\r\n")
        sock.setblocking(False)
        try:
            sock.send(body)
        except BlockingIOError:
            pass
        held.append(sock)
    time.sleep(1.0)
    refused = 0
    for sock in held:
        sock.setblocking(True)
        answered = answer_of(sock, 0.2)
        if answered.startswith(b"HTTP/1.1 503"):
            refused += 1
            assert b"retry-after: 1" in answered.lower() and b"request bodies of 32 MiB" in answered
    assert refused >= 4
    assert httpx.get(server.url + "/healthz", timeout=5.0).status_code == 200
    for sock in held:
        sock.close()


def test_the_open_files_limit_is_raised_to_the_hard_one(server):
    limits = {line[:26].strip(): line[26:].split() for line in
              open(f"/proc/{server.process.pid}/limits").read().splitlines()[1:]}
    soft, hard = limits["Max open files"][:2]
    assert soft == hard
