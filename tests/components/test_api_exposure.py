"""The browser's way in is closed: a foreign Host (DNS rebinding) is refused on every route before any work, a
write from a foreign Origin is refused, and every answer carries the security headers."""

from __future__ import annotations

import pytest
from support.answers import error_of

ROUTES = ("/api/dashboard/stats", "/healthz", "/", "/assets/app.js", "/api/backup", "/api/export",
          "/api/comparisons", "/metrics", "/openapi.json", "/no/such/route")
SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest.mark.parametrize("path", ROUTES)
def test_a_foreign_host_is_refused_on_every_route(api, path):
    answer = api.get(path, headers={"Host": "evil.example"})
    assert answer.status_code == 421 and "evil.example" in error_of(answer)["message"]
    assert "localhost" in error_of(answer)["message"]  # it says what is allowed


def test_a_write_with_a_foreign_host_writes_nothing(api):
    before = len(api.get("/api/comparisons").json()["items"])
    refused = api.post("/api/comparisons", json={"models": ["x"]}, headers={"Host": "evil.example:8000"})
    assert refused.status_code == 421
    assert len(api.get("/api/comparisons").json()["items"]) == before


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST.", "localhost:8000", "127.0.0.1", "127.0.0.1:1",
                                  "[::1]:8000", "[::1]", "::1"])
def test_the_names_of_this_machine_are_answered_in_any_form(api, host):
    assert api.get("/api/dashboard/stats", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("host", ["a b", "x" * 300, "[::1", "[::1]x", "localhost:port", "a/b", ""])
def test_malformed_hosts_are_400s(api, host):
    answer = api.get("/api/dashboard/stats", headers={"Host": host})
    assert answer.status_code == 400 and error_of(answer)["field"] == "host"


def test_allowed_hosts_adds_names_and_a_star_answers_any(inprocess):
    named = inprocess(allowed_hosts="dash.lab,10.1.2.3").client()
    assert named.get("/healthz", headers={"Host": "dash.lab:8000"}).status_code == 200
    assert named.get("/healthz", headers={"Host": "10.1.2.3"}).status_code == 200
    assert named.get("/healthz", headers={"Host": "other.lab"}).status_code == 421
    assert inprocess(allowed_hosts="*").client().get("/healthz", headers={"Host": "anything"}).status_code == 200


@pytest.mark.parametrize("origin, status", [("https://evil.example", 403), ("null", 403),
                                            ("http://localhost:3000", 201), ("http://localhost:8000", 201),
                                            (None, 201)])
def test_writes_from_a_foreign_origin_are_refused(api, origin, status):
    headers = {"Origin": origin} if origin else {}
    answer = api.post("/api/comparisons", json={"models": ["o"]}, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert "origin" in error_of(answer)["message"]
    assert api.get("/api/dashboard/stats", headers=headers).status_code == 200  # reads are not writes


def test_a_preflight_from_an_unknown_origin_gets_no_cors(api):
    answer = api.options("/api/comparisons", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("path", ["/", "/api/dashboard/stats", "/api/comparisons/999999", "/no/such/route"])
def test_every_answer_carries_the_security_headers(api, path):
    headers = api.get(path).headers
    for name, value in SECURITY.items():
        assert headers[name] == value, (path, name)
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy


def test_health_without_the_token_says_up_or_down_and_no_more(inprocess):
    service = inprocess(token="s3cret")
    bare = service.client().get("/healthz").json()
    assert bare == {"status": "ok"}
    full = service.client("s3cret").get("/healthz").json()
    assert full["status"] == "ok" and "path" in full["database"]
