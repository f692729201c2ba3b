"""Property-based tests (hypothesis) over every parser: any input gives a value or the parser's own error,
never another exception."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st
from support.strategies import ANY_TEXT, NOW, TIME_TEXT, bodies, query_args

from tsstats.comparisons import records, validation
from tsstats.core.inputs import LATEST_UNIX_SECONDS, InputError, parse_duration, parse_time
from tsstats.core.settings import SETTINGS, ConfigError, load_settings
from tsstats.storage.export import parse_export_query
from tsstats.storage.history import parse_history_query


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
        new = validation.validate_new_comparison(body)
    except InputError as error:
        assert error.status == 400 and error.message
        return
    assert all(isinstance(model, str) for model in new.models)
    json.dumps(new.metadata).encode("utf-8")  # storable


@given(bodies())
def test_comparison_updates(body):
    try:
        update = validation.validate_update(body)
    except InputError as error:
        assert error.status == 400 and error.message
        return
    for value in (update.accuracy, update.speed, update.latency_ms):
        assert value is None or math.isfinite(value)


@given(bodies())
def test_offsets(body):
    try:
        offset = records.validate_offset(body, NOW)
    except InputError as error:
        assert error.status == 400 and error.message
        return
    assert math.isfinite(offset.kg) and -(2 ** 63) < offset.at_ms < 2 ** 63


@given(ANY_TEXT)
def test_comparison_ids(text):
    number = validation.parse_comparison_id(text)
    assert number is None or 0 <= number < 2 ** 63  # 0 parses, and is no comparison (404)


@given(query_args(("status", "limit", "before")))
def test_list_queries(args):
    try:
        query = validation.validate_list_query(args)
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


def test_a_stored_time_no_calendar_names_is_written_as_null():
    from tsstats.core.inputs import rfc3339_ms

    assert rfc3339_ms(1_767_225_600_123) == "2026-01-01T00:00:00.123Z"
    assert rfc3339_ms(253_402_300_800_000) is None and rfc3339_ms(-10**20) is None
