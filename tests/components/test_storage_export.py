"""The samples export in stretches of its range: the same rows, in order, as one statement gives, in both
formats, with one CSV header and no part left behind."""

from __future__ import annotations

import pytest
from support import old_files

from tsstats.storage import export
from tsstats.storage.export import parse_export_query, write_export

HOUR_S = 3600


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    opened = old_files.opened(tmp_path_factory.mktemp("export") / "samples.duckdb", 5, 0.5, 1)
    yield opened
    opened.close()


_read = old_files.exported_rows


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
@pytest.mark.parametrize("tier", ["raw", "1m"])
def test_an_export_in_stretches_is_the_same_as_one_statement(store, tmp_path, monkeypatch, file_format, tier):
    start_s = old_files.START_MS // 1000
    query = parse_export_query({"from": str(start_s + 600), "to": str(start_s + 10 * HOUR_S), "tier": tier,
                                "format": file_format, "metrics": "cpuUsage,gpu0Usage,cpuEnergy"}, start_s)
    whole, stretched = tmp_path / f"whole.{file_format}", tmp_path / f"stretched.{file_format}"
    monkeypatch.setitem(export.CHUNK_MS, tier, 10**12)
    rows = store.read_now(lambda con: write_export(con, query, str(whole)))
    monkeypatch.setitem(export.CHUNK_MS, tier, HOUR_S * 1000)
    assert store.read_now(lambda con: write_export(con, query, str(stretched))) == rows
    assert rows == (35_400 * 10 if tier == "raw" else 590)  # 9 h 50 min of samples (10 Hz) or of minutes
    found = _read(stretched, file_format)
    assert found == _read(whole, file_format)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([whole.name, stretched.name])
    if file_format == "csv":
        assert stretched.read_text().count("time_utc") == 1


def test_stretches_cover_the_rows_there_are_not_the_whole_range(store):
    """A century's range over 12 hours of samples: six stretches of 2 h, the first and last reaching the range's
    ends (a stretch for every 2 h of the range would be 438,000 statements)."""
    query = parse_export_query({"from": "1990-01-01", "to": "2090-01-01"}, old_files.START_MS // 1000)
    spans = store.read_now(lambda con: export.export_spans(con, query))
    assert len(spans) == 6
    assert spans[0][0] == query.from_ms and spans[-1][1] == query.to_ms
    assert all(end == later for (_, end), (later, _) in zip(spans, spans[1:], strict=False))
    empty = parse_export_query({"from": "2080-01-01", "to": "2090-01-01"}, old_files.START_MS // 1000)
    assert store.read_now(lambda con: export.export_spans(con, empty)) == [(empty.from_ms, empty.to_ms)]
