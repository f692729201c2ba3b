"""HTTPS with tls_cert and tls_key (a self-signed certificate made with openssl), and the warning when the
service leaves loopback without TLS."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import time

import httpx
import pytest
from support.server import ServerProcess

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                           "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    key.chmod(0o600)
    return cert, key


def test_https_with_a_certificate_and_a_key(tmp_path, certificate):
    cert, key = certificate
    server = ServerProcess(tmp_path / "tls.duckdb", "--tls-cert", str(cert), "--tls-key", str(key),
                           env={"TSSTATS_TOKEN": "s3cret"})
    server.process = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", *server.args], env=server.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"https://127.0.0.1:{server.port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.process.poll() is None and time.monotonic() < deadline, "no HTTPS answer"
            try:
                answer = httpx.get(url + "/api/dashboard/stats", verify=ssl.create_default_context(cafile=cert),
                                   timeout=2,
                                   headers={"Authorization": "Bearer s3cret"})
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer.status_code == 200 and "systemMetrics" in answer.json()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=2).raise_for_status()
    finally:
        assert server.stop() == 0
    assert "serving on https://" in server.output


def test_bad_tls_settings_stop_the_start_with_the_reason(tmp_path, certificate):
    cert, _ = certificate
    for args, words in ((["--tls-cert", str(cert)], "needs both tls_cert and tls_key"),
                        (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "missing.pem")], "cannot load")):
        done = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--db", str(tmp_path / "x.duckdb"),
                               "--port", "1", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and words in done.stderr, done.stderr


def test_leaving_loopback_without_tls_says_the_token_travels_in_clear(server_factory):
    server = server_factory("--host", "0.0.0.0", env={"TSSTATS_TOKEN": "s3cret"})
    assert server.stop() == 0
    assert server.output.count("without TLS") == 1
