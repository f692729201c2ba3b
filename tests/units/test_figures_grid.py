"""Rows of grid intensity over time: parsed from CSV with their line numbers, and looked up per sample."""

from __future__ import annotations

import numpy as np
import pytest

from tsstats.figures.grid import GridRowsError, GridSeries, parse_csv, with_ends


def test_rows_are_read_with_a_header_comments_and_any_step():
    rows = parse_csv("time,g_per_kwh,renewable_pct\n# hourly\n2026-01-01T00:00:00Z,300,20\n\n"
                     "2026-01-01T01:00:00Z,250.5,35\n1767232800,200,50\n", "f")
    assert [row.g_per_kwh for row in rows] == [300, 250.5, 200] and [row.line for row in rows] == [3, 5, 6]
    spans = with_ends(rows)
    assert spans.end_ms[0] == spans.start_ms[1] and spans.end_ms[-1] - spans.start_ms[-1] == 3_600_000  # usual step


@pytest.mark.parametrize("text, words", [
    ("2026-01-01T01:00:00Z,300,20\n2026-01-01T00:00:00Z,250,35\n", "f line 2: time 2026-01-01T00:00:00.000Z is not "
                                                                  "after f line 1's"),
    ("2026-01-01T00:00:00Z,300,20\n2026-01-01T00:00:00Z,250,35\n", "f line 2:"),
    ("2026-01-01T00:00:00Z,-3,20\n", "f line 1: g_per_kwh must be from 0"),
    ("2026-01-01T00:00:00Z,lots,20\n", "f line 1: g_per_kwh must be a decimal number"),
    ("2026-01-01T00:00:00Z,1_000,20\n", "f line 1: g_per_kwh must be a decimal number, not '1_000'"),
    ("2026-01-01T00:00:00Z,\u0663\u0660\u0660,20\n", "f line 1: g_per_kwh must be a decimal number"),
    ("2026-01-01T00:00:00Z,inf,20\n", "f line 1: g_per_kwh must be a decimal number"),
    ("2026-01-01T00:00:00Z," + "9" * 5000 + ",20\n", "(5000 characters)"),
    ("9999-12-31T23:59:59Z,300,20\n", "outside 1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z"),
    ("0001-01-01T00:00:00+23:59,300,20\n", "outside 1970"),
    ("253402300799,300,20\n", "outside 1970"),
    ("2099-12-31T23:59:59Z,300,20\n", "f line 1: the last row, in force for the batch's step, would end after"),
    ("2026-01-01T00:00:00Z,300,120\n", "f line 1: renewable_pct must be from 0 to 100"),
    ("2026-01-01T00:00:00Z,300\n", "f line 1: expected 3 fields"),
    ("yesterday,300,20\n", "f line 1:"),
    ("2026-01-01T00:00:00,300,20\n", "no time zone"),
    ("-1h,300,20\n", "relative"),
    ("time,g_per_kwh,renewable_pct\n", "no rows"),
    ("2026-01-01T00:00:00Z,nan,20\n", "g_per_kwh must be a decimal number"),
    ("2026-01-01T00:00:00Z,1e999,20\n", "g_per_kwh must be from 0"),
])
def test_bad_rows_are_refused_with_their_line(text, words):
    with pytest.raises(GridRowsError) as error:
        parse_csv(text, "f")
    assert words in str(error.value)

def test_a_feed_holds_at_most_its_rows_in_any_format():
    text = "".join(f"{1_000_000 + i},100,10\n" for i in range(11))
    assert len(parse_csv(text, "body", max_rows=11)) == 11
    with pytest.raises(GridRowsError, match="body: at most 10 rows, and line 11 is row 11"):
        parse_csv(text, "body", max_rows=10)


def test_lookup_is_per_sample_and_outside_uses_the_average():
    rows = parse_csv("1000,100,10\n1010,500,60\n", "f")  # seconds: 1000 s to 1010 s, then 1010 s to 1020 s
    spans = with_ends(rows)
    series = GridSeries(spans.start_ms.astype(float), spans.end_ms.astype(float), spans.g_per_kwh,
                        spans.renewable_pct, ("file",))
    g, renewable, inside = series.lookup(np.array([999_000, 1_000_000, 1_009_999, 1_010_000, 1_020_000]), 473, 32)
    assert g.tolist() == [473, 100, 100, 500, 473] and renewable.tolist() == [32, 10, 10, 60, 32]
    assert inside.tolist() == [False, True, True, True, False]
