"""Property-based tests (hypothesis) over every parser and every route body: any input gives a value or the
parser's own error (a 4xx through the app), never another exception or a 5xx."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsstats import comparisons as cmp
from tsstats.config import SETTINGS, ConfigError, load_settings
from tsstats.export import parse_export_query
from tsstats.history import parse_history_query
from tsstats.params import InputError
from tsstats.timeparse import LATEST_UNIX_SECONDS, parse_duration, parse_time

NOW = 1_800_000_000.0
# any code point, lone surrogates included
ANY_TEXT = st.text(alphabet=st.characters(codec=None, blacklist_categories=()), max_size=40)
NUMBERS = st.integers(min_value=-(10 ** 400), max_value=10 ** 400) | st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.none() | st.booleans() | NUMBERS | ANY_TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
                    max_leaves=12)
# numbers and times as people and programs type them, and near misses
TIME_TEXT = st.one_of(
    ANY_TEXT, st.from_regex(r"\A-?[0-9¹²³٣]{1,25}(\.[0-9]{1,3})?(ms|s|m|h|d|w|y)?\Z"),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?\Z"),
    st.sampled_from(["now", "-0s", "-1e400s", "1e400", "nan", "inf", "-inf", "-99999999999999999999d"]))
FIELDS = ("name", "models", "status", "accuracy", "speed", "latencyMs", "error", "metadata", "kg", "note", "at")


def bodies():
    """JSON bodies shaped like the routes' (known fields with any values) and anything else."""
    shaped = st.dictionaries(st.sampled_from(FIELDS) | ANY_TEXT, JSON | SCALARS, max_size=6)
    return shaped | JSON


def query_args(names: tuple[str, ...]):
    keys = st.sampled_from(names) | ANY_TEXT
    return st.dictionaries(keys, st.lists(TIME_TEXT, min_size=1, max_size=2), max_size=5)


@given(TIME_TEXT)
def test_durations_are_finite_and_not_negative_or_refused(text):
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds) and seconds >= 0


@given(TIME_TEXT)
def test_times_are_finite_or_refused(text):
    try:
        moment = parse_time(text, NOW)
    except ValueError:
        return
    assert math.isfinite(moment) and moment <= max(LATEST_UNIX_SECONDS, NOW)


@given(bodies())
def test_new_comparison_bodies(body):
    try:
        new = cmp.validate_new_comparison(body)
    except InputError as error:
        assert error.status == 400 and error.message
        return
    assert new.models and all(isinstance(model, str) for model in new.models)
    json.dumps(new.metadata).encode("utf-8")  # storable


@given(bodies())
def test_comparison_updates(body):
    try:
        update = cmp.validate_update(body)
    except InputError as error:
        assert error.status == 400 and error.message
        return
    for value in (update.accuracy, update.speed, update.latency_ms):
        assert value is None or math.isfinite(value)


@given(bodies())
def test_offsets(body):
    try:
        offset = cmp.validate_offset(body, NOW)
    except InputError as error:
        assert error.status == 400 and error.message
        return
    assert math.isfinite(offset.kg) and -(2 ** 63) < offset.at_ms < 2 ** 63


@given(ANY_TEXT)
def test_comparison_ids(text):
    number = cmp.parse_comparison_id(text)
    assert number is None or 0 <= number < 2 ** 63  # 0 parses, and is no comparison (404)


@given(query_args(("status", "limit", "before")))
def test_list_queries(args):
    try:
        query = cmp.validate_list_query(args)
    except InputError as error:
        assert error.status == 400
        return
    assert 0 < query.limit and (query.before is None or 0 <= query.before < 2 ** 63)  # before=0: an empty page


@given(query_args(("from", "to", "metrics", "points", "aggregates", "format")))
def test_history_queries(args):
    try:
        query = parse_history_query(args, NOW, {0})
    except InputError as error:
        assert error.status in (400, 413)
        return
    assert query.from_ms <= query.to_ms


@given(st.dictionaries(st.sampled_from(("from", "to", "metrics", "format", "step")) | ANY_TEXT, TIME_TEXT,
                       max_size=5))
def test_export_queries(values):
    try:
        query = parse_export_query(values, NOW, {0})
    except InputError as error:
        assert error.status == 400
        return
    assert query.from_ms <= query.to_ms


@given(st.sampled_from([setting.name for setting in SETTINGS]), TIME_TEXT)
def test_every_setting_takes_any_text_or_says_why(name, text):
    try:
        load_settings({name: text}, env={"HOME": "/nonexistent"})
    except ConfigError as error:
        assert name in str(error) or name.replace("_", "-") in str(error)


# -- through the app ----------------------------------------------------------------------------------------
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
