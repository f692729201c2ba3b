"""The metrics pushed over OTLP to a receiver that decodes real OTLP/HTTP requests (opentelemetry-proto's
messages on a plain HTTP server), through the endpoint going away and coming back."""

from __future__ import annotations

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support.server import ServerProcess, free_port, run_cli

metrics_service = pytest.importorskip("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
                                      reason="the otlp extra is installed by scripts/test.sh")
FAKE_GPU = [{"name": "Fake H100", "util": 40, "power_mw": 150_000, "temperature": 55}]


class Receiver:
    """An OTLP/HTTP metrics endpoint: keeps each request's headers and decoded message."""

    def __init__(self, port: int):
        self.requests: list[tuple[dict[str, str], object]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                message = metrics_service.ExportMetricsServiceRequest()
                message.ParseFromString(body)
                received.append(({key.lower(): value for key, value in self.headers.items()}, message))
                answer = metrics_service.ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, condition, seconds: float = 45):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for headers, message in list(self.requests):
                if condition(message):
                    return headers, message
            time.sleep(0.2)
        raise AssertionError(f"no pushed request matched within {seconds} s ({len(self.requests)} received)")


def metrics_of(message) -> dict[str, object]:
    return {metric.name: metric for resource in message.resource_metrics for scope in resource.scope_metrics
            for metric in scope.metrics}


def attributes(point) -> dict[str, str]:
    return {item.key: item.value.string_value for item in point.attributes}


def has_model_items(message) -> bool:
    found = metrics_of(message).get("tsstats_model_items")
    return found is not None and any(point.as_double > 0 for point in found.sum.data_points)


def test_metrics_reach_an_otlp_receiver_with_semantic_names_and_survive_it_going_away(tmp_path):
    port = free_port()
    receiver = Receiver(port)
    server = ServerProcess(tmp_path / "otlp.duckdb", "--otlp-endpoint", f"http://127.0.0.1:{port}/v1/metrics",
                           "--otlp-interval", "1", "--otlp-headers", "x-api-key=lab-secret",
                           env={"TSSTATS_HOST_NAME": "lab-otlp"}, gpus=FAKE_GPU)
    try:
        server.start()
        with server.client() as client:
            record = client.post("/api/comparisons", json={"models": ["vit"], "status": "running",
                                                           "items": 64}).json()
            time.sleep(0.3)
            client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"})
        headers, message = receiver.wait_for(has_model_items)
        assert headers["x-api-key"] == "lab-secret" and headers["content-type"] == "application/x-protobuf"
        resource = {item.key: item.value.string_value for item in message.resource_metrics[0].resource.attributes}
        assert resource["service.name"] == "tsstats" and resource["host.name"] == "lab-otlp"
        metrics = metrics_of(message)
        energy = metrics["hw.energy"]
        assert energy.unit == "J" and energy.sum.is_monotonic and energy.sum.aggregation_temporality == 2  # cumulative
        assert {attributes(point)["hw.type"] for point in energy.sum.data_points} == {"cpu", "memory", "gpu"}
        temperature = metrics["hw.temperature"]
        assert [(attributes(p)["hw.type"], attributes(p)["hw.name"], p.as_double) for p in temperature.gauge.data_points
                if attributes(p)["hw.type"] == "gpu"] == [("gpu", "Fake H100", 55.0)]
        assert 0 <= metrics["system.cpu.utilization"].gauge.data_points[0].as_double <= 1
        assert metrics["hw.power"].unit == "W" and metrics["process.memory.usage"].unit == "By"
        items = metrics["tsstats_model_items"].sum.data_points
        assert [(attributes(point)["model"], point.as_double) for point in items] == [("vit", 64.0)]
        assert "tsstats_self_cpu_seconds" in metrics and "tsstats_http_request_duration_seconds" not in metrics
        cpu_before = max(p.as_double for p in energy.sum.data_points if attributes(p)["hw.type"] == "cpu")

        receiver.close()  # the collector goes away: the service goes on
        time.sleep(3.5)
        with server.client() as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/dashboard/stats").status_code == 200
        count = len(receiver.requests)
        receiver = Receiver(port)  # and comes back: the pushes resume, the counters went on
        _, later = receiver.wait_for(lambda message: "hw.energy" in metrics_of(message))
        assert count >= 1 and len(receiver.requests) >= 1
        cpu_after = max(p.as_double for p in metrics_of(later)["hw.energy"].sum.data_points
                        if attributes(p)["hw.type"] == "cpu")
        assert cpu_after > cpu_before
        assert server.stop() == 0
        assert "OTLP push failed" in server.output and "resumed" in server.output
    finally:
        server.stop()
        receiver.close()


def test_a_wrong_otlp_setting_is_refused_before_anything_starts(tmp_path):
    for flags, said in ((["--otlp-endpoint", "ftp://collector:4318"], "is not an http:// or https:// URL"),
                        (["--otlp-endpoint", "http://127.0.0.1:4318/v1/metrics", "--otlp-headers", "no-value"],
                         "is not key=value"),
                        (["--otlp-interval", "0"], "otlp-interval")):
        result = run_cli("serve", "--db", str(tmp_path / "x.duckdb"), "--port", str(free_port()), *flags, timeout=60)
        assert result.returncode == 2 and said in result.stderr, (flags, result.stderr)
