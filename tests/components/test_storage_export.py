"""The samples export in stretches of its range: the same rows, in order, as one statement gives, in both
formats, with one CSV header and no part left behind."""

from __future__ import annotations

import duckdb
import pytest
from support import old_files

from tsstats.storage import export
from tsstats.storage.export import parse_export_query, write_export
from tsstats.storage.store import Store

HOUR_S = 3600


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "samples.duckdb"
    old_files.build(path, 5, days=0.5, comparisons=1)
    opened = Store(str(path))
    yield opened
    opened.close()


def _read(path, file_format: str) -> list[str]:
    reader = "read_parquet" if file_format == "parquet" else "read_csv"
    return [repr(row) for row in duckdb.connect().execute(f"SELECT * FROM {reader}('{path}')").fetchall()]


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
