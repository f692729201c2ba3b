"""The comparisons export in chunks: the same file, row for row, as one statement gives, in both formats, and
within the default memory limit with many comparisons and phases."""

from __future__ import annotations

import pytest
from support import old_files

from tsstats.comparisons import export
from tsstats.comparisons.export import ComparisonsExport, write_comparisons


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    opened = old_files.opened(tmp_path_factory.mktemp("export") / "many.duckdb", 5, 0.001, 3000)  # 4 phases each
    yield opened
    opened.close()


_read = old_files.exported_rows


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_chunked_export_is_the_same_as_one_statement(store, tmp_path, monkeypatch, file_format):
    query = ComparisonsExport(0, 2 ** 62, file_format, "bench-host")
    whole, chunked = tmp_path / f"whole.{file_format}", tmp_path / f"chunked.{file_format}"
    assert store.read_now(lambda con: write_comparisons(con, query, str(whole))) == 3000
    monkeypatch.setattr(export, "CHUNK_ROWS", 1000)
    assert len(store.read_now(lambda con: export.chunks(con, query))) == 15  # 5 rows a comparison
    assert store.read_now(lambda con: write_comparisons(con, query, str(chunked))) == 3000

    rows = _read(chunked, file_format)
    assert rows == _read(whole, file_format)
    assert len(rows) == 3000
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([whole.name, chunked.name])  # no part left
    if file_format == "csv":
        header = chunked.read_text().splitlines()[0].split(",")
        assert chunked.read_text().count("host,id,") == 1  # one header
        assert header[-11:] == ["fair", "unfair_reasons_json", "conditions_json", "study", "ended_by", "cpu_model",
                                "gpu_model", "cpu_energy_method", "gpu_energy_method", "memory_energy_method",
                                "grid_region"]


def test_chunks_follow_the_phases(store):
    """A chunk holds at most CHUNK_ROWS comparisons and phases together, and they cover every id once."""
    query = ComparisonsExport(0, 2 ** 62, "csv", "h")
    spans = store.read_now(lambda con: export.chunks(con, query))
    assert spans[0][0] == 1 and spans[-1][1] == 3000
    assert all(later[0] == earlier[1] + 1 for earlier, later in zip(spans, spans[1:], strict=False))
    assert all((last - first + 1) * 5 <= export.CHUNK_ROWS for first, last in spans)
