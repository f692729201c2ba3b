"""The client of a running service (Python client and command line alike) never hands the token to another host,
and a download is whole or an error."""

from __future__ import annotations

import http.server
import threading

import pytest

from tsstats.client.service import ServiceClient, ServiceRefused


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
    client = ServiceClient(server, "s3cret")
    assert client.download("/same", str(tmp_path / "a")) == 2 and (tmp_path / "a").read_bytes() == b"ok"  # followed
    with pytest.raises(ServiceRefused, match="another host"):
        client.download("/away", str(tmp_path / "b"))
    with pytest.raises(ServiceRefused, match="another host"):
        client.call("GET", "/away")
    assert Redirecting.seen == ["Bearer s3cret"] * 4  # nothing went to 127.0.0.2
    assert not (tmp_path / "b").exists()
