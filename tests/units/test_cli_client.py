"""The command line's client of a running service never hands the token to another host."""

from __future__ import annotations

import http.server
import threading

import pytest

from tsstats.cli.client import ServiceError, download


class Redirecting(http.server.BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 (the standard library's name)
        Redirecting.seen.append(self.headers.get("Authorization"))
        if self.path == "/same":
            self.send_response(302)
            self.send_header("Location", "/file")
            self.end_headers()
        elif self.path == "/away":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:9/steal")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_redirect_to_another_host_is_not_followed(server, tmp_path):
    Redirecting.seen.clear()
    assert download(server + "/same", "s3cret", str(tmp_path / "a")) == 2  # the same service: followed
    with pytest.raises(ServiceError, match="another host"):
        download(server + "/away", "s3cret", str(tmp_path / "b"))
    assert Redirecting.seen == ["Bearer s3cret", "Bearer s3cret", "Bearer s3cret"]  # nothing went to 127.0.0.2
