"""Property-based tests (hypothesis) through the app, in process: any body, raw bytes and query on every
route gives a 4xx with a message or a success, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.strategies import bodies, query_args

ROUTE_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def encoded(body) -> bytes:
    return json.dumps(body).encode()  # non-ASCII as \\u escapes: lone surrogates travel too


@pytest.fixture(scope="module")
def comparison_id(api):
    return api.post("/api/comparisons", json={"models": ["a", "b"]}).json()["id"]


@ROUTE_SETTINGS
@given(body=bodies())
def test_route_bodies_never_fail_the_server(api, comparison_id, body):
    for method, path in (("POST", "/api/comparisons"), ("PATCH", f"/api/comparisons/{comparison_id}"),
                         ("POST", "/api/offsets")):
        response = api.request(method, path, content=encoded(body), headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (method, path, body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"]["message"]


@ROUTE_SETTINGS
@given(raw=st.binary(max_size=200))
def test_raw_bytes_as_a_body(api, raw):
    response = api.post("/api/comparisons", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (raw, response.text)


@ROUTE_SETTINGS
@given(args=query_args(("from", "to", "metrics", "points", "aggregates", "format", "status", "limit", "before")))
def test_route_queries_never_fail_the_server(api, args):
    params = [(key, value) for key, values in args.items() for value in values]
    for path in ("/api/history", "/api/energy", "/api/comparisons", "/api/export"):
        try:
            response = api.get(path, params=params)
        except UnicodeEncodeError:
            return  # a lone surrogate cannot be put in a URL at all
        assert response.status_code < 500, (path, params, response.text[:500])
